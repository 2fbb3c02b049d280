"""Linux SCSI generic pass-through: the SG_IO ioctl, INQUIRY, sense data, sg-node discovery.

``sg_io_hdr`` is built with ctypes so its layout follows the platform ABI (88 bytes on
x86_64).  The ioctl function is injectable: tests pass a fake kernel that reads and writes
through the very pointers this module packs.
"""

from __future__ import annotations

import ctypes
import enum
import errno
import fcntl
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from dockd.devices.recorders.base import (
    ProtocolError,
    RecorderError,
    RecorderGone,
    RecorderTimeout,
)
from dockd.i18n import _

SG_IO = 0x2285
SG_INTERFACE_ID = ord("S")
SENSE_LEN = 26  # what the DV16 DLL allocates; fixed-format sense fits in 18
INQUIRY_LEN = 36
SCSI_STATUS_CHECK_CONDITION = 0x02
DID_NO_CONNECT = 0x01
DID_TIME_OUT = 0x03
DID_ERROR = 0x07
DRIVER_TIMEOUT = 0x06
# Host byte names (<scsi/scsi.h>), for messages: what the transport said, in its own words.
HOST_STATUS_NAMES = {0x01: "DID_NO_CONNECT", 0x02: "DID_BUS_BUSY", 0x03: "DID_TIME_OUT",
                     0x04: "DID_BAD_TARGET", 0x05: "DID_ABORT", 0x06: "DID_PARITY",
                     0x07: "DID_ERROR", 0x08: "DID_RESET", 0x09: "DID_BAD_INTR",
                     0x0E: "DID_TRANSPORT_DISRUPTED", 0x0F: "DID_TRANSPORT_FAILFAST"}


class Direction(enum.IntEnum):
    """``dxfer_direction`` values of <scsi/sg.h>."""

    NONE = -1
    TO_DEV = -2
    FROM_DEV = -3


