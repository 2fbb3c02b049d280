"""Offload of a recorder volume: what is stored, skipped, failed, linked and logged."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import socket
import stat
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

import dockd.store.ingest as ingest_module
from dockd.store.evidence import EvidenceStore
from dockd.store.ingest import Ingestor
from dockd.store.progress import Progress
from dockd.store.queries import catalog_items
from dockd.store.read_ahead import LARGEST
from dockd.store.source import MAX_DEPTH
from dockd.store.verify import verify_store
from tests.store_support import publish_one

Opener = Callable[..., EvidenceStore]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]


def _events(store: EvidenceStore, type_: str) -> list[dict]:  # type: ignore[type-arg]
    rows = store.catalog.query("SELECT payload FROM custody WHERE type=? ORDER BY seq", (type_,))
    return [json.loads(r[0]) for r in rows]


def _objects(store: EvidenceStore) -> list[Path]:
    return [p for p in (store.root / "objects").rglob("*") if p.is_file()]


def test_ingest_stores_links_logs_and_verifies(open_test_store: Opener, make_tree: Tree,
                                               tmp_path: Path) -> None:
    files = {"DCIM/100/A.MP4": os.urandom(70_000), "DCIM/100/B.MP4": os.urandom(10),
             "LOG/x.txt": b"log"}
    src = make_tree(tmp_path / "src", files)
    store = open_test_store()
    progress: list[Progress] = []
    report = Ingestor(store, "test").ingest(src, "REC-1", on_progress=progress.append,
                                            session_info={"bay": 2})
    assert report.result == "completed"
    assert report.count("stored") == 3 and report.bytes_stored == sum(map(len, files.values()))
    assert progress[-1].files_done == progress[-1].files_total == 3
    assert progress[-1].bytes_done == progress[-1].bytes_total
    started = _events(store, "session.started")[0]
    assert started["bay"] == 2 and started["session_id"] == report.session_id
    ingested = _events(store, "file.ingested")
    assert {e["source_path"] for e in ingested} == set(files)
    for e in ingested:
        assert e["sha256"] == hashlib.sha256(files[e["source_path"]]).hexdigest()
    completed = _events(store, "session.completed")[0]
    assert completed["mhl_manifest_c4"] == report.mhl_c4 and report.mhl_c4.startswith("c4")
    day = dt.datetime.now(dt.UTC).date().isoformat()
    folder = store.root / "sessions" / "REC-1" / day / report.session_id
    assert report.folder == str(folder.relative_to(store.root))
    for rel, data in files.items():
        linked = folder / rel
        assert linked.read_bytes() == data
        assert linked.stat().st_ino == store.content.object_path(
            hashlib.sha256(data).hexdigest()).stat().st_ino
    session = store.catalog.query_one("SELECT * FROM sessions WHERE id=?", (report.session_id,))
    assert (session["result"], session["files"], session["mhl_c4"]) == ("completed", 3, report.mhl_c4)
    assert verify_store(store, "test").ok


def test_reingest_adds_nothing_and_new_content_is_a_new_version(open_test_store: Opener,
                                                                make_tree: Tree,
                                                                tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"A.MP4": b"first take"})
    store = open_test_store()
    Ingestor(store, "t").ingest(src, "REC-1")
    objects, items = _objects(store), store.catalog.query_one("SELECT COUNT(*) FROM items")[0]
    again = Ingestor(store, "t").ingest(src, "REC-1")
    assert again.count("known") == 1 and again.count("stored") == 0
    assert _objects(store) == objects
    assert store.catalog.query_one("SELECT COUNT(*) FROM items")[0] == items == 1
    # same name, new content: a new version, the old one untouched
    (src / "A.MP4").write_bytes(b"second take, longer")
    third = Ingestor(store, "t").ingest(src, "REC-1")
    assert third.count("stored") == 1
    shas = {r[0] for r in store.catalog.query("SELECT sha256 FROM sightings WHERE source_path='A.MP4'")}
    assert shas == {hashlib.sha256(b"first take").hexdigest(),
                    hashlib.sha256(b"second take, longer").hexdigest()}
    assert store.content.object_path(hashlib.sha256(b"first take").hexdigest()).read_bytes() \
        == b"first take"
    # the same bytes under another name or recorder: one object, two sightings
    make_tree(tmp_path / "src2", {"copy.MP4": b"first take"})
    fourth = Ingestor(store, "t").ingest(tmp_path / "src2", "REC-2")
    assert fourth.count("deduplicated") == 1
    assert len(_objects(store)) == 2
    assert verify_store(store, "t").ok


def _same_size_new_mtime(path: Path) -> None:
    st = path.stat()
    path.write_bytes(os.urandom(st.st_size))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # one nanosecond later


def _new_size_same_mtime(path: Path) -> None:
    st = path.stat()
    path.write_bytes(path.read_bytes() + b"!")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _new_file(path: Path) -> None:
    (path.parent / "NEW.MP4").write_bytes(b"recorded since the last dock")


def _new_symlink(path: Path) -> None:
    (path.parent / "LINK.MP4").symlink_to(path.name)


@pytest.mark.parametrize("change, outcome", [(_same_size_new_mtime, "stored"),
                                             (_new_size_same_mtime, "stored"),
                                             (_new_file, "stored"), (_new_symlink, "skipped")])
@pytest.mark.parametrize("list_files", [True, False])
def test_a_redock_passes_over_unchanged_files_only(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        change: Callable[[Path], None], outcome: str, list_files: bool) -> None:
    """A re-dock of an unchanged volume records every file as known without a second walk;
    any one entry that may differ (same size but another mtime, another size with the same
    mtime, a new file, a new non-file) is stored or skipped, and only it."""
    files = {f"DCIM/{i:03}.MP4": os.urandom(300 + i) for i in range(600)}  # > 2 walk chunks
    src = make_tree(tmp_path / "src", files)
    store = open_test_store()
    Ingestor(store, "t").ingest(src, "REC-1")
    seen: list[Progress] = []
    again = Ingestor(store, "t").ingest(src, "REC-1", list_files=list_files,
                                        on_progress=seen.append)
    assert again.summary()["known"] == 600 and again.summary()["stored"] == 0
    assert [(f.source_path, f.outcome, f.sha256, f.size) for f in again.files] == ([
        (rel, "known", hashlib.sha256(data).hexdigest(), len(data))
        for rel, data in sorted(files.items())] if list_files else [])
    total = sum(map(len, files.values()))
    assert (seen[0].files_total, seen[0].bytes_total) == (600, total)
    assert (seen[-1].files_done, seen[-1].bytes_done) == (600, total)
    changed = src / "DCIM/299.MP4"  # in the middle of the second chunk
    change(changed)
    third = Ingestor(store, "t").ingest(src, "REC-1", list_files=list_files)
    assert third.count(outcome) == 1 and third.count("known") == 600 - (outcome == "stored"
                                                                         and change is not _new_file)
    assert third.count("stored") + third.count("skipped") + third.count("known") \
        == len(list(src.rglob("*.MP4")))
    if outcome == "stored":
        name = changed.name if change is not _new_file else "NEW.MP4"
        stored = {r[0] for r in store.catalog.query(
            "SELECT source_path FROM sightings WHERE session_id=?", (third.session_id,))}
        assert stored == {f"DCIM/{name}"}
        data = (src / "DCIM" / name).read_bytes()
        assert store.content.object_path(hashlib.sha256(data).hexdigest()).read_bytes() == data
    assert verify_store(store, "t").ok


@pytest.mark.parametrize("list_files", [True, False])
def test_a_redock_stores_again_a_file_whose_item_was_pruned(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path, list_files: bool) -> None:
    """Known means catalogued and not pruned: a pruned item's file is stored again."""
    files = {f"DCIM/{i:03}.MP4": os.urandom(300 + i) for i in range(300)}
    src = make_tree(tmp_path / "src", files)
    store = open_test_store()
    Ingestor(store, "t").ingest(src, "REC-1")
    sha = hashlib.sha256(files["DCIM/299.MP4"]).hexdigest()
    with store.catalog.transaction() as tx:  # as prune marks it (its files left in place)
        tx.execute("UPDATE items SET deleted_at='2026-01-01T00:00:00.000000Z' WHERE sha256=?",
                   (sha,))
    again = Ingestor(store, "t").ingest(src, "REC-1", list_files=list_files)
    assert (again.count("known"), again.count("stored")) == (299, 1)
    assert store.catalog.query_one("SELECT deleted_at FROM items WHERE sha256=?",
                                   (sha,))[0] is None


