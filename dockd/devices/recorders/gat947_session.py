"""A GA/T 947 recorder session over any link that can make one function call at a time.

The session speaks the public function set only (``Init_Device`` … ``SetMSDC``): none of it
reads the clock back or the card's capacity, so neither is claimed (the bay reads free space
from the mounted disk). The simulator's test framing adds both (``gat947_serial``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol

from dockd.clock import Clock
from dockd.devices.recorders import gat947_protocol as proto
from dockd.devices.recorders.base import (
    Capabilities,
    ClockReading,
    ClockSetFailed,
    ClockSetResult,
    ProtocolError,
    RecorderIdentity,
    RecorderSession,
    StorageInfo,
    SwitchOutcome,
)
from dockd.devices.recorders.gat947_protocol import Command
from dockd.devices.recorders.wallclock import to_wall_seconds
from dockd.i18n import _

log = logging.getLogger(__name__)

DRIVER_NAME = "gat947"


class Gat947Link(Protocol):
    """One transport of the function set (DV16 SCSI CDBs; the simulator's test framing)."""

    @property
    def authenticates(self) -> bool:
        """True when the recorder itself checks the password sent with each call."""
        ...

    @property
    def zfy_layout(self) -> proto.ZfyLayout | None:
        """The one ZFY_INFO layout the transport carries, or None when the recorder chooses."""
        ...

    def call(self, command: Command, password: bytes, payload: bytes = b"") -> tuple[int, bytes]:
        """Make one call; return (``iRet``, reply data).  Raises transport errors."""
        ...

    def switch(self, password: bytes) -> SwitchOutcome:
        """SetMSDC: ``NoSdCard`` (iRet 8) or an error before the command is sent propagate;
        once it is sent, the outcome says whether the recorder confirmed it."""
        ...

    def close(self) -> None:
        """Release the transport."""
        ...


class Gat947Session(RecorderSession):
    """Session logic shared by the GA/T 947 transports.

    Opening runs what real stations run: ``Init_Device`` (ID code), then a battery read, which is
    the call that reveals a wrong password (``iRet`` 4 → ``LoginFailed``).  The password is never
    compared on the host.
    """

    def __init__(self, link: Gat947Link, password: bytes | None, clock: Clock,
                 zone: dt.tzinfo) -> None:
        self._link = link
        self._password = proto.encode_password(password)
        self._clock = clock
        self._zone = zone
        self._closed = False
        self._layout = link.zfy_layout or proto.ZfyLayout.TERMINATED_94
        try:
            self._id_code = proto.decode_id_code(self._call(Command.INIT))
            self._battery_at_login = proto.decode_battery(self._call(Command.READ_BATTERY))
        except BaseException:
            self.close()
            raise

    @property
    def capabilities(self) -> Capabilities:
        """Battery and clock set (ReadDeviceBatteryDumpEnergy, SyncDevTime); no clock read and no
        storage query exist in the function set."""
        return Capabilities(battery=True, read_clock=False, set_clock=True, storage=False,
                            authenticated=self._link.authenticates)

    def identify(self) -> RecorderIdentity:
        """ID code from ``Init_Device`` plus the ZFY_INFO block (text decoded tolerantly)."""
        reading = proto.decode_zfy_info(self._call(Command.GET_ZFY_INFO))
        if self._link.zfy_layout is None:
            self._layout = reading.layout
        if not reading.serial.strip():
            raise ProtocolError(_("recorder's ZFY_INFO has an empty serial; enrol it (WriteZFYInfo) "
                                  "before docking"))
        for warning in reading.warnings:
            log.warning("recorder %s: %s", reading.serial, warning)
        texts = reading.texts
        return RecorderIdentity(
            serial=reading.serial, driver=DRIVER_NAME, id_code=self._id_code,
            officer_id=texts["officer_id"].text or None,
            officer_name=texts["officer_name"].text or None,
            unit_id=texts["unit_id"].text or None, unit_name=texts["unit_name"].text or None,
            text_raw={name: text.raw for name, text in texts.items()},
            warnings=reading.warnings,
        )

    def battery_percent(self) -> int:
        """ReadDeviceBatteryDumpEnergy."""
        return proto.decode_battery(self._call(Command.READ_BATTERY))

    def read_clock(self) -> ClockReading:
        """The function set cannot read the recorder's clock: only the dock's time."""
        return ClockReading(None, self._clock.now())

    def set_clock(self, moment: dt.datetime) -> ClockSetResult:
        """SyncDevTime with ``moment`` as local wall time; ``ClockSetFailed`` on iRet 6."""
        wall = to_wall_seconds(moment, self._zone)
        if not 0 < wall.year < 65536:
            raise ClockSetFailed(_("year {year} cannot be sent to a GA/T 947 recorder").format(
                                   year=wall.year))
        payload = proto.encode_time7(wall)
        self._call(Command.SYNC_DEV_TIME, payload)
        return ClockSetResult(wall, f"SYNC_DEV_TIME {payload.hex(' ')}")

    def storage(self) -> StorageInfo | None:
        """The function set has no capacity query (SetMSDC checks the SD card itself)."""
        return None

    def resolution(self) -> proto.Resolution:
        """ReadDeviceResolution."""
        return proto.decode_resolution(self._call(Command.READ_RESOLUTION))

    def write_info(self, info: proto.ZfyInfo) -> None:
        """WriteZFYInfo in the transport's layout (DV16: always 89 bytes); where the recorder
        chooses, the layout it last answered with (94 until identified)."""
        self._call(Command.WRITE_ZFY_INFO, proto.encode_zfy_info(info, self._layout))

    def switch_to_mass_storage(self) -> SwitchOutcome:
        """SetMSDC; ``NoSdCard`` on iRet 8.  The recorder then leaves the bus."""
        if self._closed:
            raise ProtocolError(_("session is closed; cannot send SET_MSDC"))
        outcome = self._link.switch(self._password)  # a refusal leaves the recorder as it was
        log.info("recorder %s told to switch to mass storage (%s)", self._id_code,
                 "acknowledged" if outcome.acknowledged else f"unacknowledged: {outcome.detail}")
        self.close()
        return outcome

    def close(self) -> None:
        """Close the link once."""
        if not self._closed:
            self._closed = True
            self._link.close()

    def _call(self, command: Command, payload: bytes = b"") -> bytes:
        if self._closed:
            raise ProtocolError(_("session is closed; cannot send {name}").format(name=command.name))
        code, data = self._link.call(command, self._password, payload)
        proto.check_result(command, code)
        return data
