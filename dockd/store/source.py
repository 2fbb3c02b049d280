"""Walking a recorder's volume without trusting it.

Names are handled as bytes (lossless for names that are not UTF-8). Nothing but regular
files and directories is ever opened: symlinks, FIFOs, devices and sockets are reported,
never followed; a directory met twice (a bind-mount loop) is reported once and not entered.
Directories and files are opened component by component with O_NOFOLLOW relative to
directory fds, so a volume that changes under us cannot redirect a read outside itself.
The walk is iterative and streamed (flat memory in the number of files, no recursion
limit) and enters no directory nested deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import itertools
import os
import queue
import re
import stat
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from dockd.errors import SourceUnavailableError

_CONTROL = re.compile("[\x00-\x1f\x7f]")
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# The volume's root is the path the caller named (a mount point); only what is below it
# comes from the recorder and is never followed.
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class EntryKind(enum.StrEnum):
    """What an entry of the volume is; anything but ``file`` is why it is not stored."""

    FILE = "file"
    SYMLINK = "symlink"
    FIFO = "fifo"
    DEVICE = "device"
    SOCKET = "socket"
    DIRECTORY_LOOP = "directory_loop"  # a directory met twice (a bind-mount loop)
    TOO_DEEP = "too_deep"  # a directory below MAX_DEPTH: not entered
    OTHER = "other"
    UNREADABLE = "unreadable"  # its directory or its metadata could not be read


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class SourceEntry:
    """One thing found on the volume. ``kind`` is ``file`` or why it is not stored."""

    relpath: bytes
    kind: EntryKind
    size: int = 0
    mtime_ns: int = 0
    dev: int = 0
    ino: int = 0
    detail: str = ""

    @property
    def is_file(self) -> bool:
        return self.kind is EntryKind.FILE


# kinds that are not regular files; each becomes a file.skipped custody event
SKIP_KINDS = frozenset({EntryKind.SYMLINK, EntryKind.FIFO, EntryKind.DEVICE, EntryKind.SOCKET,
                        EntryKind.DIRECTORY_LOOP, EntryKind.TOO_DEEP, EntryKind.OTHER})
# kinds that mean something could not be read; each makes the ingest incomplete
ERROR_KINDS = frozenset({EntryKind.UNREADABLE})

MAX_DEPTH = 32
"""Directories nested deeper than this below the volume's root are not entered (each is
reported once, ``too_deep``). A recorder writes a few levels (``DCIM/100MEDIA``); a volume
nested hundreds deep is damaged or hostile, and the walk keeps one open directory per
level."""


def check_source(root: Path) -> None:
    """Raise SourceUnavailableError unless ``root`` is a readable directory."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise SourceUnavailableError(f"recorder volume {root} does not exist") from None
    except OSError as exc:
        raise SourceUnavailableError(f"recorder volume {root} cannot be read: {exc.strerror}") \
            from None
    if not stat.S_ISDIR(st.st_mode):
        raise SourceUnavailableError(f"recorder volume {root} is not a directory")
    try:
        with os.scandir(root):
            pass
    except OSError as exc:
        raise SourceUnavailableError(f"recorder volume {root} cannot be read: {exc.strerror}") \
            from None


def walk_volume(root: Path, max_depth: int = MAX_DEPTH) -> Generator[SourceEntry, None, None]:
    """Every entry below ``root`` in a stable order (each directory's names sorted as
    bytes, directories descended where met), streamed: what is kept is one sorted name
    list and one open directory per level being walked, never the whole volume.

    Iterative (no recursion limit). Directories are opened relative to their parent with
    ``O_NOFOLLOW``, so a volume that changes under the walk cannot lead it elsewhere.
    """
    root_fd = os.open(root, _ROOT_FLAGS)
    # One frame per directory being walked: its fd, its path, its names still to visit.
    stack: list[tuple[int, bytes, Iterator[bytes]]] = []
    try:
        root_st = os.fstat(root_fd)
        seen_dirs = {(root_st.st_dev, root_st.st_ino)}
        listed = _list(root_fd)
        if isinstance(listed, str):
            yield SourceEntry(b".", EntryKind.UNREADABLE, detail=listed)
            return
        stack.append((root_fd, b"", iter(listed)))
        while stack:
            dir_fd, rel, names = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                if dir_fd != root_fd:
                    os.close(dir_fd)
                continue
            relpath = rel + b"/" + name if rel else name
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as exc:
                yield SourceEntry(relpath, EntryKind.UNREADABLE, detail=exc.strerror or str(exc))
                continue
            mode = st.st_mode
            if stat.S_ISREG(mode):
                yield SourceEntry(relpath, EntryKind.FILE, st.st_size, st.st_mtime_ns, st.st_dev,
                                  st.st_ino)
            elif not stat.S_ISDIR(mode):
                yield SourceEntry(relpath, _kind_of(mode), dev=st.st_dev, ino=st.st_ino)
            elif (st.st_dev, st.st_ino) in seen_dirs:
                yield SourceEntry(relpath, EntryKind.DIRECTORY_LOOP, dev=st.st_dev, ino=st.st_ino)
            elif len(stack) > max_depth:
                yield SourceEntry(relpath, EntryKind.TOO_DEEP, dev=st.st_dev, ino=st.st_ino,
                                  detail=f"nested more than {max_depth} directories deep")
            else:
                seen_dirs.add((st.st_dev, st.st_ino))
                entered = _enter(dir_fd, name, relpath)
                if isinstance(entered, SourceEntry):
                    yield entered
                else:
                    stack.append(entered)
    finally:
        for dir_fd, _rel, _names in stack:
            if dir_fd != root_fd:
                os.close(dir_fd)
        os.close(root_fd)