def test_special_files_are_skipped_never_opened(open_test_store: Opener, make_tree: Tree,
                                                tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"DCIM/real.MP4": b"video"})
    os.symlink("/etc/shadow", src / "DCIM" / "link.MP4")
    os.symlink("..", src / "DCIM" / "up")
    os.mkfifo(src / "DCIM" / "fifo.MP4")  # opening it for reading would block forever
    os.mknod(src / "DCIM" / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "DCIM" / "sock"))
    store = open_test_store()
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(Ingestor(store, "t").ingest(src, "REC-1")),
                         daemon=True)
    t.start()
    t.join(timeout=30)
    sock.close()
    assert not t.is_alive(), "ingest blocked (it opened a FIFO?)"
    report = result[0]
    skipped = {f.source_path: f.reason for f in report.files if f.outcome == "skipped"}  # type: ignore[attr-defined]
    assert skipped == {"DCIM/link.MP4": "symlink", "DCIM/up": "symlink", "DCIM/fifo.MP4": "fifo",
                       "DCIM/null": "device", "DCIM/sock": "socket"}
    assert report.result == "completed"  # type: ignore[attr-defined]
    assert {e["source_path"]: e["reason"] for e in _events(store, "file.skipped")} == skipped
    assert len(_objects(store)) == 1


