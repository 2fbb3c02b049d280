"""O_DIRECT writes of staged files, and what happens where the disk will not take them."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from dockd.store.direct_write import ChunkWriter, aligned_buffer, enable_direct, pwrite_all


def _is_direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)


def test_aligned_chunks_go_direct_and_an_unaligned_tail_through_the_cache(tmp_path: Path) -> None:
    data = os.urandom((1 << 20) + 1000)  # one aligned MiB, then a 1,000-byte tail
    buf = aligned_buffer(1 << 20)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert enable_direct(fd) and _is_direct(fd)  # ext4 under pytest's tmp_path
        buf[:] = data[: 1 << 20]
        pwrite_all(fd, memoryview(buf), 0)
        assert _is_direct(fd)  # the aligned MiB went straight to the disk
        buf[:1000] = data[1 << 20:]
        pwrite_all(fd, memoryview(buf)[:1000], 1 << 20)  # the disk refuses it as direct I/O
        assert not _is_direct(fd)
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == data


def test_writer_thread_keeps_order_and_reports_errors_on_the_future(tmp_path: Path) -> None:
    writer = ChunkWriter()
    bufs = [aligned_buffer(4096) for _ in range(3)]
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    enable_direct(fd)
    futures = []
    for i, buf in enumerate(bufs):
        buf[:] = bytes([i]) * 4096
        futures.append(writer.submit(fd, memoryview(buf), i * 4096))
    for future in futures:
        future.result()
    os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"".join(bytes([i]) * 4096 for i in range(3))
    read_only = os.open(tmp_path / "f", os.O_RDONLY)
    failed = writer.submit(read_only, memoryview(bufs[0]), 0)
    assert isinstance(failed.exception(), OSError)  # EBADF: the caller turns it into a store error
    os.close(read_only)
    writer.close()


def test_a_file_that_cannot_do_direct_io_is_left_as_it_was() -> None:
    # A socket is the kernel object here that refuses O_DIRECT (every local file system on
    # these machines accepts it); enable_direct must report it and change nothing.
    left, right = socket.socketpair()
    try:
        before = fcntl.fcntl(left.fileno(), fcntl.F_GETFL)
        assert enable_direct(left.fileno()) is False
        assert fcntl.fcntl(left.fileno(), fcntl.F_GETFL) == before
    finally:
        left.close()
        right.close()
