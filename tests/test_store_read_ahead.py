"""Files opened ahead of their copy: handed over in order, never leaked, never trusted blindly."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dockd.store.evidence import EvidenceStore
from dockd.store.ingest import Ingestor
from dockd.store.progress import Progress
from dockd.store.read_ahead import WINDOW_FILES, ReadAhead
from dockd.store.source import WalkAhead, walk_volume
from dockd.store.verify import verify_store

Opener = Callable[..., EvidenceStore]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]


def _open_under(root: Path) -> list[str]:
    """This process's open fds that point into ``root``."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed while listing
        if target.startswith(str(root)):
            found.append(target)
    return found


def test_fds_come_in_copy_order_and_none_outlives_close(make_tree: Tree, tmp_path: Path) -> None:
    names = {f"DCIM/{i:03}.MP4": bytes([i]) * (i + 1) for i in range(WINDOW_FILES * 2)}
    src = make_tree(tmp_path / "src", names)
    entries = [e for e in walk_volume(src) if e.is_file]
    ahead = ReadAhead(src, entries)
    first = ahead.take(entries[0])
    assert first is not None and os.read(first[0], 100) == bytes([0])
    os.close(first[0])
    files_open = [t for t in _open_under(src) if os.path.isfile(t)]
    assert len(files_open) == WINDOW_FILES  # the window, not the whole volume
    # Entries the copy skips (known files) are closed, not handed out late.
    third = ahead.take(entries[3])
    assert third is not None and os.read(third[0], 100) == bytes([3]) * 4
    os.close(third[0])
    assert ahead.take(entries[1]) is None  # already passed: the caller opens it itself
    ahead.close()
    assert _open_under(src) == []


def test_a_file_gone_before_its_turn_is_left_to_the_copy(make_tree: Tree, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"A.MP4": b"a", "B.MP4": b"b"})
    entries = [e for e in walk_volume(src) if e.is_file]
    (src / "B.MP4").unlink()
    ahead = ReadAhead(src, entries)
    opened = ahead.take(entries[0])
    assert opened is not None
    os.close(opened[0])
    assert ahead.take(entries[1]) is None  # the copy's own open reports "vanished"
    ahead.close()


def test_a_cancelled_session_keeps_no_file_of_the_volume_open(open_test_store: Opener,
                                                               make_tree: Tree,
                                                               tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {f"DCIM/{i:03}.MP4": os.urandom(300_000) for i in range(40)})
    store = open_test_store(chunk_bytes=64 << 10)
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.bytes_done >= 5 * 300_000 and not cancel.is_set():
            assert _open_under(src)  # files were being read ahead
            cancel.set()  # the recorder is pulled: the volume must be released

    report = Ingestor(store, "t").ingest(src, "REC-1", cancel=cancel, on_progress=on_progress)
    assert report.result == "interrupted"
    assert _open_under(src) == []
    assert verify_store(store, "t").ok


def test_walk_ahead_gives_the_walk_in_chunks_and_keeps_nothing_open_after_close(
        make_tree: Tree, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {f"D{i // 50}/{i:03}.MP4": b"x" for i in range(300)})
    with WalkAhead(src, 64) as chunks:
        got = list(chunks)
    assert [len(c) for c in got] == [64, 64, 64, 64, 44]
    assert [e.relpath for c in got for e in c] == [e.relpath for e in walk_volume(src)]
    # Left after the first chunk: the walk (waiting to hand over more) stops, its
    # directories closed.
    ahead = WalkAhead(src, 8, depth=1)
    first = next(iter(ahead))
    assert len(first) == 8 and _open_under(src)
    ahead.close()
    assert _open_under(src) == [] and not ahead._thread.is_alive()


def test_walk_ahead_raises_the_walks_error_to_the_caller(tmp_path: Path) -> None:
    with WalkAhead(tmp_path / "gone", 8) as chunks, pytest.raises(FileNotFoundError):
        list(chunks)
