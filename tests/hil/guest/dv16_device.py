"""A GA/T 947 "DV16" recorder in control mode: USB Bulk-Only Transport and its SCSI target.

Written from public facts only — the USB Mass Storage Class Bulk-Only Transport 1.0 (CBW/CSW),
SPC/SBC for the standard commands, and ../shared/recorder-protocols-notes.md §3 for the DV16
vendor CDBs — not from dockd's driver or simulator, so the HIL run checks one against the other.

Pure logic (no USB, no threads): ``serve_bot`` moves bytes through two callables, so the host's
unit tests (tests/hil/test_dv16_device.py) drive it with in-memory endpoints and the guest's
firmware (recorder_fw.py) with FunctionFS endpoint files.
"""

from __future__ import annotations

import datetime as dt
import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

CBW_SIGNATURE = 0x43425355  # "USBC"
CSW_SIGNATURE = 0x53425355  # "USBS"
CBW_LEN = 31
CSW_LEN = 13
CSW_PASSED, CSW_FAILED, CSW_PHASE_ERROR = 0, 1, 2
BLOCK_SIZE = 512

# INQUIRY strings: joined and normalised (spaces removed, lower case) they give
# "dv16devicev1.00", which is what the vendor DLL looks for (notes §3, Discovery). The split
# between the vendor and product fields is unknown; this one keeps each field in its size.
INQUIRY_VENDOR = b"DV16    "
INQUIRY_PRODUCT = b"DEVICE V1.00    "
INQUIRY_REVISION = b"1.00"

# DV16 vendor CDB (notes §3): byte 0 opcode, byte 1 user command, byte 5 sub-command,
# byte 7 transfer length.
ISD_TOOL_READ, ISD_TOOL_WRITE = 0xFD, 0xFB
USER_CMD_READ, USER_CMD_WRITE = 0x81, 0x82
ZFY_LEN = 89  # the 89-byte ZFY_INFO layout: serial 7, userNo 6, userName 32, unitNo 12, unitName 32
ZFY_FIELDS = (("serial", 7), ("user_no", 6), ("user_name", 32), ("unit_no", 12), ("unit_name", 32))


class Sub(enum.IntEnum):
    """cdb[5] of the DV16 vendor CDBs (values from the public USB_CMD enum)."""

    INIT_USB_DEVICE = 1
    GET_ID_CODE = 2
    GET_DEV_INFO = 3
    WRITE_DEV_INFO = 4
    SYNC_DEV_TIME = 5
    SET_MSDC = 6
    READ_DEV_RES = 7
    READ_BATTERY_VAL = 8
    SET_PASSWORD = 10
    SET_ID_CODE = 11
    GET_SD_STATUS = 12
    GET_JL_PASSWORD = 13
    GET_RETURN_STATUS = 14


# sub-command -> (opcode it comes with, transfer length)
_VENDOR: dict[Sub, tuple[int, int]] = {
    Sub.INIT_USB_DEVICE: (ISD_TOOL_WRITE, 0),
    Sub.GET_ID_CODE: (ISD_TOOL_READ, 6),
    Sub.GET_DEV_INFO: (ISD_TOOL_READ, ZFY_LEN),
    Sub.WRITE_DEV_INFO: (ISD_TOOL_WRITE, ZFY_LEN),
    Sub.SYNC_DEV_TIME: (ISD_TOOL_WRITE, 7),
    Sub.SET_MSDC: (ISD_TOOL_WRITE, 0),
    Sub.READ_DEV_RES: (ISD_TOOL_READ, 8),
    Sub.READ_BATTERY_VAL: (ISD_TOOL_READ, 4),
    Sub.SET_PASSWORD: (ISD_TOOL_WRITE, 16),
    Sub.SET_ID_CODE: (ISD_TOOL_WRITE, 32),
    Sub.GET_SD_STATUS: (ISD_TOOL_READ, 4),
    Sub.GET_JL_PASSWORD: (ISD_TOOL_READ, 16),
    Sub.GET_RETURN_STATUS: (ISD_TOOL_READ, 4),
}

