"""Direct I/O for the store: staged files written on a thread of their own and read back
past the page cache, where the disk allows.

A large file is written with ``O_DIRECT``: each chunk goes from the copy buffer to the disk
without a second copy into the page cache, and the disk writes while the next chunk is read
and hashed, instead of all at once in the batch's ``syncfs``. Measured on the project
machine (1 GiB, caches dropped): page-cache writes 1.97 s and 2.7 s of CPU, ``O_DIRECT``
0.87–1.0 s and 0.9–1.3 s of CPU (docs/BENCHMARKS.md).

What ``O_DIRECT`` cannot take — a file system without direct I/O, an unaligned tail, the
rest of a short write — goes through the page cache instead; the batch's ``syncfs`` makes
both durable, so the fallback changes speed, never safety.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
from concurrent.futures import Future, ThreadPoolExecutor

ALIGN = 4096  # offsets and lengths of direct I/O are kept to multiples of this


def aligned_buffer(size: int) -> mmap.mmap:
    """A page-aligned buffer of ``size`` bytes, as ``O_DIRECT`` needs."""
    return mmap.mmap(-1, size)


def enable_direct(fd: int) -> bool:
    """Switch ``fd`` to direct I/O; False when its file system has none (then nothing
    changes and writes go through the page cache)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return False
    return True


def _disable_direct(fd: int) -> bool:
    """Back to page-cache writes; False if ``fd`` was not in direct mode."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    if not flags & os.O_DIRECT:
        return False
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
    return True


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset``. A direct write the disk refuses (EINVAL: an
    unaligned length or offset) or cuts short is finished through the page cache. Data
    written whole by the first ``pwrite`` (nearly always) costs no view or slice."""
    while data:
        try:
            written = os.pwrite(fd, data, offset)
        except OSError as exc:
            if exc.errno == errno.EINVAL and _disable_direct(fd):
                continue
            raise
        if written == len(data):
            return
        _disable_direct(fd)  # what is left may start unaligned
        data = memoryview(data)[written:]
        offset += written


def pread_all(fd: int, view: memoryview, offset: int) -> int:
    """Read into ``view`` at ``offset``, as much as the file has; a direct read the disk
    refuses (EINVAL: unaligned) is made through the page cache instead."""
    try:
        return os.preadv(fd, [view], offset)
    except OSError as exc:
        if exc.errno == errno.EINVAL and _disable_direct(fd):
            return os.preadv(fd, [view], offset)
        raise


class ChunkWriter:
    """One writer thread; chunks submitted for a file are written in submission order."""

    def __init__(self) -> None:
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="store-write")

    def submit(self, fd: int, chunk: memoryview, offset: int) -> Future[None]:
        """Queue ``chunk`` to be written at ``offset``; the caller keeps the buffer untouched
        until the future is done, and reads write errors (OSError) from it."""
        return self._worker.submit(pwrite_all, fd, chunk, offset)

    def close_after(self, fd: int, writes: list[Future[None]]) -> Future[None]:
        """Queue the closing of ``fd`` behind the writes to it: the future is done once they
        are and the descriptor is closed, and holds the first write error, if any."""
        return self._worker.submit(_close_after, fd, writes)

    def close(self) -> None:
        self._worker.shutdown(wait=True)


def _close_after(fd: int, writes: list[Future[None]]) -> None:
    os.close(fd)
    for write in writes:  # all done: they ran before this job, on the same single thread
        write.result()
