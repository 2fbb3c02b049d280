"""Clearing keeps every file that is not provably in the store."""

from __future__ import annotations

import os
from pathlib import Path

from dockd.clock import SystemClock
from dockd.config import parse_config
from dockd.dock.clearing import clear_recorder
from dockd.store.evidence import open_store
from dockd.store.ingest import Ingestor


def test_changed_unknown_and_unarchived_files_are_kept(tmp_path: Path) -> None:
    card = tmp_path / "card"
    (card / "DCIM").mkdir(parents=True)
    (card / "DCIM/same.MP4").write_bytes(b"a" * 5000)
    (card / "DCIM/changed.MP4").write_bytes(b"b" * 5000)
    config = parse_config({"dock": {"store_dir": str(tmp_path / "store")}})
    store = open_store(config, SystemClock())
    try:
        Ingestor(store, "test").ingest(card, "REC1")
        # Same size and mtime, other bytes: only a fresh hash can tell.
        changed = card / "DCIM/changed.MP4"
        st = changed.stat()
        changed.write_bytes(b"c" * 5000)
        os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns))
        (card / "DCIM/new.MP4").write_bytes(b"new")

        held = clear_recorder(store, card, "REC1", "test", require_archived=True)
        assert held.deleted == []
        assert held.kept["DCIM/same.MP4"] == "not_archived"

        report = clear_recorder(store, card, "REC1", "test", require_archived=False)
        assert report.deleted == ["DCIM/same.MP4"]
        assert report.kept == {"DCIM/changed.MP4": "content_differs", "DCIM/new.MP4": "not_stored"}
        assert not (card / "DCIM/same.MP4").exists()
        assert changed.read_bytes() == b"c" * 5000
        types = [r["type"] for r in store.catalog.db.query("SELECT type FROM custody ORDER BY seq")]
        assert types.count("recorder.file_deleted") == 1
        assert types[-1] == "recorder.cleared"
    finally:
        store.close()
