"""GA/T 947 over vendor SCSI CDBs to the recorder's mass-storage LUN (the public JL "DV16" layout).

Each call is: command CDB, then (for data commands) a GET_RETURN_STATUS read, mapped to the
``iRet`` the vendor DLL would report.  The DV16 device does not check passwords — the vendor DLL
reads the clear-text password back (sub-command 13) and compares on the host.  dockd never does
that (it would put the admin password on the host and in our hands), so this transport is
unauthenticated: ``Capabilities.authenticated`` is False and ``LoginFailed`` cannot occur.
"""

from __future__ import annotations

import enum

from dockd.devices.recorders.base import (
    NoSdCard,
    ProtocolError,
    RecorderError,
    RecorderGone,
    SwitchOutcome,
)
from dockd.devices.recorders.gat947_protocol import Command, ResultCode, ZfyLayout
from dockd.devices.recorders.sgio import (
    Direction,
    SgDevice,
    find_sg_nodes,
    inquiry_cdb,
    inquiry_matches,
    parse_inquiry,
    raise_for_status,
)
from dockd.i18n import _

ISD_TOOL_READ = 0xFD
ISD_TOOL_WRITE = 0xFB
USER_CMD_READ = 0x81
USER_CMD_WRITE = 0x82
# The DLL's timeouts: reads (sub-commands 2, 3, 7, 8, 12, 14) 2 s; writes (INIT, WRITE_DEV_INFO,
# SYNC_DEV_TIME, SET_MSDC) 10 s, as the firmware may take its time to act on them.
READ_TIMEOUT_MS = 2000
WRITE_TIMEOUT_MS = 10000
KNOWN_IDS = ("DV16 DEVICE V1.00", "DV12 DEVICE V1.00")


class SubCommand(enum.IntEnum):
    """cdb[5] values (the DLL's ``USB_CMD`` enum)."""

    INIT_USB_DEVICE = 1
    GET_ID_CODE = 2
    GET_DEV_INFO = 3
    WRITE_DEV_INFO = 4
    SYNC_DEV_TIME = 5
    SET_MSDC = 6
    READ_DEV_RES = 7
    READ_BATTERY_VAL = 8
    WRITE_ALL_DEV_INFO = 9
    SET_PASSWORD = 10
    SET_ID_CODE = 11
    GET_SD_STATUS = 12
    GET_JL_PASSWORD = 13  # never sent by dockd: it returns the admin password in clear text
    GET_RETURN_STATUS = 14


# command → (sub-command, is_write, transfer length, check GET_RETURN_STATUS afterwards)
_PLAN: dict[Command, tuple[SubCommand, bool, int, bool]] = {
    Command.GET_ID_CODE: (SubCommand.GET_ID_CODE, False, 6, True),
    Command.GET_ZFY_INFO: (SubCommand.GET_DEV_INFO, False, 89, True),
    Command.WRITE_ZFY_INFO: (SubCommand.WRITE_DEV_INFO, True, 89, True),
    Command.SYNC_DEV_TIME: (SubCommand.SYNC_DEV_TIME, True, 7, True),
    Command.READ_RESOLUTION: (SubCommand.READ_DEV_RES, False, 8, False),
    Command.READ_BATTERY: (SubCommand.READ_BATTERY_VAL, False, 4, True),
}


def build_cdb(sub: SubCommand, write: bool, length: int) -> bytes:
    """16-byte vendor CDB: opcode, user-command byte, sub-command at [5], length at [7]."""
    if not 0 <= length <= 255:
        raise ValueError(f"DV16 transfer length {length} does not fit one byte")
    cdb = bytearray(16)
    cdb[0], cdb[1] = (ISD_TOOL_WRITE, USER_CMD_WRITE) if write else (ISD_TOOL_READ, USER_CMD_READ)
    cdb[5] = sub
    cdb[7] = length
    return bytes(cdb)


def open_scsi_link(path: str | None, read_timeout_s: float | None = None,
                   write_timeout_s: float | None = None) -> ScsiGat947Link:
    """Open ``path`` (or the newest sg node whose INQUIRY matches) and check its INQUIRY.

    Timeouts default to the DLL's (2 s reads, 10 s writes)."""
    candidates = [path] if path else find_sg_nodes(KNOWN_IDS)
    if not candidates:
        raise RecorderGone(_("no SCSI node answers INQUIRY as a DV16/DV12 recorder"))
    device = SgDevice.open(candidates[0])
    try:
        link = ScsiGat947Link(device, read_timeout_s, write_timeout_s)
        link.check_identity()
    except BaseException:
        device.close()
        raise
    return link