# Sense (key, ASC, ASCQ), SPC-4
NO_SENSE = (0x0, 0x00, 0x00)
INVALID_OPCODE = (0x5, 0x20, 0x00)
INVALID_FIELD_IN_CDB = (0x5, 0x24, 0x00)
LBA_OUT_OF_RANGE = (0x5, 0x21, 0x00)
WRITE_PROTECTED = (0x7, 0x27, 0x00)


class BadCbw(ValueError):
    """31 bytes that are not a valid Command Block Wrapper (BOT 6.2.1)."""


@dataclass(frozen=True)
class Cbw:
    """A Command Block Wrapper."""

    tag: int
    data_length: int
    data_in: bool
    lun: int
    cdb: bytes


def parse_cbw(raw: bytes) -> Cbw:
    """Decode a CBW; ``BadCbw`` unless it is exactly 31 bytes with a meaningful CDB length."""
    if len(raw) != CBW_LEN:
        raise BadCbw(f"CBW of {len(raw)} bytes; BOT requires {CBW_LEN}")
    signature, tag, length, flags, lun, cb_len = struct.unpack_from("<IIIBBB", raw)
    if signature != CBW_SIGNATURE:
        raise BadCbw(f"CBW signature {signature:#010x}, not {CBW_SIGNATURE:#010x}")
    cb_len &= 0x1F
    if not 1 <= cb_len <= 16:
        raise BadCbw(f"CBW CDB length {cb_len}; BOT allows 1..16")
    return Cbw(tag, length, bool(flags & 0x80), lun & 0x0F, raw[15:15 + cb_len])


def build_cbw(tag: int, data_length: int, data_in: bool, cdb: bytes, lun: int = 0) -> bytes:
    """Encode a CBW (what the host side sends; the unit tests play the host with it)."""
    return struct.pack("<IIIBBB", CBW_SIGNATURE, tag, data_length, 0x80 if data_in else 0,
                       lun, len(cdb)) + cdb.ljust(16, b"\0")


def build_csw(tag: int, residue: int, status: int) -> bytes:
    """Encode a Command Status Wrapper."""
    return struct.pack("<IIIB", CSW_SIGNATURE, tag, residue, status)


@dataclass(frozen=True)
class Reply:
    """The target's answer to one command: data for the host (IN commands), pass or fail, and
    whether the recorder leaves control mode after it (SET_MSDC)."""

    data: bytes = b""
    ok: bool = True
    switch: bool = False


@dataclass
class RecorderFacts:
    """What the recorder holds: its identity, officer record, battery, card and password."""

    serial: str
    id_code: bytes = b"JL016"
    user_no: bytes = b"000123"
    user_name: bytes = "张三".encode("gbk")
    unit_no: bytes = b"110101000000"
    unit_name: bytes = "城关派出所".encode("gbk")
    battery: int = 80
    resolution: tuple[int, int] = (1920, 1080)
    sd_card: bool = True
    password: bytes = b"000000"
    blocks: int = 2048  # the control-mode medium: blank, read-only

    def zfy_info(self) -> bytes:
        """The 89-byte ZFY_INFO, each field NUL-padded to its size."""
        values = (self.serial.encode("ascii"), self.user_no, self.user_name, self.unit_no,
                  self.unit_name)
        return b"".join(v[:size].ljust(size, b"\0") for v, (_, size) in zip(values, ZFY_FIELDS, strict=True))


