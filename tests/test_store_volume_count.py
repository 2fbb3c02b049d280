"""The copy starts before the volume is counted: once the survey knows there are files to
copy, the rest of the volume is counted on a thread of its own."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import dockd.store.ingest as ingest_module
from dockd.store.evidence import EvidenceStore
from dockd.store.ingest import Ingestor
from dockd.store.progress import Progress
from dockd.store.source import SourceEntry, WalkAhead
from dockd.store.verify import verify_store
from dockd.store.volume_count import RestCount, VolumeTotals
from tests.test_store_ingest import _batch_sizes
from tests.test_store_read_ahead import _open_under

Opener = Callable[..., EvidenceStore]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]
FILES = 700  # three walk chunks: the survey hands the last two to its count


def _volume(make_tree: Tree, tmp_path: Path) -> tuple[Path, int]:
    files = {f"DCIM/{i:04}.JPG": i.to_bytes(2, "big") * 50 for i in range(FILES)}
    return make_tree(tmp_path / "src", files), sum(map(len, files.values()))


def _hold_the_count(monkeypatch: pytest.MonkeyPatch,
                    rest: Callable[[Iterator[list[SourceEntry]]], Iterator[list[SourceEntry]]]
                    ) -> None:
    """Every session's RestCount counts ``rest(chunks)`` instead of the survey's chunks."""
    def count(walk: WalkAhead, chunks: Iterator[list[SourceEntry]], totals: VolumeTotals,
              counted: Callable[[VolumeTotals], None]) -> RestCount:
        return RestCount(walk, rest(chunks), totals, counted)

    monkeypatch.setattr(ingest_module, "RestCount", count)


def _no_count_running() -> bool:
    return not any(t.name == "volume-count" for t in threading.enumerate())


def test_files_are_copied_before_the_volume_is_counted(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    src, total_bytes = _volume(make_tree, tmp_path)
    store = open_test_store(copier_min_files=0, commit_batch_files=64)
    released = threading.Event()

    def after_a_hundred_files(chunks: Iterator[list[SourceEntry]]
                              ) -> Iterator[list[SourceEntry]]:
        released.wait(30)
        yield from chunks

    _hold_the_count(monkeypatch, after_a_hundred_files)
    seen: list[Progress] = []

    def on_progress(p: Progress) -> None:
        seen.append(p)
        if p.files_done >= 100:
            released.set()

    sizes = _batch_sizes(monkeypatch)
    try:
        report = Ingestor(store, "t").ingest(src, "REC-1", on_progress=on_progress)
    finally:
        released.set()
    uncounted = [p for p in seen if p.files_total == 0]
    assert uncounted and max(p.files_done for p in uncounted) >= 100
    assert all(p.bytes_total == 0 for p in uncounted)
    assert (seen[-1].files_done, seen[-1].files_total) == (FILES, FILES)
    assert (seen[-1].bytes_done, seen[-1].bytes_total) == (total_bytes, total_bytes)
    # Full batches while the count was held: the halving needs to know what is left.
    assert sizes[:2] == [64, 64]
    assert report.result == "completed" and report.count("stored") == FILES
    assert verify_store(store, "t").ok
    assert _no_count_running()


def test_a_session_stopped_while_its_volume_is_counted_stops_the_count(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    src, _bytes = _volume(make_tree, tmp_path)
    store = open_test_store(copier_min_files=0, commit_batch_files=64)
    handed: list[int] = []

    def chunk_by_chunk(chunks: Iterator[list[SourceEntry]]) -> Iterator[list[SourceEntry]]:
        for chunk in chunks:
            handed.append(len(chunk))
            yield chunk

    _hold_the_count(monkeypatch, chunk_by_chunk)
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.files_done >= 50:
            cancel.set()  # the recorder is pulled

    counted: list[VolumeTotals] = []
    real_counted = ingest_module._Session._counted

    def record(self: Any, totals: VolumeTotals) -> None:
        counted.append(VolumeTotals(totals.files, totals.bytes, totals.entries))
        real_counted(self, totals)

    monkeypatch.setattr(ingest_module._Session, "_counted", record)
    report = Ingestor(store, "t").ingest(src, "REC-1", cancel=cancel, on_progress=on_progress)
    assert report.result == "interrupted"
    assert _no_count_running() and _open_under(src) == []
    # Totals are given only for a whole volume: a count stopped short gives none.
    assert all(t.files == FILES for t in counted)
    assert verify_store(store, "t").ok


def test_a_count_that_fails_leaves_the_totals_unknown_and_the_offload_whole(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    src, _bytes = _volume(make_tree, tmp_path)
    store = open_test_store(copier_min_files=0)

    def failing(chunks: Iterator[list[SourceEntry]]) -> Iterator[list[SourceEntry]]:
        yield next(chunks)
        raise OSError(5, "Input/output error")

    _hold_the_count(monkeypatch, failing)
    seen: list[Progress] = []
    with caplog.at_level(logging.ERROR):
        report = Ingestor(store, "t").ingest(src, "REC-1", on_progress=seen.append)
    assert report.result == "completed" and report.count("stored") == FILES
    assert seen[-1].files_done == FILES and seen[-1].files_total == 0
    assert any("totals could not be counted" in r.getMessage() for r in caplog.records)
    assert verify_store(store, "t").ok


def test_a_small_volume_is_counted_before_its_copy(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path) -> None:
    src, total_bytes = _volume(make_tree, tmp_path)
    store = open_test_store()  # 700 files: fewer than a copier is started for
    seen: list[Progress] = []
    Ingestor(store, "t").ingest(src, "REC-1", on_progress=seen.append)
    assert (seen[0].files_total, seen[0].bytes_total) == (FILES, total_bytes)


def test_closing_a_walk_ahead_ends_a_caller_waiting_on_another_thread(
        make_tree: Tree, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {f"D{i // 500}/{i:04}.MP4": b"x" for i in range(2000)})
    ahead = WalkAhead(src, 8, depth=1)
    chunks = iter(ahead)
    next(chunks)
    got: list[int] = []
    caller = threading.Thread(target=lambda: got.extend(len(c) for c in chunks))
    caller.start()
    ahead.close()
    caller.join(5)
    assert not caller.is_alive()
    assert _open_under(src) == []