class ScsiGat947Link:
    """Function calls as DV16 vendor CDBs, reporting the ``iRet`` the vendor DLL would."""

    authenticates = False
    zfy_layout = ZfyLayout.PACKED_89  # GET_DEV_INFO / WRITE_DEV_INFO move 89 bytes, always

    def __init__(self, device: SgDevice, read_timeout_s: float | None = None,
                 write_timeout_s: float | None = None) -> None:
        self._device = device
        self._read_ms = int(read_timeout_s * 1000) if read_timeout_s else READ_TIMEOUT_MS
        self._write_ms = int(write_timeout_s * 1000) if write_timeout_s else WRITE_TIMEOUT_MS

    def check_identity(self) -> None:
        """``RecorderError`` unless INQUIRY names a known DV16-family recorder."""
        result = self._device.execute(inquiry_cdb(), Direction.FROM_DEV, data_in_len=36,
                                      timeout_ms=self._read_ms)
        raise_for_status(result, "INQUIRY")
        inq = parse_inquiry(result.data)
        if not inquiry_matches(inq, KNOWN_IDS):
            raise RecorderError(_("SCSI device {path} is {vendor!r} {product!r}, not a DV16-family "
                                  "recorder").format(
                                  path=self._device.path, vendor=inq.vendor, product=inq.product))

    def supports(self, command: Command) -> bool:
        """The eight GA/T 947 functions; no clock read or storage query exists in DV16."""
        return command in _PLAN or command in (Command.INIT, Command.SET_MSDC)

    def call(self, command: Command, password: bytes, payload: bytes = b"") -> tuple[int, bytes]:
        """One function as the vendor DLL performs it, minus its host-side password compare."""
        if command is Command.INIT:
            self._transfer(SubCommand.INIT_USB_DEVICE, True, b"", 0)
            code, data = self._planned(Command.GET_ID_CODE, b"")
            # The DLL leaves iRet at 102 when the ID-code read after Init fails.
            return (ResultCode.CONNECT_SUCCESS if code == ResultCode.CONNECT_SUCCESS
                    else ResultCode.ID_CODE_PENDING), data
        if command not in _PLAN:
            raise ProtocolError(_("{name} has no DV16 SCSI command").format(name=command.name))
        return self._planned(command, payload)

    def switch(self, password: bytes) -> SwitchOutcome:
        """SetMSDC as USBJL does it: GET_SD_STATUS (no card: iRet 8), then the SET_MSDC write.

        USBJL reports success whatever that write returns, and a real recorder may leave the
        bus before completing it (the host sees DID_ERROR, DID_NO_CONNECT or a timeout): once
        it is sent, a failure is only an unacknowledged outcome; the disk decides."""
        sd = self._transfer(SubCommand.GET_SD_STATUS, False, b"", 4)
        if len(sd) < 1:
            raise ProtocolError(_("empty reply to GET_SD_STATUS"))
        if sd[0] == 0:
            raise NoSdCard(_("recorder cannot enter mass-storage mode: no SD card (GET_SD_STATUS byte 0 "
                             "is 0; the DLL's iRet 8, MSDC_FAILED)"))
        try:
            self._transfer(SubCommand.SET_MSDC, True, b"", 0)
        except RecorderError as exc:
            return SwitchOutcome(False, f"SET_MSDC sent, not completed: {exc}")
        return SwitchOutcome(True, "SET_MSDC completed")

    def close(self) -> None:
        """Close the sg node."""
        self._device.close()

    def _planned(self, command: Command, payload: bytes) -> tuple[int, bytes]:
        sub, write, length, check = _PLAN[command]
        if write and len(payload) != length:
            raise ProtocolError(_("{name} payload is {payload_len} bytes; DV16 takes {length}").format(
                                  name=command.name, payload_len=len(payload), length=length))
        data = self._transfer(sub, write, payload, length)
        if check and not self._status_ok():
            failed = (ResultCode.SET_SYSTEMTIME_FAILED if command is Command.SYNC_DEV_TIME
                      else ResultCode.FAILED)
            return failed, b""
        ok = (ResultCode.SET_SYSTEMTIME_SUCCESS if command is Command.SYNC_DEV_TIME
              else ResultCode.CONNECT_SUCCESS)
        return ok, data

    def _status_ok(self) -> bool:
        status = self._transfer(SubCommand.GET_RETURN_STATUS, False, b"", 4)
        if len(status) < 1:
            raise ProtocolError(_("empty reply to GET_RETURN_STATUS"))
        return status[0] == 0

    def _transfer(self, sub: SubCommand, write: bool, payload: bytes, length: int) -> bytes:
        cdb = build_cdb(sub, write, length)
        if write:
            result = self._device.execute(cdb, Direction.TO_DEV if length else Direction.NONE,
                                          data_out=payload, timeout_ms=self._write_ms)
        else:
            result = self._device.execute(cdb, Direction.FROM_DEV, data_in_len=length,
                                          timeout_ms=self._read_ms)
        raise_for_status(result, sub.name)
        return result.data
