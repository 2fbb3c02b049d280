"""A JL "DV16" recorder behind a fake SG_IO ioctl: the SCSI face of a simulated recorder.

No sg device exists on a test machine, so this stands in for kernel + device at the ioctl: it
reads the CDB and data through the pointers of the packed ``sg_io_hdr``, answers from the
shared ``RecorderState`` and fills status, sense, ``resid`` and data as the sg driver does.
"""

from __future__ import annotations

import ctypes
import enum
import errno

from dockd.devices.recorders import gat947_protocol as gat
from dockd.devices.recorders.base import ProtocolError
from dockd.devices.recorders.gat947_scsi import (
    ISD_TOOL_READ,
    ISD_TOOL_WRITE,
    SubCommand,
)
from dockd.devices.recorders.sgio import (
    DID_ERROR,
    DRIVER_TIMEOUT,
    SCSI_STATUS_CHECK_CONDITION,
    SG_IO,
    Direction,
    SgIoHdr,
)
from dockd.sim.recorders import RecorderState


class ScsiFault(enum.Enum):
    """Faults of the SCSI face, applied to the next command."""

    TIMEOUT = "timeout"  # the sg driver reports DRIVER_TIMEOUT
    GONE = "gone"  # ioctl fails with ENODEV, as after an unplug
    TRANSPORT_ERROR = "transport_error"  # host status DID_ERROR: the device left mid-command
    SHORT = "short"  # device sends half the data (resid > 0)
    STATUS_FAIL = "status_fail"  # the next GET_RETURN_STATUS reports failure


class Dv16Target:
    """Callable as ``ioctl(fd, SG_IO, hdr, mutate)``; records every CDB it saw."""

    def __init__(self, state: RecorderState, vendor: bytes = b"DV16",
                 product: bytes = b"DEVICE V1.00", revision: bytes = b"1.00") -> None:
        self.state = state
        self.inquiry = (bytes([0, 0x80, 0x02, 0x02, 31, 0, 0, 0]) + vendor.ljust(8)[:8]
                        + product.ljust(16)[:16] + revision.ljust(4)[:4])
        self.cdbs: list[bytes] = []
        self.directions: list[int] = []
        self.timeouts_ms: list[int] = []
        self.data_out: list[bytes] = []
        self.faults: list[ScsiFault | None] = []  # None: the next command runs normally
        self.msdc = False
        self._last_ok = True

    def __call__(self, fd: int, request: int, hdr: SgIoHdr, mutate: bool) -> int:
        if request != SG_IO or hdr.interface_id != ord("S"):
            raise OSError(errno.EINVAL, "not an SG_IO v3 request")
        cdb = ctypes.string_at(hdr.cmdp, hdr.cmd_len)
        self.cdbs.append(cdb)
        self.directions.append(hdr.dxfer_direction)
        self.timeouts_ms.append(hdr.timeout)
        fault = self.faults.pop(0) if self.faults else None
        if fault is ScsiFault.GONE or self.msdc:
            raise OSError(errno.ENODEV, "No such device")
        hdr.status = hdr.host_status = hdr.driver_status = hdr.resid = hdr.sb_len_wr = 0
        if fault is ScsiFault.TIMEOUT:
            hdr.driver_status = DRIVER_TIMEOUT
            return 0
        if fault is ScsiFault.TRANSPORT_ERROR:
            # What the guest kernel reports when the device leaves the bus before the status
            # of the command (seen in the HIL: usb-storage fails it with DID_ERROR).
            self._answer(cdb, b"")
            hdr.host_status = DID_ERROR
            return 0
        if fault is ScsiFault.STATUS_FAIL:
            self._last_ok = False
        data_out = (ctypes.string_at(hdr.dxferp, hdr.dxfer_len)
                    if hdr.dxfer_direction == Direction.TO_DEV else b"")
        self.data_out.append(data_out)
        reply = self._answer(cdb, data_out)
        if reply is None:
            self._check_condition(hdr)
            return 0
        if hdr.dxfer_direction == Direction.FROM_DEV:
            sent = reply[:hdr.dxfer_len]
            if fault is ScsiFault.SHORT:
                sent = sent[:len(sent) // 2]
            ctypes.memmove(hdr.dxferp, sent, len(sent))
            hdr.resid = hdr.dxfer_len - len(sent)
        return 0

    def _answer(self, cdb: bytes, data_out: bytes) -> bytes | None:
        if cdb[0] == 0x12:
            return self.inquiry
        if cdb[0] not in (ISD_TOOL_READ, ISD_TOOL_WRITE):
            return None
        try:
            sub = SubCommand(cdb[5])
        except ValueError:
            return None
        state = self.state
        if sub is SubCommand.GET_RETURN_STATUS:
            ok, self._last_ok = self._last_ok, True
            return bytes([0 if ok else 1, 0, 0, 0])
        if sub is SubCommand.GET_JL_PASSWORD:
            return state.spec.password.ljust(16, b"\0")
        if sub is SubCommand.INIT_USB_DEVICE:
            return b""
        if sub is SubCommand.GET_ID_CODE:
            return state.spec.id_code.encode("ascii").ljust(6, b"\0")
        if sub is SubCommand.GET_DEV_INFO:
            return gat.encode_zfy_info(state.info, gat.ZfyLayout.PACKED_89)
        if sub is SubCommand.READ_BATTERY_VAL:
            return gat.encode_battery(state.battery_percent)
        if sub is SubCommand.READ_DEV_RES:
            return gat.encode_resolution(gat.Resolution(*state.spec.resolution))
        if sub is SubCommand.GET_SD_STATUS:
            return bytes([1 if state.has_sd else 0, 0, 0, 0])
        if sub is SubCommand.SYNC_DEV_TIME:
            return self._sync(data_out)
        if sub is SubCommand.SET_MSDC:
            self.msdc = True  # the control LUN leaves; later calls see ENODEV
            return b""
        if sub is SubCommand.WRITE_DEV_INFO:
            try:
                state.info = gat.decode_zfy_info(data_out).to_info()
            except ProtocolError:
                self._last_ok = False
            return b""
        return None

    def _sync(self, data_out: bytes) -> bytes:
        try:
            wall = gat.decode_time7(data_out)
        except ProtocolError:
            self._last_ok = False
            return b""
        if self.state.spec.clock_set_fails:
            self._last_ok = False
            return b""
        self.state.clock.set(wall)
        self.state.clock_sets.append(wall)
        return b""

    @staticmethod
    def _check_condition(hdr: SgIoHdr) -> None:
        # Fixed-format sense: ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE (20h/00h).
        sense = bytes([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0x00, 0, 0, 0, 0])
        n = min(len(sense), hdr.mx_sb_len)
        ctypes.memmove(hdr.sbp, sense, n)
        hdr.sb_len_wr = n
        hdr.status = SCSI_STATUS_CHECK_CONDITION
        hdr.masked_status = SCSI_STATUS_CHECK_CONDITION >> 1
        hdr.driver_status = 0x08  # DRIVER_SENSE


