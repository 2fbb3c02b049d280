"""The kernel's read-only flag of a block device (``BLKROGET``/``BLKROSET``, as ``blockdev
--getro/--setro`` do): set on a recorder's disk before it is mounted, so that nothing — a
journal replay, a driver's bookkeeping, a mistake of ours — can write to the evidence."""

from __future__ import annotations

import errno
import fcntl
import os
import struct

# <linux/fs.h>: _IO(0x12, 93) and _IO(0x12, 94); the argument is a pointer to an int.
BLKROSET = 0x125D
BLKROGET = 0x125E
# A device that left the bus (a recorder pulled out) answers with one of these.
GONE = frozenset({errno.ENOENT, errno.ENXIO, errno.ENODEV, errno.ENOMEDIUM})


def is_read_only(device_node: str) -> bool:
    """Whether the kernel holds ``device_node`` read-only; OSError when it cannot be asked."""
    fd = _open(device_node)
    try:
        raw = fcntl.ioctl(fd, BLKROGET, struct.pack("i", 0))
    finally:
        os.close(fd)
    return bool(struct.unpack("i", raw)[0])


def set_read_only(device_node: str, read_only: bool) -> bool:
    """Set or clear the read-only flag of ``device_node``; returns the flag it had before.

    OSError (``ENOTTY`` for a node that is not a block device, ``EACCES``/``EPERM`` without
    CAP_SYS_ADMIN) when it cannot be done."""
    fd = _open(device_node)
    try:
        before = struct.unpack("i", fcntl.ioctl(fd, BLKROGET, struct.pack("i", 0)))[0]
        fcntl.ioctl(fd, BLKROSET, struct.pack("i", int(read_only)))
    finally:
        os.close(fd)
    return bool(before)


def _open(device_node: str) -> int:
    # Opened for reading only: the ioctls need no write access, and a write open would
    # make udev's "watch" rule re-probe the disk when it is closed.
    return os.open(device_node, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