@dataclass
class Dv16Target:
    """The SCSI target behind the control-mode LUN: standard commands for the kernel's sd/sg
    drivers, and the DV16 vendor CDBs for the collection host."""

    facts: RecorderFacts
    sense: tuple[int, int, int] = NO_SENSE
    last_status: int = 0  # byte 0 of GET_RETURN_STATUS: 0 = the last command was done
    clock_sets: list[dt.datetime] = field(default_factory=list)
    log: Callable[[str], None] = lambda line: None

    def handle(self, cdb: bytes, data_out: bytes, alloc: int) -> Reply:
        """Run one CDB; ``alloc`` is the data length the host asked for (IN commands)."""
        op = cdb[0]
        handler = {0x00: self._test_unit_ready, 0x03: self._request_sense, 0x12: self._inquiry,
                   0x1A: self._mode_sense6, 0x1B: self._ok, 0x1E: self._ok,
                   0x25: self._read_capacity10, 0x28: self._read10, 0x2A: self._write10,
                   ISD_TOOL_READ: self._vendor, ISD_TOOL_WRITE: self._vendor}.get(op)
        if handler is None:
            return self._fail(INVALID_OPCODE)
        if len(cdb) < (10 if 0x20 <= op < 0x60 else 6):  # SPC group 0: 6 bytes, 1-2: 10
            return self._fail(INVALID_FIELD_IN_CDB)
        reply = handler(cdb, data_out)
        if reply.ok and op != 0x03:
            self.sense = NO_SENSE
        return Reply(reply.data[:alloc], reply.ok, reply.switch)

    # -- standard commands -------------------------------------------------------------------
    def _fail(self, sense: tuple[int, int, int]) -> Reply:
        self.sense = sense
        return Reply(ok=False)

    def _ok(self, cdb: bytes, data_out: bytes) -> Reply:
        return Reply()

    def _test_unit_ready(self, cdb: bytes, data_out: bytes) -> Reply:
        return Reply()

    def _request_sense(self, cdb: bytes, data_out: bytes) -> Reply:
        key, asc, ascq = self.sense
        self.sense = NO_SENSE
        # fixed format, current error, additional length 10 (18 bytes in all)
        return Reply(bytes([0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0]))

    def _inquiry(self, cdb: bytes, data_out: bytes) -> Reply:
        if cdb[1] & 0x01 or cdb[2]:  # no VPD pages
            return self._fail(INVALID_FIELD_IN_CDB)
        # direct access, removable, SPC-2, response format 2, 31 more bytes
        head = bytes([0x00, 0x80, 0x04, 0x02, 31, 0, 0, 0])
        return Reply(head + INQUIRY_VENDOR + INQUIRY_PRODUCT + INQUIRY_REVISION)

    def _mode_sense6(self, cdb: bytes, data_out: bytes) -> Reply:
        page = cdb[2] & 0x3F
        if page not in (0x3F, 0x00):  # no mode pages: only the header
            return self._fail(INVALID_FIELD_IN_CDB)
        # mode data length 3, medium type 0, write-protected, no block descriptors
        return Reply(bytes([3, 0, 0x80, 0]))

    def _read_capacity10(self, cdb: bytes, data_out: bytes) -> Reply:
        return Reply(struct.pack(">II", self.facts.blocks - 1, BLOCK_SIZE))

    def _read10(self, cdb: bytes, data_out: bytes) -> Reply:
        lba, count = struct.unpack_from(">IxH", cdb, 2)
        if lba + count > self.facts.blocks:
            return self._fail(LBA_OUT_OF_RANGE)
        return Reply(bytes(count * BLOCK_SIZE))  # a blank medium

    def _write10(self, cdb: bytes, data_out: bytes) -> Reply:
        return self._fail(WRITE_PROTECTED)

    # -- DV16 vendor commands ------------------------------------------------------------------
    def _vendor(self, cdb: bytes, data_out: bytes) -> Reply:
        if len(cdb) < 8:
            return self._fail(INVALID_FIELD_IN_CDB)
        user = USER_CMD_READ if cdb[0] == ISD_TOOL_READ else USER_CMD_WRITE
        try:
            sub = Sub(cdb[5])
        except ValueError:
            return self._fail(INVALID_FIELD_IN_CDB)
        opcode, length = _VENDOR[sub]
        if cdb[0] != opcode or cdb[1] != user or cdb[7] != length:
            return self._fail(INVALID_FIELD_IN_CDB)
        if opcode == ISD_TOOL_WRITE and len(data_out) != length:
            return self._fail(INVALID_FIELD_IN_CDB)
        reply = self._sub(sub, data_out)
        if sub is not Sub.GET_RETURN_STATUS:
            self.last_status = 0 if reply.ok else 1
        self.log(f"{sub.name} {'ok' if reply.ok else 'failed'}")
        # A refused DV16 command still completes at the SCSI level: the host learns of the
        # refusal from GET_RETURN_STATUS (notes §3, Status).
        return Reply(reply.data, True, reply.switch)

    def _sub(self, sub: Sub, data: bytes) -> Reply:
        f = self.facts
        if sub is Sub.INIT_USB_DEVICE:
            return Reply()
        if sub is Sub.GET_ID_CODE:
            return Reply(f.id_code[:5].ljust(6, b"\0"))
        if sub is Sub.GET_DEV_INFO:
            return Reply(f.zfy_info())
        if sub is Sub.WRITE_DEV_INFO:
            return self._write_dev_info(data)
        if sub is Sub.SYNC_DEV_TIME:
            return self._sync_time(data)
        if sub is Sub.SET_MSDC:
            return Reply(switch=f.sd_card, ok=f.sd_card)
        if sub is Sub.READ_DEV_RES:
            return Reply(struct.pack("<ii", *f.resolution))
        if sub is Sub.READ_BATTERY_VAL:
            return Reply(struct.pack("<i", f.battery))
        if sub is Sub.SET_PASSWORD:
            f.password = data.split(b"\0", 1)[0]
            return Reply()
        if sub is Sub.SET_ID_CODE:
            f.id_code = data.split(b"\0", 1)[0][:5]
            return Reply()
        if sub is Sub.GET_SD_STATUS:
            return Reply(bytes([1 if f.sd_card else 0, 0, 0, 0]))
        if sub is Sub.GET_JL_PASSWORD:
            return Reply(f.password[:15].ljust(16, b"\0"))
        return Reply(bytes([self.last_status, 0, 0, 0]))  # GET_RETURN_STATUS

    def _write_dev_info(self, data: bytes) -> Reply:
        values, at = [], 0
        for _, size in ZFY_FIELDS:
            values.append(data[at:at + size].split(b"\0", 1)[0])
            at += size
        if not values[0] or not values[1]:  # serial and officer number must not be empty
            return Reply(ok=False)
        f = self.facts
        f.user_no, f.user_name, f.unit_no, f.unit_name = values[1:]
        return Reply()

    def _sync_time(self, data: bytes) -> Reply:
        year, month, day, hour, minute, second = struct.unpack("<HBBBBB", data)
        try:
            when = dt.datetime(year, month, day, hour, minute, second)
        except ValueError:
            return Reply(ok=False)
        self.clock_sets.append(when)
        self.log(f"clock set to {when.isoformat()} (recorder local time)")
        return Reply()


