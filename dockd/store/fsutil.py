"""Durable file-system steps: fsync of files and directories, atomic replace."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

from dockd.errors import StoreFullError, StoreUnavailableError

DIR_MODE = 0o750
FILE_MODE = 0o440


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a link) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path, mode: int = DIR_MODE) -> list[Path]:
    """``mkdir -p`` with ``mode``; returns the directories it created, outermost first."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    created = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
            os.chmod(directory, mode)  # umask must not loosen or tighten it
            created.append(directory)
        except FileExistsError:
            pass
    return created


def link_making_dirs(existing: str | Path, new: str | Path, mode: int = DIR_MODE) -> bool:
    """Hard-link ``existing`` at ``new``, creating ``new``'s missing directories (mode
    ``mode``). Never replaces: False when ``new`` already exists."""
    # Link first, create directories only when that fails: for most files the directory
    # is already there, and a stat of each level would cost more than the link.
    try:
        os.link(existing, new)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:
        make_dirs(Path(new).parent, mode)
    try:
        os.link(existing, new)  # still ENOENT: ``existing`` itself is missing
        return True
    except FileExistsError:
        return False


def write_file_atomic(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old or the new file, never half."""
    write_chunks_atomic(path, [data], mode)


def write_chunks_atomic(path: Path, chunks: Iterable[bytes], mode: int = 0o640) -> None:
    """:func:`write_file_atomic` for content produced piece by piece (never all in memory)."""
    # Unique per call: threads of one process (bays) may replace the same file at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        for chunk in chunks:
            write_all(fd, chunk)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until everything is written (short writes happen on full disks)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def raise_store_error(exc: OSError, what: str) -> None:
    """Turn an OSError met while writing the store into the administrator's error."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise StoreFullError(f"the evidence store is full while {what}") from exc
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        raise StoreUnavailableError(
            f"the evidence store cannot be written while {what}: {exc.strerror}"
        ) from exc
    if exc.errno in (errno.EIO, errno.EUCLEAN):
        # The disk or the file system under the store failed (ext4 then aborts its journal
        # and turns read-only): no retry helps; the administrator must look at the disk.
        raise StoreUnavailableError(
            f"the evidence store's disk failed while {what}: {exc.strerror}; check the disk "
            "and the kernel log (dmesg), repair it (fsck), then dock again"
        ) from exc
    raise exc


@contextlib.contextmanager
def exclusive_lock(path: Path, what: str) -> Iterator[int]:
    """Hold a non-blocking ``flock`` on ``path`` for the block; ``what`` names it in errors."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreUnavailableError(f"{what} is held by another dockd process") from None
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def blocking_lock(path: Path) -> Iterator[int]:
    """Hold an exclusive ``flock`` on ``path`` for the block, waiting for it if needed."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def try_lock(path: Path) -> int | None:
    """An fd holding an exclusive ``flock`` on ``path``, or None if another process holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def umask_clears(mode: int) -> bool:
    """Whether this process's umask takes bits off ``mode``; True when it cannot be read.
    Read from ``/proc`` (Linux 4.7 and later): ``os.umask`` cannot read it without setting
    it, for every thread at once."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return bool(int(line.split()[1], 8) & mode)
    except (OSError, ValueError, IndexError):
        return True  # unknown: the caller sets the mode after creating
    return True
