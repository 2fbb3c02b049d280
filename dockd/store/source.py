"""Walking a recorder's volume without trusting it.

Names are handled as bytes (lossless for names that are not UTF-8). Nothing but regular
files and directories is ever opened: symlinks, FIFOs, devices and sockets are reported,
never followed; a directory met twice (a bind-mount loop) is reported once and not entered.
Files are opened component by component with O_NOFOLLOW relative to directory fds, so a
volume that changes under us cannot redirect a read outside itself.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dockd.errors import SourceUnavailableError

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class SourceEntry:
    """One thing found on the volume. ``kind`` is ``file`` or why it is not stored."""

    relpath: bytes
    kind: str
    size: int = 0
    mtime_ns: int = 0
    dev: int = 0
    ino: int = 0
    detail: str = ""

    @property
    def is_file(self) -> bool:
        return self.kind == "file"


# kinds that are not regular files; each becomes a file.skipped custody event
SKIP_KINDS = {"symlink", "fifo", "device", "socket", "directory_loop", "other"}
# kinds that mean something could not be read; each makes the ingest incomplete
ERROR_KINDS = {"unreadable"}


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


def walk_volume(root: Path) -> Iterator[SourceEntry]:
    """Every entry below ``root`` in a stable (sorted) order, directories descended."""
    root_st = os.stat(root)
    seen_dirs = {(root_st.st_dev, root_st.st_ino)}
    yield from _walk(os.fsencode(root), b"", seen_dirs)


def _walk(root: bytes, rel: bytes, seen_dirs: set[tuple[int, int]]) -> Iterator[SourceEntry]:
    directory = os.path.join(root, rel) if rel else root
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield SourceEntry(rel or b".", "unreadable", detail=exc.strerror or str(exc))
        return
    for entry in entries:
        relpath = os.path.join(rel, entry.name) if rel else entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            yield SourceEntry(relpath, "unreadable", detail=exc.strerror or str(exc))
            continue
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                yield SourceEntry(relpath, "directory_loop", dev=st.st_dev, ino=st.st_ino)
                continue
            seen_dirs.add(key)
            yield from _walk(root, relpath, seen_dirs)
        elif stat.S_ISREG(mode):
            yield SourceEntry(relpath, "file", st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
        else:
            yield SourceEntry(relpath, _kind_of(mode), dev=st.st_dev, ino=st.st_ino)


def _kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "other"


def open_beneath(root: Path, entry: SourceEntry) -> int:
    """Open ``entry`` read-only without following any symlink on the way.

    Raises OSError (ELOOP/ENOTDIR when a component was swapped for a link, ENOENT when it
    vanished) or SourceEntryChanged when the opened file is not the one that was scanned.
    """
    parts = entry.relpath.split(b"/")
    dir_fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        fd = os.open(parts[-1], _OPEN_FLAGS, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (entry.dev, entry.ino):
        os.close(fd)
        raise OSError(errno.ESTALE, "the file was replaced after it was listed")
    return fd


def display_path(raw: bytes) -> str:
    """A printable, valid UTF-8 form of a recorder path.

    Bytes that are not UTF-8 and control characters become ``\\xNN``; everything else is
    kept. The exact bytes are kept separately (``source_path_raw``), so nothing is lost.
    """
    text = raw.decode("utf-8", errors="backslashreplace")
    if not any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return text
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)


def is_lossless(raw: bytes) -> bool:
    """True when :func:`display_path` of ``raw`` gives back exactly ``raw``."""
    return display_path(raw).encode("utf-8") == raw