class SgIoHdr(ctypes.Structure):
    """``struct sg_io_hdr`` (interface 'S', version 3)."""

    _fields_ = (
        ("interface_id", ctypes.c_int),
        ("dxfer_direction", ctypes.c_int),
        ("cmd_len", ctypes.c_ubyte),
        ("mx_sb_len", ctypes.c_ubyte),
        ("iovec_count", ctypes.c_ushort),
        ("dxfer_len", ctypes.c_uint),
        ("dxferp", ctypes.c_void_p),
        ("cmdp", ctypes.c_void_p),
        ("sbp", ctypes.c_void_p),
        ("timeout", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("pack_id", ctypes.c_int),
        ("usr_ptr", ctypes.c_void_p),
        ("status", ctypes.c_ubyte),
        ("masked_status", ctypes.c_ubyte),
        ("msg_status", ctypes.c_ubyte),
        ("sb_len_wr", ctypes.c_ubyte),
        ("host_status", ctypes.c_ushort),
        ("driver_status", ctypes.c_ushort),
        ("resid", ctypes.c_int),
        ("duration", ctypes.c_uint),
        ("info", ctypes.c_uint),
    )


@dataclass(frozen=True)
class ScsiResult:
    """What came back from one SG_IO call."""

    status: int
    host_status: int
    driver_status: int
    sense: bytes
    data: bytes


@dataclass(frozen=True)
class Inquiry:
    """Standard INQUIRY identification strings (trailing spaces removed)."""

    vendor: str
    product: str
    revision: str


IoctlFn = Callable[[int, int, SgIoHdr, bool], int]


class SgDevice:
    """An open sg node; each :meth:`execute` is one synchronous SG_IO."""

    def __init__(self, fd: int, path: str, ioctl: IoctlFn | None = None) -> None:
        self._fd = fd
        self.path = path
        self._ioctl: IoctlFn = ioctl or _real_ioctl

    @classmethod
    def open(cls, path: str, ioctl: IoctlFn | None = None) -> SgDevice:
        """Open ``path`` read-write (SG_IO needs it); ``RecorderGone`` if it vanished."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise RecorderGone(_("SCSI node {path} is gone: {exc}").format(path=path, exc=exc)) from exc
        except OSError as exc:
            raise RecorderError(_("cannot open SCSI node {path}: {exc} (dockd needs read-write access to "
                                  "/dev/sg*; see the udev rules)").format(path=path, exc=exc)) from exc
        return cls(fd, path, ioctl)

    def execute(self, cdb: bytes, direction: Direction, data_out: bytes = b"",
                data_in_len: int = 0, timeout_ms: int = 2000) -> ScsiResult:
        """Run one command and return status, sense and the bytes really transferred."""
        cdb_buf = ctypes.create_string_buffer(cdb, len(cdb))
        sense_buf = ctypes.create_string_buffer(SENSE_LEN)
        length = len(data_out) if direction is Direction.TO_DEV else data_in_len
        data_buf = ctypes.create_string_buffer(data_out, max(length, 1))
        hdr = build_sg_io_hdr(cdb_buf, direction, data_buf, length, sense_buf, timeout_ms)
        try:
            self._ioctl(self._fd, SG_IO, hdr, True)
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO, errno.ENOENT, errno.EIO):
                raise RecorderGone(_("SCSI node {path} went away: {exc}").format(
                                     path=self.path, exc=exc)) from exc
            raise RecorderError(_("SG_IO on {path} failed: {exc}").format(path=self.path, exc=exc)) from exc
        return read_result(hdr, data_buf, sense_buf, direction)

    def close(self) -> None:
        """Close the node once."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def build_sg_io_hdr(cdb: ctypes.Array[ctypes.c_char], direction: Direction,
                    data: ctypes.Array[ctypes.c_char], data_len: int,
                    sense: ctypes.Array[ctypes.c_char], timeout_ms: int) -> SgIoHdr:
    """Fill an ``sg_io_hdr`` pointing at the given buffers (which the caller keeps alive)."""
    if not 6 <= len(cdb) <= 16:
        raise ValueError(f"CDB of {len(cdb)} bytes; SG_IO takes 6..16")
    hdr = SgIoHdr()
    hdr.interface_id = SG_INTERFACE_ID
    hdr.dxfer_direction = int(direction) if data_len or direction is Direction.NONE \
        else int(Direction.NONE)
    hdr.cmd_len = len(cdb)
    hdr.mx_sb_len = len(sense)
    hdr.dxfer_len = data_len
    hdr.dxferp = ctypes.addressof(data) if data_len else None
    hdr.cmdp = ctypes.addressof(cdb)
    hdr.sbp = ctypes.addressof(sense)
    hdr.timeout = timeout_ms
    return hdr


def read_result(hdr: SgIoHdr, data: ctypes.Array[ctypes.c_char],
                sense: ctypes.Array[ctypes.c_char], direction: Direction) -> ScsiResult:
    """Collect status and data after the ioctl; ``resid`` trims what the device did not send."""
    received = b""
    if direction is Direction.FROM_DEV and hdr.dxfer_len:
        resid = hdr.resid
        if not 0 <= resid <= hdr.dxfer_len:
            raise ProtocolError(_("kernel reported residual {resid} for {dxfer_len} bytes").format(
                                  resid=resid, dxfer_len=hdr.dxfer_len))
        received = data.raw[:hdr.dxfer_len - resid]
    return ScsiResult(status=hdr.status, host_status=hdr.host_status,
                      driver_status=hdr.driver_status,
                      sense=sense.raw[:min(hdr.sb_len_wr, len(sense))], data=received)


