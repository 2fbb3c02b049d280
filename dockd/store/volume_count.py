"""A volume's totals: what the survey of an offload (:mod:`dockd.store.ingest`) counts, and
the counting of the rest of its walk on a thread of its own while the copy goes on.

The survey walks a volume once before it is copied: for the progress' totals, and to tell a
re-dock of an unchanged volume from one with something to copy. Once it knows there is
something to copy, the copy need not wait for the end of that walk (0.2 s at 10,000 files,
seconds on a slow card): the rest is counted here, and the totals are handed over when the
walk ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dockd.store.source import EntryKind, SourceEntry, WalkAhead

log = logging.getLogger(__name__)


@dataclass
class VolumeTotals:
    """Files and their bytes, and every entry the walk met (files and everything else:
    the walk's order numbers count them all)."""

    files: int = 0
    bytes: int = 0
    entries: int = 0

    def add(self, chunk: list[SourceEntry]) -> list[SourceEntry]:
        """Count a chunk of the walk; its files."""
        files = [entry for entry in chunk if entry.kind is EntryKind.FILE]
        self.files += len(files)
        self.bytes += sum(entry.size for entry in files)
        self.entries += len(chunk)
        return files


class RestCount:
    """Counts the rest of a walk (``chunks``, taken from ``walk``) into ``totals`` on a
    thread of its own, and calls ``counted`` with them once the walk ends (on that thread).
    :meth:`close` stops it (``counted`` is then never called) and closes the walk."""

    def __init__(self, walk: WalkAhead, chunks: Iterator[list[SourceEntry]],
                 totals: VolumeTotals, counted: Callable[[VolumeTotals], None]) -> None:
        self._walk = walk
        self._chunks = chunks
        self._totals = totals
        self._counted = counted
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="volume-count", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop counting and wait for the thread (the walk's end wakes it)."""
        self._stopped.set()
        self._walk.close()
        self._thread.join()

    def _run(self) -> None:
        try:
            for chunk in self._chunks:
                if self._stopped.is_set():
                    return
                self._totals.add(chunk)
            if not self._stopped.is_set():  # closed early, the walk ends short of the end
                self._counted(self._totals)
        except Exception:
            # Only the totals are lost: the walk that copies meets the same volume and
            # reports what it cannot read.
            log.exception("the volume's totals could not be counted; its progress has none")