def test_directory_loop_through_a_bind_mount_is_skipped(open_test_store: Opener, make_tree: Tree,
                                                        tmp_path: Path, loop_mounts) -> None:  # type: ignore[no-untyped-def]
    src = make_tree(tmp_path / "src", {"DCIM/A.MP4": b"a", "DCIM/loop/.keep": b""})
    (src / "DCIM" / "loop" / ".keep").unlink()
    loop_mounts.bind(src, src / "DCIM" / "loop")  # src/DCIM/loop is src again: a real cycle
    assert (src / "DCIM" / "loop" / "DCIM" / "A.MP4").exists()
    store = open_test_store()
    report = Ingestor(store, "t").ingest(src, "REC-1")
    assert [(f.source_path, f.outcome, f.reason) for f in report.files] == [
        ("DCIM/A.MP4", "stored", ""), ("DCIM/loop", "skipped", "directory_loop")]
    assert _events(store, "file.skipped")[0]["reason"] == "directory_loop"


def test_hostile_names_round_trip_losslessly(open_test_store: Opener, make_tree: Tree,
                                             tmp_path: Path, ascmhl_debug: Path) -> None:
    names = [b"gbk_\xd6\xd0\xce\xc4.MP4", b"ctl\x01\x1b[31m.MP4", "执法记录仪.MP4".encode(),
             b"L" * 251 + b".MP4", b"empty.MP4", b"amp&<lt>.MP4", b"\\xd6 literal.MP4"]
    content = {n: (b"" if n == b"empty.MP4" else os.urandom(100) + n) for n in names}
    src = make_tree(tmp_path / "src", content)
    assert len(names[3]) == 255
    store = open_test_store()
    report = Ingestor(store, "t").ingest(src, "REC-1")
    assert report.result == "completed" and report.count("stored") == len(names)
    items = catalog_items(store.catalog)
    got = {}
    for item in items:
        raw = base64.b64decode(item["source_path_b64"]) if "source_path_b64" in item \
            else item["source_path"].encode()
        got[raw] = item["sha256"]
    assert got == {n: hashlib.sha256(d).hexdigest() for n, d in content.items()}
    assert got[b"empty.MP4"] == hashlib.sha256(b"").hexdigest()
    for item in items:  # printable and valid UTF-8
        assert not any(ord(c) < 0x20 for c in item["source_path"])
    ingested = {e["source_path"]: e for e in _events(store, "file.ingested")}
    assert base64.b64decode(ingested["gbk_\\xd6\\xd0\\xce\\xc4.MP4"]["source_path_b64"]) == names[0]
    folder = store.root / report.folder
    done = subprocess.run([str(ascmhl_debug), "verify", str(folder)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert verify_store(store, "t").ok


def test_ascmhl_reference_tool_accepts_the_folder_and_detects_tampering(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path, ascmhl_debug: Path) -> None:
    src = make_tree(tmp_path / "src", {f"DCIM/{i:03}.MP4": os.urandom(5000 + i) for i in range(5)})
    store = open_test_store(hashes=["sha256", "sm3"])
    report = Ingestor(store, "t").ingest(src, "REC-1")
    folder = store.root / report.folder

    def mhl_verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ascmhl_debug), "verify", str(folder)], capture_output=True,
                              text=True, timeout=120, check=False)

    ok = mhl_verify()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    chain = (folder / "ascmhl" / "ascmhl_chain.xml").read_text()
    assert f"<c4>{report.mhl_c4}</c4>" in chain
    sm3 = store.catalog.query("SELECT sm3 FROM items")
    assert all(len(r[0]) == 64 for r in sm3)
    linked = folder / "DCIM" / "002.MP4"
    linked.chmod(0o640)
    with open(linked, "r+b") as fh:
        fh.write(b"X")  # the hard link is the stored object: both change
    bad = mhl_verify()
    assert bad.returncode != 0
    problems = verify_store(store, "t").problems
    assert [p.kind for p in problems] == ["altered"]