def raise_for_status(result: ScsiResult, what: str) -> None:
    """Map SCSI, host and driver status to recorder errors; return when all is well."""
    if result.host_status == DID_TIME_OUT or (result.driver_status & 0x0F) == DRIVER_TIMEOUT:
        raise RecorderTimeout(_("recorder did not answer {what} in time (SCSI timeout)").format(what=what))
    if result.host_status == DID_NO_CONNECT:
        raise RecorderGone(_("recorder left the bus during {what}").format(what=what))
    if result.status == SCSI_STATUS_CHECK_CONDITION:
        key, asc, ascq = parse_sense(result.sense)
        raise RecorderError(_("recorder rejected {what}: sense key {key:#x}, ASC/ASCQ "
                              "{asc:#04x}/{ascq:#04x}").format(what=what, key=key, asc=asc, ascq=ascq))
    if result.status or result.host_status or result.driver_status:
        host = HOST_STATUS_NAMES.get(result.host_status, f"{result.host_status:#x}")
        raise RecorderError(_("{what} failed: SCSI status {status:#x}, host {host}, driver "
                              "{driver_status:#x}").format(
                              what=what, status=result.status, host=host,
                              driver_status=result.driver_status))


def parse_sense(sense: bytes) -> tuple[int, int, int]:
    """(sense key, ASC, ASCQ) from fixed (70h/71h) or descriptor (72h/73h) sense data."""
    if not sense:
        raise ProtocolError(_("CHECK CONDITION without sense data"))
    code = sense[0] & 0x7F
    if code in (0x70, 0x71) and len(sense) >= 14:
        return sense[2] & 0x0F, sense[12], sense[13]
    if code in (0x72, 0x73) and len(sense) >= 4:
        return sense[1] & 0x0F, sense[2], sense[3]
    raise ProtocolError(_("sense data {hex} is neither fixed nor descriptor format").format(
                          hex=sense[:8].hex(' ')))


def inquiry_cdb(length: int = INQUIRY_LEN) -> bytes:
    """Standard INQUIRY, no VPD."""
    return bytes([0x12, 0, 0, 0, length, 0])


def parse_inquiry(data: bytes) -> Inquiry:
    """Vendor (8..15), product (16..31) and revision (32..35) of standard INQUIRY data."""
    if len(data) < INQUIRY_LEN:
        raise ProtocolError(_("INQUIRY data is {data_len} bytes; need {inquiry_len}").format(
                              data_len=len(data), inquiry_len=INQUIRY_LEN))
    fields = (data[8:16], data[16:32], data[32:36])
    if not all(0x20 <= b <= 0x7E for f in fields for b in f):
        raise ProtocolError(_("INQUIRY strings {value!r} are not printable ASCII").format(value=data[8:36]))
    vendor, product, revision = (f.decode("ascii").rstrip() for f in fields)
    return Inquiry(vendor, product, revision)


def normalise_id(text: str) -> str:
    """Spaces removed, lowercased: how the vendor DLL compares identification strings."""
    return text.replace(" ", "").lower()


def inquiry_matches(inq: Inquiry, known_ids: Iterable[str]) -> bool:
    """True when vendor+product(+revision), normalised, starts with a known ID.

    The vendor/product split of ``DV16 DEVICE V1.00`` is unknown, so the joined strings are
    compared rather than each field.
    """
    joined = normalise_id(inq.vendor + inq.product + inq.revision)
    return any(joined.startswith(normalise_id(known)) for known in known_ids)


def find_sg_nodes(known_ids: Iterable[str], sysfs: Path = Path("/sys"),
                  dev: Path = Path("/dev")) -> list[str]:
    """sg nodes whose INQUIRY strings (as sysfs shows them) match, newest (highest) first."""
    ids = list(known_ids)
    found: list[tuple[int, str]] = []
    base = sysfs / "class" / "scsi_generic"
    if not base.is_dir():
        return []
    for entry in base.iterdir():
        match = re.fullmatch(r"sg(\d+)", entry.name)
        if not match:
            continue
        try:
            inq = Inquiry(*((entry / "device" / name).read_text("ascii", "replace").strip()
                            for name in ("vendor", "model", "rev")))
        except OSError:
            continue  # the node vanished while we looked; it is not ours to report
        if inquiry_matches(inq, ids):
            found.append((int(match.group(1)), str(dev / entry.name)))
    return [path for _rank, path in sorted(found, reverse=True)]


def _real_ioctl(fd: int, request: int, hdr: SgIoHdr, mutate: bool) -> int:
    return fcntl.ioctl(fd, request, hdr, mutate)  # type: ignore[no-any-return]
