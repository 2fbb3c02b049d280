"""Keeping the recorder's disk busy across file boundaries.

Copying file after file, each open and first read waits a full round trip to the disk
(0.1 ms on the project machine's virtio disk, far more over USB). While one file is copied,
the next few are opened (the same safe way, :class:`BeneathOpener`) and, for the small ones
that are read through the page cache, the kernel is asked to read them
(``POSIX_FADV_WILLNEED``), so the disk serves them in parallel. (Larger files are read with
``O_DIRECT``, which would not use those pages.)

Only a hint: a file that cannot be opened ahead is simply opened again when its turn comes,
and that open reports the error.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from pathlib import Path

from dockd.store.hashing import INLINE_BELOW
from dockd.store.source import BeneathOpener, SourceEntry, display_path

log = logging.getLogger(__name__)

WINDOW_FILES = 16
WINDOW_BYTES = 16 << 20
HEAD_BYTES = 4 << 20  # how much of a file's start to ask for
Opened = tuple[int, os.stat_result]
"""A file opened ahead: its fd and the ``fstat`` it was checked by."""
LARGEST = 8 << 20
"""Files larger than this are not opened ahead: their copy takes long enough that the
round trip of their open does not matter, and the kernel's read-ahead streams them."""


def worth_reading_ahead(entry: SourceEntry) -> bool:
    """Whether the copy gains from opening ``entry`` ahead of its turn."""
    return entry.size <= LARGEST


class ReadAhead:
    """Opens the next files of ``entries`` (in the order they will be copied) ahead of time.

    :meth:`take` hands the copy an fd it owns from then on; :meth:`close` closes the rest.
    Files are opened through ``opener`` (the session's, shared with the copy); given the
    volume's root instead, it makes one of its own and closes it with the rest.
    """

    def __init__(self, opener: BeneathOpener | Path, entries: list[SourceEntry]) -> None:
        self._owns_opener = isinstance(opener, Path)
        self._opener = BeneathOpener(opener) if isinstance(opener, Path) else opener
        self._entries = entries
        self._next = 0
        self._window: deque[tuple[SourceEntry, Opened | None]] = deque()
        self._window_bytes = 0

    def take(self, entry: SourceEntry) -> Opened | None:
        """``entry`` opened ahead (its fd and the ``fstat`` it was checked by), or None
        (then the caller opens it itself)."""
        self._fill()
        window = self._window
        if not window:
            return None
        if window[0][0] is not entry:  # the copy nearly always asks for the next one
            if not any(ahead is entry for ahead, _opened in window):
                return None  # not one of the files read ahead
            while window[0][0] is not entry:
                self._discard()  # one the copy did not ask for (it was known, or skipped)
        opened = self._pop()
        self._fill()
        return opened

    def close(self) -> None:
        """Close every fd still held (before the volume is unmounted)."""
        while self._window:
            self._discard()
        self._next = len(self._entries)
        if self._owns_opener:
            self._opener.close()

    def _discard(self) -> None:
        opened = self._pop()
        if opened is not None:
            os.close(opened[0])

    def _pop(self) -> Opened | None:
        entry, opened = self._window.popleft()
        self._window_bytes -= min(entry.size, HEAD_BYTES)
        return opened

    def _fill(self) -> None:
        while self._next < len(self._entries) and len(self._window) < WINDOW_FILES and (
                not self._window or self._window_bytes < WINDOW_BYTES):
            entry = self._entries[self._next]
            self._next += 1
            self._window.append((entry, self._open(entry)))
            self._window_bytes += min(entry.size, HEAD_BYTES)

    def _open(self, entry: SourceEntry) -> Opened | None:
        try:
            opened = self._opener.open_with_stat(entry)
        except OSError as exc:
            log.debug("not read ahead", extra={"path": display_path(entry.relpath),
                                               "error": exc.strerror})
            return None
        if entry.size > INLINE_BELOW:
            return opened  # read with O_DIRECT (content_store): cached pages would be read twice
        try:
            os.posix_fadvise(opened[0], 0, min(entry.size, HEAD_BYTES), os.POSIX_FADV_WILLNEED)
        except OSError as exc:  # a file system without read-ahead: the fd is still good
            log.debug("no read-ahead advice", extra={"path": display_path(entry.relpath),
                                                     "error": exc.strerror})
        return opened
