"""The store's file system full or read-only, on real loop-mounted ext4."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from dockd.dock.states import Progress
from dockd.errors import StoreFullError
from dockd.store import ingest_catalog
from dockd.store.content_store import CheckedBatch, ContentStore, ToPublish
from dockd.store.evidence import EvidenceStore
from dockd.store.ingest import Ingestor
from dockd.store.mhl import MhlEntry, MhlSpool
from dockd.store.verify import verify_store

Cli = Callable[..., subprocess.CompletedProcess[str]]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]
Opener = Callable[..., EvidenceStore]


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_no_partial_entry(store_dir: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(store_dir / "catalog.sqlite")
    items = {r[0] for r in conn.execute("SELECT sha256 FROM items")}
    conn.close()
    objects = {p.name for p in (store_dir / "objects").rglob("*") if p.is_file()}
    assert objects == items, "an object without an item (or the reverse)"
    assert not [p for p in (store_dir / "tmp").rglob("*.part")], "temp data left behind"


def test_store_full_through_the_cli(dockd_cli: Cli, make_tree: Tree, tmp_path: Path,
                                    loop_mounts) -> None:  # type: ignore[no-untyped-def]
    mnt = loop_mounts.make(48)
    store_dir = mnt / "store"
    src = make_tree(tmp_path / "src", {f"DCIM/{i}.MP4": os.urandom(6 << 20) for i in range(8)})
    before = _snapshot(src)
    config = tmp_path / "dockd.toml"
    config.write_text(f"[dock]\nstore_dir = '{store_dir}'\n[ingest]\nstore_reserve_bytes = 4194304\n")
    done = dockd_cli(["ingest", src, "--recorder", "R1", "--config", config])
    assert done.returncode == 3, done.stderr
    assert "is full" in done.stderr and "Free space" in done.stderr
    log = json.loads(dockd_cli(["log", "--config", config, "--json"]).stdout)
    last = log[-1]
    assert (last["type"], last["payload"]["reason"]) == ("session.interrupted", "store_full")
    assert 0 < last["payload"]["stored"] < 8
    _assert_no_partial_entry(store_dir)
    assert _snapshot(src) == before  # the recorder's files are untouched
    assert dockd_cli(["verify", "--config", config]).returncode == 0


def test_disk_filling_up_during_a_copy_is_a_clean_stop(open_test_store: Opener, make_tree: Tree,
                                                       tmp_path: Path, loop_mounts) -> None:  # type: ignore[no-untyped-def]
    """The pre-copy room check passes, then another writer takes the space: the copy
    itself meets ENOSPC. Still a clean stop with store_full and nothing partial."""
    mnt = loop_mounts.make(64)
    src = make_tree(tmp_path / "src", {"A.MP4": os.urandom(16 << 20), "B.MP4": b"b"})
    store = open_test_store(mnt / "store", store_reserve_bytes=2 << 20, chunk_bytes=1 << 20)
    hog = mnt / "hog"

    def on_progress(p: Progress) -> None:
        if p.bytes_done and not hog.exists():
            st = os.statvfs(mnt)
            with open(hog, "wb") as fh:  # leave ~3 MiB: room for the catalog, not for A
                fh.write(b"\0" * (st.f_bavail * st.f_frsize - (3 << 20)))
                fh.flush()
                os.fsync(fh.fileno())

    report = Ingestor(store, "t").ingest(src, "R1", on_progress=on_progress)
    assert (report.result, report.reason) == ("interrupted", "store_full")
    rows = store.catalog.query("SELECT type, payload FROM custody ORDER BY seq")
    assert rows[-1]["type"] == "session.interrupted"
    assert json.loads(rows[-1]["payload"])["reason"] == "store_full"
    _assert_no_partial_entry(mnt / "store")
    hog.unlink()
    again = Ingestor(store, "t").ingest(src, "R1")
    assert again.result == "completed" and again.count("stored") == 2
    assert verify_store(store, "t").ok


def test_read_only_store_exits_73_and_changes_nothing(dockd_cli: Cli, make_tree: Tree,
                                                      tmp_path: Path, loop_mounts) -> None:  # type: ignore[no-untyped-def]
    mnt = loop_mounts.make(128)
    store_dir = mnt / "store"
    src = make_tree(tmp_path / "src", {"A.MP4": b"a" * 1000})
    assert dockd_cli(["ingest", src, "--recorder", "R1", "--store", store_dir]).returncode == 0
    (src / "B.MP4").write_bytes(b"new")
    before = _snapshot(mnt)
    loop_mounts.remount(mnt, "ro")
    done = dockd_cli(["ingest", src, "--recorder", "R1", "--store", store_dir])
    assert done.returncode == 73, done.stderr
    assert "not writable" in done.stderr and "Traceback" not in done.stderr
    # verify checks a read-only store (an examiner's write-blocked copy) and says it could not
    # record the verification (issue 14); the snapshot below proves it wrote nothing
    checked = dockd_cli(["verify", "--store", store_dir, "--json"])
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["recorded"] is False
    # reading still works for the administrator
    cat = dockd_cli(["catalog", "--store", store_dir, "--json"])
    assert cat.returncode == 0, cat.stderr
    assert [i["source_path"] for i in json.loads(cat.stdout)] == ["A.MP4"]
    loop_mounts.remount(mnt, "rw")
    assert _snapshot(mnt) == before
    fresh = loop_mounts.make(16)
    loop_mounts.remount(fresh, "ro")
    done = dockd_cli(["ingest", src, "--recorder", "R1", "--store", fresh / "store"])
    assert done.returncode == 73 and "not writable" in done.stderr


def test_a_write_failing_after_its_copy_returned_keeps_what_came_before(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path, loop_mounts) -> None:  # type: ignore[no-untyped-def]
    """The copy does not wait for a file's last direct writes. Here B's only write is held
    on the writer thread until the disk is full, so it fails after B's copy returned: A is
    committed, B and C are not, the session stops with store_full, nothing is partial."""
    mnt = loop_mounts.make(64)
    files = {name: os.urandom(1 << 20) for name in ("A.MP4", "B.MP4", "C.MP4")}
    src = make_tree(tmp_path / "src", files)
    store = open_test_store(mnt / "store", store_reserve_bytes=1 << 20, chunk_bytes=1 << 20)
    writer = store.content._writer._worker  # the store's one writer thread
    gate = threading.Event()
    hog = mnt / "hog"

    def on_progress(p: Progress) -> None:
        if p.bytes_done == 1 << 20:  # A copied: let its write finish, then hold the writer
            writer.submit(lambda: None).result()
            writer.submit(gate.wait)
        elif p.bytes_done == 2 << 20:  # B copied, its write queued behind the gate
            st = os.statvfs(mnt)
            with open(hog, "wb") as fh:  # leave room for catalog pages, not for B
                fh.write(b"\0" * (st.f_bavail * st.f_frsize - (512 << 10)))
                os.fsync(fh.fileno())
            gate.set()

    report = Ingestor(store, "t").ingest(src, "R1", on_progress=on_progress)
    gate.set()
    assert (report.result, report.reason) == ("interrupted", "store_full")
    stored = {f.source_path for f in report.files if f.outcome == "stored"}
    assert stored == {"A.MP4"}
    items = {r["sha256"] for r in store.catalog.query("SELECT sha256 FROM items")}
    assert items == {hashlib.sha256(files["A.MP4"]).hexdigest()}
    _assert_no_partial_entry(mnt / "store")
    hog.unlink()
    again = Ingestor(store, "t").ingest(src, "R1")
    assert again.result == "completed" and again.count("stored") == 2
    assert verify_store(store, "t").ok


def test_a_failed_commit_stops_the_session_and_no_later_batch_is_committed(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches are checked (synced, read back) while the one before is committed. The
    second batch's commit fails with a full catalog after the third was already checked:
    the first batch is kept, the second and third (and all after) are not committed, no
    temp file or object is left over, and the next offload stores the rest."""
    files = {f"DCIM/F{i}.MP4": os.urandom(5000 + i) for i in range(8)}
    src = make_tree(tmp_path / "src", files)
    store = open_test_store(commit_batch_files=2)
    real_check, real_rows = ContentStore.check_batch, ingest_catalog.record_files
    checks: list[int] = []
    third_checked = threading.Event()

    def check(self: ContentStore, batch: Sequence[ToPublish]) -> CheckedBatch:
        result = real_check(self, batch)
        checks.append(len(batch))
        if len(checks) == 3:
            third_checked.set()
        return result

    commits: list[int] = []

    def rows(*args: Any) -> None:
        commits.append(1)
        if len(commits) == 2:
            assert third_checked.wait(30)
            raise StoreFullError("the evidence store is full: the catalog cannot be written")
        real_rows(*args)

    monkeypatch.setattr(ContentStore, "check_batch", check)
    monkeypatch.setattr(ingest_catalog, "record_files", rows)
    report = Ingestor(store, "t").ingest(src, "R1")
    assert (report.result, report.reason) == ("interrupted", "store_full")
    assert len(commits) == 2  # the third batch was checked, never committed
    items = {r["sha256"] for r in store.catalog.query("SELECT sha256 FROM items")}
    assert items == {hashlib.sha256(files[f"DCIM/F{i}.MP4"]).hexdigest() for i in (0, 1)}
    _assert_no_partial_entry(store.root)
    assert [p.name for p in store.content._scratch.iterdir()] == [".lock"]  # type: ignore[union-attr]
    monkeypatch.undo()
    again = Ingestor(store, "t").ingest(src, "R1")
    assert again.result == "completed" and again.count("stored") == 6
    assert verify_store(store, "t").ok


def test_an_mhl_entry_the_full_store_refuses_costs_the_mhl_not_the_session(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The ASC MHL spool lives on the store: when the disk fills up right after a batch's
    commit, the batch stays committed and the session goes on, without an ASC MHL."""
    src = make_tree(tmp_path / "src", {f"DCIM/F{i}.MP4": os.urandom(1000 + i) for i in range(6)})
    store = open_test_store(commit_batch_files=2)
    real = MhlSpool.append
    calls: list[int] = []

    def append(self: MhlSpool, entry: MhlEntry) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, entry)

    monkeypatch.setattr(MhlSpool, "append", append)
    with caplog.at_level(logging.ERROR, logger="dockd.store.ingest"):
        report = Ingestor(store, "t").ingest(src, "R1")
    assert report.result == "completed" and report.count("stored") == 6
    assert report.mhl_c4 is None and len(calls) == 3  # no entry spooled after the loss
    assert [r.getMessage() for r in caplog.records] \
        == ["ASC MHL entry not spooled: this session gets no ASC MHL"]
    assert not list((store.root / report.folder).rglob("*.mhl"))  # type: ignore[operator]
    assert verify_store(store, "t").ok
