"""Ambarella dialect B2 ("A9"): login and disk mode as 64-byte vendor control transfers on EP0.

Only these two packets are public; identity comes from the USB serial number, and battery,
clock and storage are unknown (docs/recorder-protocols.md §A9 lists what is left).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from dockd.clock import Clock
from dockd.devices.recorders import amba_protocol as proto
from dockd.devices.recorders.amba_usb import DEFAULT_TIMEOUT_MS, usb_call
from dockd.devices.recorders.base import (
    Capabilities,
    ClockReading,
    ClockSetFailed,
    ClockSetResult,
    LoginFailed,
    ProtocolError,
    RecorderError,
    RecorderIdentity,
    RecorderSession,
    StorageInfo,
    SwitchOutcome,
)
from dockd.i18n import _

log = logging.getLogger(__name__)


class A9Session(RecorderSession):
    """Logs in on open; ``switch_to_mass_storage`` sends the disk-mode packet."""

    def __init__(self, device: Any, serial: str | None, password: bytes | None, clock: Clock,
                 timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        self._device = device
        self._clock = clock
        self._timeout_ms = timeout_ms
        self._closed = False
        if not serial:
            raise ProtocolError(_("A9 recorder has no USB serial number to identify it by"))
        self._serial = serial
        secret = proto.password_text(password).encode("ascii")
        self._control_out(proto.A9_REQUEST_LOGIN, proto.a9_packet(proto.A9_CMD_LOGIN, secret),
                          "A9 login")
        if not proto.a9_login_ok(self._status("A9 login status")):
            raise LoginFailed(_("A9 recorder refused the password (status byte 2 is not 1)"))

    @property
    def capabilities(self) -> Capabilities:
        """Nothing to read or set but the mode."""
        return Capabilities(battery=False, read_clock=False, set_clock=False, storage=False,
                            authenticated=True)

    def identify(self) -> RecorderIdentity:
        """The USB serial number is all that is known."""
        return RecorderIdentity(serial=self._serial, driver="amba")

    def battery_percent(self) -> None:
        """Unknown."""
        return None

    def read_clock(self) -> ClockReading:
        """Unknown recorder time."""
        return ClockReading(None, self._clock.now())

    def set_clock(self, moment: dt.datetime) -> ClockSetResult:
        """No public A9 clock command exists."""
        raise ClockSetFailed(_("A9 recorders have no public clock command; set the clock with the vendor "
                               "tool"))

    def storage(self) -> StorageInfo | None:
        """Unknown."""
        return None

    def switch_to_mass_storage(self) -> SwitchOutcome:
        """Disk-mode packet, then the status read, which public code never checks: once the
        packet is out, a failure is an unacknowledged outcome (the disk decides)."""
        self._control_out(proto.A9_REQUEST_DISK, proto.a9_packet(proto.A9_CMD_DISK),
                          "A9 disk mode")
        try:
            self._status("A9 disk-mode status")
        except RecorderError as exc:
            self.close()
            return SwitchOutcome(False, f"disk-mode packet sent, no status: {exc}")
        log.info("A9 recorder %s switched to mass storage", self._serial)
        self.close()
        return SwitchOutcome(True, "disk-mode packet sent, status read")

    def close(self) -> None:
        """Nothing is claimed on EP0; only mark the session closed."""
        self._closed = True

    def _control_out(self, request: int, packet: bytes, what: str) -> None:
        written = usb_call(lambda: self._device.ctrl_transfer(
            proto.A9_REQUEST_TYPE_OUT, request, proto.A9_VALUE, 0, packet, self._timeout_ms), what)
        if written != len(packet):
            raise ProtocolError(_("{what}: recorder took {written} of {packet_len} bytes").format(
                                  what=what, written=written, packet_len=len(packet)))

    def _status(self, what: str) -> bytes:
        return bytes(usb_call(lambda: self._device.ctrl_transfer(
            proto.A9_REQUEST_TYPE_IN, proto.A9_REQUEST_STATUS, proto.A9_VALUE, 0,
            proto.A9_STATUS_LEN, self._timeout_ms), what))
