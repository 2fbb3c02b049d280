"""The copier process (dockd.store.copier): an offload copies through it exactly what it
copies in-process, and a copier that dies, a session that is cancelled or killed, a
store that fills up, lose nothing and leave nothing behind."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import psutil
import pytest

from dockd.clock import SystemClock
from dockd.store import copier_link
from dockd.store.content_store import INLINE_BELOW
from dockd.store.copier_messages import CopierProtocolError
from dockd.store.evidence import EvidenceStore, open_store
from dockd.store.ingest import Ingestor
from dockd.store.progress import Progress
from dockd.store.queries import catalog_items
from dockd.store.verify import verify_store
from tests.conftest import REPO_ROOT, store_config_for

Opener = Callable[..., EvidenceStore]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]
ALWAYS = {"copier_min_files": 0}
NEVER = {"copier_min_files": 1 << 40}


def copiers_of(pid: int) -> list[psutil.Process]:
    """The copier processes ``pid`` started (alive or not yet reaped)."""
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if "dockd.store.copier" in " ".join(_cmdline(c))]


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return []


def copier_pids_for(store_dir: Path) -> list[int]:
    """Copier processes, anyone's, staging into ``store_dir``."""
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "dockd.store.copier" in cmdline and any(str(store_dir) in a for a in cmdline):
            pids.append(proc.info["pid"])
    return pids


def _leftovers(store: EvidenceStore) -> list[str]:
    """Whatever is in the store's scratch directories besides their locks."""
    tmp = store.root / "tmp"
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*")
                  if p.name not in (".lock", ".publish.lock", ".setup.lock") and not (
                      p.is_dir() and p.parent == tmp))


def fill_leaving(hog: Path, room: int) -> None:
    """Fill ``hog``'s file system (written to while this runs) but for ``room`` bytes."""
    block = b"\0" * (1 << 20)
    with open(hog, "wb") as fh:
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        fh.truncate(max(fh.tell() - room, 0))
        os.fsync(fh.fileno())


def _volume(rng_seed: int, n: int) -> dict[str | bytes, bytes]:
    rng = random.Random(rng_seed)
    sizes = [0, 1, 4096, 65_536, INLINE_BELOW, INLINE_BELOW + 1, 3 << 20]
    files: dict[str | bytes, bytes] = {
        f"DCIM/{i // 100:03}MEDIA/F{i:04}.MP4": rng.randbytes(sizes[i % len(sizes)] if i < 14
                                                             else rng.choice([0, 512, 70_000]))
        for i in range(n)}
    files[b"DCIM/100MEDIA/\xff\xfe\x01name.MP4"] = b"not utf-8, a control character"
    files["DCIM/100MEDIA/SAME.MP4"] = files["DCIM/000MEDIA/F0003.MP4"]  # deduplicated
    return files


def _custody_kinds(store: EvidenceStore) -> list[tuple[str, str]]:
    rows = store.catalog.query("SELECT type, payload FROM custody ORDER BY seq")
    out = []
    for row in rows:
        payload = json.loads(row["payload"])
        if row["type"] in ("file.ingested", "file.skipped", "file.failed"):
            out.append((row["type"], payload.get("source_path", payload.get("path", ""))))
    return sorted(out)