def test_metadata_from_a_real_mp4_and_empty_for_junk(open_test_store: Opener, make_tree: Tree,
                                                     tmp_path: Path, ffmpeg: str) -> None:
    src = make_tree(tmp_path / "src", {"DCIM/junk.MP4": b"\x00\x00\x00\x18ftypjunk" + os.urandom(500),
                                       "DCIM/notes.txt": b"hello"})
    subprocess.run([ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=10", "-t", "2", "-pix_fmt", "yuv420p",
                    "-metadata", "creation_time=2024-03-05T06:07:08Z",
                    str(src / "DCIM" / "real.MP4")], check=True, timeout=60)
    store = open_test_store()
    Ingestor(store, "t").ingest(src, "REC-1")
    by_name = {i["source_path"]: i for i in catalog_items(store.catalog)}
    real = by_name["DCIM/real.MP4"]
    assert real["format"] == "mp4"
    assert real["duration_s"] == pytest.approx(2.0, abs=0.05)
    assert real["start_time"] == "2024-03-05T06:07:08.000000Z"
    assert real["end_time"].startswith("2024-03-05T06:07:10")
    for name in ("DCIM/junk.MP4", "DCIM/notes.txt"):
        item = by_name[name]
        assert (item["format"], item["start_time"], item["duration_s"]) == (None, None, None)


