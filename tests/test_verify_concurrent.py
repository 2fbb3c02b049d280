"""A verify while another command writes the log: the checkpoint file and the checkpoint
mirror are written after the log's commit, so a verify must read them before it takes its
read snapshot of the log. Read after it, a record and checkpoint committed in between (a
second verify, a session) looked like a truncated or rolled-back log: a false tamper report.

The second writer is a real ``dockd verify`` subprocess, started at the worst moment: right
after this verify's snapshot of the chain is taken (its first read of the custody log's tail).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from pathlib import Path

from dockd.store.catalog import Catalog, catalog_path
from dockd.store.custody import CHECKPOINT_FILE, read_checkpoint_file, read_checkpoint_mirror
from dockd.store.read_only import read_only_view
from dockd.store.verify import check_store
from tests.conftest import run_dockd, write_tree

TAIL_QUERY = "SELECT MAX(seq) FROM custody"


class _WriterAfterSnapshot(Catalog):
    """A read-only catalog connection that, when the verify first reads the log's tail (its
    snapshot is taken by then), lets another process append a record and a checkpoint."""

    def __init__(self, path: Path, config: Path) -> None:
        super().__init__(path, read_only=True)
        self.config = config
        self.fired = False

    def query_one(self, sql: str,
                  params: tuple[object, ...] | dict[str, object] = ()) -> sqlite3.Row | None:
        row = super().query_one(sql, params)
        if sql == TAIL_QUERY and not self.fired:
            self.fired = True
            done = run_dockd(["verify", "--config", self.config])
            assert done.returncode == 0, done.stderr
        return row


def test_a_verify_committed_during_a_verify_is_not_a_truncated_or_rolled_back_log(
        tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {f"DCIM/{i:03d}.MP4": os.urandom(300 + 97 * i)
                                        for i in range(4)})
    store, key, mirror = tmp_path / "store", tmp_path / "custody.ed25519", tmp_path / "mirror"
    config = tmp_path / "dockd.toml"
    config.write_text(f'[dock]\nid = "dock-cc"\nstore_dir = "{store}"\nsigning_key = "{key}"\n'
                      f'checkpoint_mirror = "{mirror}"\n')
    for args in (["ingest", src, "--recorder", "REC-1"], ["verify"]):
        done = run_dockd([*args, "--config", config])
        assert done.returncode == 0, done.stderr
    before = read_checkpoint_file(store / CHECKPOINT_FILE)
    assert before is not None

    with read_only_view(store, key, mirror) as view:
        hooked = _WriterAfterSnapshot(catalog_path(store), config)
        try:
            report = check_store(dataclasses.replace(view, catalog=hooked))
        finally:
            hooked.close()

    assert hooked.fired
    after = read_checkpoint_file(store / CHECKPOINT_FILE)
    assert after is not None and after.seq > before.seq  # the second verify did write
    assert report.records_checked == before.seq  # this verify's snapshot predates it
    assert [e for e in read_checkpoint_mirror(mirror) if not isinstance(e, str)][-1].seq \
        == after.seq
    assert report.ok, report.problems