class SwitchMode(enum.Enum):
    """How the recorder leaves control mode after SET_MSDC."""

    ACK = "ack"  # completes the command (CSW), then drops off the bus
    DROP = "drop"  # drops off the bus before the CSW: the host sees a transport error


def serve_bot(read_out: Callable[[int], bytes], write_in: Callable[[bytes], None],
              target: Dv16Target, switch_mode: SwitchMode = SwitchMode.ACK,
              log: Callable[[str], None] = lambda line: None) -> None:
    """Answer CBWs until SET_MSDC tells the recorder to switch (returns) or an endpoint fails
    (raises the endpoint's OSError).

    ``read_out(n)`` is one bulk OUT transfer of at most n bytes, ``write_in(b)`` one bulk IN
    transfer. Data IN is always the full length the host asked for (zero-padded, the residue in
    the CSW says how much was meant): a short transfer would let the host take the CSW for data.
    """
    while True:
        raw = read_out(CBW_LEN)
        try:
            cbw = parse_cbw(raw)
        except BadCbw as exc:
            # BOT 6.6.1 wants both endpoints stalled until a reset; the Linux host never sends
            # an invalid CBW, so this is only logged and the next transfer is taken as a CBW.
            log(f"invalid CBW ignored: {exc}")
            continue
        data_out = b""
        if not cbw.data_in:
            while len(data_out) < cbw.data_length:
                chunk = read_out(cbw.data_length - len(data_out))
                if not chunk:
                    break
                data_out += chunk
        reply = target.handle(cbw.cdb, data_out, cbw.data_length if cbw.data_in else 0)
        status = CSW_PASSED if reply.ok else CSW_FAILED
        residue = cbw.data_length - (len(reply.data) if cbw.data_in else len(data_out))
        if cbw.data_in and cbw.data_length:
            write_in(reply.data.ljust(cbw.data_length, b"\0"))
        log(f"cdb {cbw.cdb[:8].hex()} -> {'passed' if reply.ok else 'failed'}, "
            f"{len(reply.data)} byte(s)")
        if reply.switch and switch_mode is SwitchMode.DROP:
            return
        write_in(build_csw(cbw.tag, residue, status))
        if reply.switch:
            return