class WalkAhead:
    """:func:`walk_volume` in chunks of ``size`` entries, walked on a thread of its own up to
    ``depth`` chunks ahead of the caller: the walk's reads of a cold volume overlap what the
    caller does with each chunk (a re-dock's catalog lookups read another disk). Iterate
    it once; :meth:`close` (also on leaving ``with``) stops the walk and closes its
    directories. An error of the walk is raised to the caller where it occurred."""

    def __init__(self, root: Path, size: int, depth: int = 4) -> None:
        self._queue: queue.Queue[list[SourceEntry] | BaseException] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(root, size),
                                        name="walk-ahead", daemon=True)
        self._thread.start()

    def __enter__(self) -> WalkAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[list[SourceEntry]]:
        while True:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield item

    def close(self) -> None:
        """Stop the walk and close its directories; a caller still iterating (on another
        thread) is given the end of the walk."""
        self._stop.set()
        while self._thread.is_alive():  # unblock a walk waiting to hand over a chunk
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self._thread.join()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._queue.put_nowait([])

    def _run(self, root: Path, size: int) -> None:
        try:
            walk = walk_volume(root)
        except BaseException as exc:  # handed to the caller, raised there
            self._put(exc)
            return
        try:
            while not self._stop.is_set():
                chunk = list(itertools.islice(walk, size))
                self._put(chunk)
                if not chunk:
                    return
        except BaseException as exc:  # handed to the caller, raised there
            self._put(exc)
        finally:
            walk.close()  # its open directories, on the thread that walked them

    def _put(self, item: list[SourceEntry] | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue


def _list(dir_fd: int) -> list[bytes] | str:
    """The sorted names in a directory, or why it cannot be read."""
    try:
        # scandir on an fd gives str names (the file system encoding, surrogateescape):
        # os.fsencode gives back the exact bytes.
        return sorted(os.fsencode(name) for name in os.listdir(dir_fd))
    except OSError as exc:
        return exc.strerror or str(exc)


def _enter(parent_fd: int, name: bytes,
           relpath: bytes) -> tuple[int, bytes, Iterator[bytes]] | SourceEntry:
    """A new stack frame for the subdirectory ``name``, or the entry saying it is unreadable."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        return SourceEntry(relpath, EntryKind.UNREADABLE, detail=exc.strerror or str(exc))
    listed = _list(fd)
    if isinstance(listed, str):
        os.close(fd)
        return SourceEntry(relpath, EntryKind.UNREADABLE, detail=listed)
    return fd, relpath, iter(listed)


def _kind_of(mode: int) -> EntryKind:
    if stat.S_ISLNK(mode):
        return EntryKind.SYMLINK
    if stat.S_ISFIFO(mode):
        return EntryKind.FIFO
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return EntryKind.DEVICE
    if stat.S_ISSOCK(mode):
        return EntryKind.SOCKET
    return EntryKind.OTHER


def open_beneath(root: Path, entry: SourceEntry) -> int:
    """Open ``entry`` read-only without following any symlink on the way.

    Raises OSError (ELOOP/ENOTDIR when a component was swapped for a link, ENOENT when it
    vanished, ESTALE when the opened file is not the one that was scanned).
    """
    return BeneathOpener(root).open(entry)


class BeneathOpener:
    """:func:`open_beneath` for many files of one volume: the directory of the last file
    opened is kept open, so the next file of the same directory (a recorder's files come
    directory by directory) is one ``openat`` instead of one per path component.

    The kept directory was reached the same safe way, component by component with
    ``O_NOFOLLOW``; a file opened through it is still checked to be the one scanned.
    """

    def __init__(self, root: Path) -> None:
        self._root = os.fsencode(root)
        self._dir: tuple[bytes, int] | None = None

    def open(self, entry: SourceEntry) -> int:
        return self.open_with_stat(entry)[0]

    def open_with_stat(self, entry: SourceEntry) -> tuple[int, os.stat_result]:
        """:meth:`open`, with the ``fstat`` it checked the file by (the copy needs it too:
        one ``fstat`` per file, not two)."""
        head, _sep, name = entry.relpath.rpartition(b"/")
        fd = os.open(name, _OPEN_FLAGS, dir_fd=self._dir_fd(head))
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_ino != entry.ino or st.st_dev != entry.dev:
            os.close(fd)
            raise OSError(errno.ESTALE, "the file was replaced after it was listed")
        return fd, st

    def close(self) -> None:
        if self._dir is not None:
            os.close(self._dir[1])
            self._dir = None

    def _dir_fd(self, head: bytes) -> int:
        if self._dir is not None and self._dir[0] == head:
            return self._dir[1]
        self.close()
        dir_fd = os.open(self._root, _ROOT_FLAGS)
        try:
            for part in head.split(b"/") if head else ():
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
                os.close(dir_fd)
                dir_fd = next_fd
        except BaseException:
            os.close(dir_fd)
            raise
        self._dir = (head, dir_fd)
        return dir_fd


def display_path(raw: bytes) -> str:
    """A printable, valid UTF-8 form of a recorder path.

    Bytes that are not UTF-8 and control characters become ``\\xNN``; everything else is
    kept. The exact bytes are kept separately (``source_path_raw``), so nothing is lost.
    """
    text = raw.decode("utf-8", errors="backslashreplace")
    if _CONTROL.search(text) is None:  # nearly every name: one scan in C
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def is_lossless(raw: bytes) -> bool:
    """True when :func:`display_path` of ``raw`` gives back exactly ``raw``."""
    return display_path(raw).encode("utf-8") == raw