def test_through_the_copier_the_store_gets_what_an_in_process_copy_gives(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    files = _volume(1, 700)
    src = make_tree(tmp_path / "src", files)
    os.symlink("/etc/passwd", src / "DCIM" / "link")
    os.mkfifo(src / "DCIM" / "fifo")
    reports, stores = [], []
    for name, settings in (("copier", ALWAYS), ("here", NEVER)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="dockd.store.ingest"):
            store = open_test_store(tmp_path / name, commit_batch_files=100, **settings)
            reports.append(Ingestor(store, "t").ingest(src, "REC-1"))
        started = [r for r in caplog.records if r.getMessage() == "copier process started"]
        assert len(started) == (1 if name == "copier" else 0)
        stores.append(store)
    through, here = reports
    assert through.summary() | {"session_id": "", "folder": "", "mhl_manifest_c4": ""} \
        == here.summary() | {"session_id": "", "folder": "", "mhl_manifest_c4": ""}
    assert through.count("stored") == len(set(files.values()))
    assert through.count("skipped") == 2
    assert [(f.source_path, f.outcome, f.sha256) for f in through.files] \
        == [(f.source_path, f.outcome, f.sha256) for f in here.files]
    for store in stores:
        items = {i["source_path"]: i["sha256"] for i in catalog_items(store.catalog)}
        assert len(items) == len(files)
        assert set(items.values()) == {hashlib.sha256(d).hexdigest() for d in files.values()}
        assert verify_store(store, "t").ok
        assert _leftovers(store) == []
    assert _custody_kinds(stores[0]) == _custody_kinds(stores[1])
    assert copiers_of(os.getpid()) == []


def test_a_copier_killed_mid_offload_is_replaced_by_this_process_losing_nothing(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    files = _volume(2, 1500)
    src = make_tree(tmp_path / "src", files)
    store = open_test_store(commit_batch_files=64, **ALWAYS)
    killed: list[int] = []
    total = sum(len(d) for d in files.values())

    def on_progress(p: Progress) -> None:
        if not killed and p.bytes_done > total // 3:
            (copier,) = copiers_of(os.getpid())
            killed.append(copier.pid)
            copier.send_signal(signal.SIGKILL)

    with caplog.at_level(logging.ERROR, logger="dockd.store.ingest"):
        report = Ingestor(store, "t").ingest(src, "REC-1", on_progress=on_progress)
    assert killed, "the copier was never seen"
    assert report.result == "completed", report.summary()
    assert report.count("stored") == len(set(files.values()))
    assert [r.getMessage() for r in caplog.records] \
        == ["the copier process failed; copying the rest in this process"]
    assert "killed by signal 9" in caplog.records[0].__dict__["error"]
    by_path = {i["source_path"]: i["sha256"] for i in catalog_items(store.catalog)}
    assert len(by_path) == len(files)
    assert verify_store(store, "t").ok
    assert _leftovers(store) == []
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() \
        != psutil.STATUS_ZOMBIE


def test_a_copier_breaking_the_protocol_is_stopped_and_the_rest_copied_here(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    files = _volume(3, 800)
    src = make_tree(tmp_path / "src", files)
    store = open_test_store(**ALWAYS)
    real = copier_link.decode_report
    calls: list[int] = []

    def garbled(data: bytes, algorithms: frozenset[str]):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise CopierProtocolError("a staged file's name is not one the copier makes")
        return real(data, algorithms)

    monkeypatch.setattr(copier_link, "decode_report", garbled)
    report = Ingestor(store, "t").ingest(src, "REC-1")
    assert len(calls) >= 3
    assert report.result == "completed" and report.count("stored") == len(set(files.values()))
    assert verify_store(store, "t").ok
    assert _leftovers(store) == [] and copiers_of(os.getpid()) == []


def test_cancel_stops_the_copier_keeps_what_was_copied_and_the_next_dock_does_the_rest(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path) -> None:
    files = _volume(4, 1200)
    src = make_tree(tmp_path / "src", files)
    store = open_test_store(commit_batch_files=50, **ALWAYS)
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.files_done >= 100:
            cancel.set()

    first = Ingestor(store, "t").ingest(src, "REC-1", cancel=cancel, on_progress=on_progress)
    assert (first.result, first.reason) == ("interrupted", "cancelled")
    stored = first.count("stored") + first.count("deduplicated")
    assert 100 <= stored < len(files)
    assert copiers_of(os.getpid()) == []
    assert _leftovers(store) == []
    assert verify_store(store, "t").ok
    second = Ingestor(store, "t").ingest(src, "REC-1")
    assert second.result == "completed"
    assert second.count("known") == stored
    by_path = {i["source_path"]: i["sha256"] for i in catalog_items(store.catalog)}
    assert len(by_path) == len(files)


def test_a_disk_filling_up_under_the_copier_is_a_clean_store_full_stop(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path, loop_mounts) -> None:  # type: ignore[no-untyped-def]
    """The room check passed when the files were asked for; then another writer takes the
    space, and the copier's writes meet ENOSPC: the files before are kept, the session
    stops with store_full, nothing partial stays."""
    mnt = loop_mounts.make(96)
    files = {f"DCIM/F{i:04}.MP4": os.urandom(40_000) for i in range(900)}
    src = make_tree(tmp_path / "src", files)
    store = open_test_store(mnt / "store", store_reserve_bytes=1 << 20, **ALWAYS)
    hog = mnt / "hog"

    def on_progress(p: Progress) -> None:
        if p.bytes_done and not hog.exists():
            fill_leaving(hog, 4 << 20)  # room for the catalog, not for the files

    report = Ingestor(store, "t").ingest(src, "R1", on_progress=on_progress)
    assert (report.result, report.reason) == ("interrupted", "store_full")
    assert copiers_of(os.getpid()) == []
    assert _leftovers(store) == []
    assert verify_store(store, "t").ok
    kept = report.count("stored")
    hog.unlink()
    again = Ingestor(store, "t").ingest(src, "R1")
    assert again.result == "completed" and again.count("known") == kept
    assert again.count("stored") == len(files) - kept


def test_no_room_when_asking_stops_at_that_file_with_the_ones_before_kept(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path, loop_mounts) -> None:  # type: ignore[no-untyped-def]
    mnt = loop_mounts.make(64)
    files = {f"DCIM/F{i:04}.MP4": os.urandom(100_000) for i in range(700)}  # 70 MB
    src = make_tree(tmp_path / "src", files)
    store = open_test_store(mnt / "store", store_reserve_bytes=8 << 20, **ALWAYS)
    report = Ingestor(store, "t").ingest(src, "R1")
    assert (report.result, report.reason) == ("interrupted", "store_full")
    kept = sorted(i["source_path"] for i in catalog_items(store.catalog))
    # The files kept are the first ones of the walk, with no gap.
    assert kept == sorted(files)[:len(kept)] and 0 < len(kept) < len(files)
    assert _leftovers(store) == [] and verify_store(store, "t").ok


def test_a_file_still_being_written_is_read_again_by_the_copier(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path) -> None:
    files = _volume(5, 600)
    src = make_tree(tmp_path / "src", files)
    growing = src / "DCIM" / "ZZ_GROWING.MP4"
    growing.write_bytes(b"x" * (8 << 20))
    stop = threading.Event()

    def append() -> None:
        with open(growing, "ab") as fh:
            while not stop.is_set():
                fh.write(b"y" * 4096)
                fh.flush()
                time.sleep(0.0005)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        store = open_test_store(source_change_retries=1, **ALWAYS)
        report = Ingestor(store, "t").ingest(src, "REC-1")
    finally:
        stop.set()
        writer.join()
    (failed,) = [f for f in report.files if f.outcome == "failed"]
    assert failed.source_path.endswith("ZZ_GROWING.MP4")
    assert failed.reason.startswith("source_changed: still changing after 2 reads")
    assert report.count("stored") == len(set(files.values()))
    assert verify_store(store, "t").ok and _leftovers(store) == []
    assert report.summary()["bytes_stored"] == sum(len(d) for d in set(files.values()))


_KILL_SESSION = '''
import sys
from pathlib import Path
from dockd.clock import SystemClock
from dockd.config import parse_config
from dockd.store.evidence import open_store
from dockd.store.ingest import Ingestor
store_dir, src = sys.argv[1:3]
config = parse_config({"dock": {"id": "dock-test", "store_dir": store_dir},
                       "ingest": {"copier_min_files": 0, "commit_batch_files": 32}})
Ingestor(open_store(config, SystemClock()), "t").ingest(Path(src), "REC-1")
'''


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.4])
def test_kill_9_of_the_session_takes_its_copier_along_and_loses_nothing(
        make_tree: Tree, tmp_path: Path, delay: float) -> None:
    files = _volume(6, 3000)
    src = make_tree(tmp_path / "src", files)
    store_dir = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SESSION, str(store_dir), str(src)],
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    deadline = time.monotonic() + 60
    while not copiers_of(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, "no copier started"
        time.sleep(0.005)
    (copier,) = copiers_of(proc.pid)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    copier.wait(10)  # PR_SET_PDEATHSIG: it dies with its parent (raises if it does not)
    assert copier_pids_for(store_dir) == []
    store = open_store(store_config_for(store_dir), SystemClock())
    try:
        assert _leftovers(store) == []  # the dead process's scratch went at this opening
        report = Ingestor(store, "t").ingest(src, "REC-1")
        assert report.result == "completed", report.summary()
        by_path: dict[str, set[str]] = {}
        for item in catalog_items(store.catalog):
            by_path.setdefault(item["source_path"], set()).add(item["sha256"])
        assert len(by_path) == len(files) and all(len(s) == 1 for s in by_path.values())
        objects = [p.name for p in (store_dir / "objects").rglob("*") if p.is_file()]
        assert sorted(objects) == sorted({hashlib.sha256(d).hexdigest()
                                          for d in files.values()})
        assert verify_store(store, "t").ok
    finally:
        store.close()


def test_a_copier_whose_sender_fails_exits_at_once_and_the_rest_is_copied_here(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Without the exit, the session would wait for answers that never come."""
    files = _volume(7, 700)
    src = make_tree(tmp_path / "src", files)
    store = open_test_store(**ALWAYS)
    monkeypatch.setattr(copier_link.CopierProcess, "module", "tests.copier_failing")
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    with caplog.at_level(logging.ERROR, logger="dockd.store.ingest"):
        report = Ingestor(store, "t").ingest(src, "REC-1")
    assert report.result == "completed" and report.count("stored") == len(set(files.values()))
    (failed,) = [r for r in caplog.records if r.name == "dockd.store.ingest"]
    assert failed.getMessage() == "the copier process failed; copying the rest in this process"
    assert "exit status 70" in failed.__dict__["error"]
    assert verify_store(store, "t").ok
    assert _leftovers(store) == [] and copiers_of(os.getpid()) == []