def test_file_vanishing_between_listing_and_reading_is_failed(open_test_store: Opener,
                                                              make_tree: Tree,
                                                              tmp_path: Path) -> None:
    # B is too large to be opened ahead of its turn (an open file would keep its bytes on
    # a local file system): it is listed with A, and removed while A is copied.
    src = make_tree(tmp_path / "src", {"A.MP4": b"a" * 200_000, "B.MP4": b"b" * (LARGEST + 1)})
    store = open_test_store(chunk_bytes=64 << 10)

    def on_progress(p: Progress) -> None:
        if p.bytes_done and (src / "B.MP4").exists():
            (src / "B.MP4").unlink()

    report = Ingestor(store, "t").ingest(src, "REC-1", on_progress=on_progress)
    assert report.result == "incomplete"
    failed = [(f.source_path, f.reason.split(":")[0]) for f in report.files if f.outcome == "failed"]
    assert failed == [("B.MP4", "vanished")]
    assert _events(store, "file.failed")[0]["reason"] == "vanished"
    assert len(_objects(store)) == 1 and verify_store(store, "t").ok


def test_file_unlinked_mid_read_is_stored_with_the_bytes_read(open_test_store: Opener,
                                                              make_tree: Tree,
                                                              tmp_path: Path) -> None:
    # An open file keeps its data after unlink; what is stored is exactly what was read.
    data = os.urandom(300_000)
    src = make_tree(tmp_path / "src", {"A.MP4": data})
    store = open_test_store(chunk_bytes=64 << 10)

    def on_progress(p: Progress) -> None:
        if p.bytes_done > 0 and (src / "A.MP4").exists():
            (src / "A.MP4").unlink()

    report = Ingestor(store, "t").ingest(src, "REC-1", on_progress=on_progress)
    assert [f.sha256 for f in report.files] == [hashlib.sha256(data).hexdigest()]


def test_writer_appending_during_ingest_never_yields_a_wrong_hash(open_test_store: Opener,
                                                                  make_tree: Tree,
                                                                  tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"REC.MP4": os.urandom(2 << 20)})
    store = open_test_store(chunk_bytes=64 << 10, source_change_retries=3)
    appended = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.bytes_done > 0 and not appended.is_set():
            appended.set()  # the recorder writes more while the first read is under way
            threading.Thread(target=lambda: (src / "REC.MP4").open("ab").write(b"tail")).start()

    report = Ingestor(store, "t").ingest(src, "REC-1", on_progress=on_progress)
    final = (src / "REC.MP4").read_bytes()
    (outcome,) = report.files
    assert outcome.outcome == "stored"
    assert outcome.sha256 == hashlib.sha256(final).hexdigest()  # the re-read, complete file
    assert store.content.object_path(outcome.sha256).read_bytes() == final
    assert len(_objects(store)) == 1 and verify_store(store, "t").ok


def test_a_file_that_never_stops_changing_is_failed_not_stored(open_test_store: Opener,
                                                               make_tree: Tree,
                                                               tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"REC.MP4": os.urandom(1 << 20)})
    store = open_test_store(chunk_bytes=64 << 10, source_change_retries=1)
    written = [0]

    def on_progress(p: Progress) -> None:
        with open(src / "REC.MP4", "ab") as fh:
            fh.write(b"x")
        written[0] += 1

    report = Ingestor(store, "t").ingest(src, "REC-1", on_progress=on_progress)
    assert report.result == "incomplete"
    assert report.files[0].outcome == "failed" and report.files[0].reason.startswith("source_changed")
    assert _objects(store) == []
    assert not [p for p in (store.root / "tmp").rglob("*.part")]


def test_object_without_item_after_a_crash_is_completed_as_new(open_test_store: Opener,
                                                               make_tree: Tree,
                                                               tmp_path: Path) -> None:
    """A crash after linking the object but before the catalog commit leaves an object the
    catalog does not know; the next offload must make it a full, new item (with metadata)."""
    data = b"recorded before the crash"
    src = make_tree(tmp_path / "src", {"A.MP4": data})
    store = open_test_store()
    fd = os.open(src / "A.MP4", os.O_RDONLY)
    publish_one(store.content, fd)  # the object, with no item, as a crash would leave it
    os.close(fd)
    assert [p.kind for p in verify_store(store, "t").problems] == ["extra"]
    report = Ingestor(store, "t").ingest(src, "REC-1")
    assert report.files[0].outcome == "stored" and report.bytes_stored == len(data)
    assert _events(store, "file.ingested")[0]["new_item"] is True
    assert verify_store(store, "t").ok


def test_same_recorder_twice_at_once_is_refused(open_test_store: Opener, make_tree: Tree,
                                                tmp_path: Path) -> None:
    from dockd.errors import StoreUnavailableError

    src = make_tree(tmp_path / "src", {"A.MP4": b"a" * 100_000})
    store = open_test_store(chunk_bytes=64 << 10)
    other = open_test_store()
    inner: list[BaseException] = []

    def on_progress(p: Progress) -> None:
        if p.bytes_done and not inner:
            try:
                Ingestor(other, "t").ingest(src, "REC-1")
            except StoreUnavailableError as exc:
                inner.append(exc)

    Ingestor(store, "t").ingest(src, "REC-1", on_progress=on_progress)
    assert inner and "REC-1" in str(inner[0])


@pytest.mark.parametrize("readback_hash", ["xxh128", "sha256"])
def test_batches_read_back_while_the_next_is_copied_store_exact_bytes(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path, readback_hash: str) -> None:
    """The committer thread reads batch N back while the ingest copies batch N+1: the two
    must never share a buffer. Many small batches of multi-chunk files, each checked."""
    files = {f"DCIM/{i:03}.MP4": os.urandom(300_000 + i * 4097) for i in range(48)}
    src = make_tree(tmp_path / "src", files)
    store = open_test_store(chunk_bytes=64 << 10, commit_batch_files=2,
                            readback_hash=readback_hash)
    report = Ingestor(store, "t").ingest(src, "REC-1")
    assert report.result == "completed", [f for f in report.files if f.outcome != "stored"]
    assert report.count("stored") == len(files)
    for event in _events(store, "file.ingested"):
        data = files[event["source_path"]]
        assert event["sha256"] == hashlib.sha256(data).hexdigest()
        assert (store.root / event["stored_path"]).read_bytes() == data
    seqs = [r[0] for r in store.catalog.query("SELECT seq FROM custody ORDER BY seq")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one unbroken chain
    assert verify_store(store, "t").ok


def test_a_volume_nested_a_thousand_deep_is_walked_and_the_rest_stored(
        open_test_store: Opener, tmp_path: Path) -> None:
    """A damaged or hostile volume nests 1,000 directories: the walk (iterative, so no
    recursion limit) enters none deeper than MAX_DEPTH, reports that one directory
    ``too_deep`` (custody ``file.skipped``), and stores everything else."""
    src = tmp_path / "src"
    src.mkdir()
    # Plain strings and os.mkdir: pathlib's and shutil's own tree functions recurse.
    levels = [os.path.join(src, "deep")]
    for _ in range(999):
        levels.append(os.path.join(levels[-1], "d"))
    for level in levels:
        os.mkdir(level)
    try:
        for k in (1, MAX_DEPTH, MAX_DEPTH + 1, 1000):  # directory level k holds k.MP4
            Path(levels[k - 1], f"{k}.MP4").write_bytes(f"level {k}".encode())
        (src / "zzz.MP4").write_bytes(b"after the deep tree")
        store = open_test_store()
        report = Ingestor(store, "t").ingest(src, "REC-1")
        assert report.result == "completed"
        deep_dir = os.path.relpath(levels[MAX_DEPTH], src)
        assert [(f.source_path, f.outcome, f.reason) for f in report.files] == [
            ("deep/1.MP4", "stored", ""),
            (os.path.relpath(os.path.join(levels[MAX_DEPTH - 1], f"{MAX_DEPTH}.MP4"), src),
             "stored", ""),
            (deep_dir, "skipped", "too_deep"),
            ("zzz.MP4", "stored", "")]
        assert [(e["source_path"], e["reason"]) for e in _events(store, "file.skipped")] == [
            (deep_dir, "too_deep")]
    finally:
        for k in (1, MAX_DEPTH, MAX_DEPTH + 1, 1000):
            Path(levels[k - 1], f"{k}.MP4").unlink(missing_ok=True)
        for level in reversed(levels):
            os.rmdir(level)
    assert len(_objects(store)) == 3 and verify_store(store, "t").ok


def test_without_list_files_only_problems_are_listed_and_counts_stay_complete(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path) -> None:
    """What the daemon asks for: memory does not grow with the stored files, yet every
    count is right and what a person must read (skipped, failed) is listed."""
    src = make_tree(tmp_path / "src", {f"DCIM/{i:02}.MP4": os.urandom(100 + i) for i in range(12)})
    os.symlink("/etc/passwd", src / "DCIM" / "link.MP4")
    (src / "DCIM" / "same.MP4").write_bytes((src / "DCIM" / "00.MP4").read_bytes())
    store = open_test_store()
    report = Ingestor(store, "t").ingest(src, "REC-1", list_files=False)
    assert [(f.source_path, f.outcome, f.reason) for f in report.files] == [
        ("DCIM/link.MP4", "skipped", "symlink")]
    assert (report.count("stored"), report.count("deduplicated"), report.count("skipped")) == \
        (12, 1, 1)
    again = Ingestor(store, "t").ingest(src, "REC-1", list_files=False)
    assert again.count("known") == 13 and again.count("stored") == 0
    assert again.summary()["known"] == 13 and verify_store(store, "t").ok


def _batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of files of each batch made durable, in order (recorded as they go)."""
    sizes: list[int] = []
    make_durable = ingest_module._Session._make_durable

    def recorded(self: Any, batch: Any, checked: Any) -> None:
        sizes.append(len(batch.files))
        make_durable(self, batch, checked)

    monkeypatch.setattr(ingest_module._Session, "_make_durable", recorded)
    return sizes


def test_the_last_stretch_of_a_volume_is_cut_into_halving_batches(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert ingest_module.TAIL_BATCH_FILES == 128  # the sizes below are worked out from it
    files = {f"DCIM/100/{i:04}.JPG": i.to_bytes(2, "big") for i in range(600)}
    src = make_tree(tmp_path / "src", files)
    store = open_test_store(commit_batch_files=256, copier_min_files=0)
    sizes = _batch_sizes(monkeypatch)
    rest_count = ingest_module.RestCount

    def counted_at_once(*args: Any) -> Any:  # before the copy: the sizes need what is left
        count = rest_count(*args)
        count._thread.join()
        return count

    monkeypatch.setattr(ingest_module, "RestCount", counted_at_once)
    report = Ingestor(store, "t").ingest(src, "REC-1")
    # 600 entries (the directories are not walk entries): a full batch while more than two
    # are left, then half of what is left, never below 128, and the rest.
    assert sizes == [256, 172, 128, 44]
    assert report.count("stored") == 600
    assert len(_objects(store)) == 600
    assert verify_store(store, "t").ok


def test_a_volume_that_grew_after_its_survey_is_offloaded_whole(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    files = {f"DCIM/100/{i:04}.JPG": i.to_bytes(2, "big") for i in range(300)}
    src = make_tree(tmp_path / "src", files)
    store = open_test_store(commit_batch_files=1024)
    survey = ingest_module._Session._survey

    def undercounted(self: Any) -> Any:
        found = survey(self)
        found.totals.entries = 10  # as if 290 files had been written after the first walk
        return found

    monkeypatch.setattr(ingest_module._Session, "_survey", undercounted)
    sizes = _batch_sizes(monkeypatch)
    report = Ingestor(store, "t").ingest(src, "REC-1")
    assert sizes == [128, 128, 44]  # the smallest batches, then the rest
    assert report.count("stored") == 300 and len(_objects(store)) == 300
    assert verify_store(store, "t").ok
