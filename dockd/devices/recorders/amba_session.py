"""An Ambarella B1 recorder session over any link that sends one frame and returns one reply."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol

from dockd.clock import Clock
from dockd.devices.recorders import amba_protocol as proto
from dockd.devices.recorders.base import (
    Capabilities,
    ClockReading,
    ClockSetFailed,
    ProtocolError,
    RecorderError,
    RecorderIdentity,
    RecorderSession,
    StorageInfo,
)
from dockd.devices.recorders.wallclock import to_wall_seconds

log = logging.getLogger(__name__)

DRIVER_NAME = "amba"


class AmbaLink(Protocol):
    """USB bulk (one write, one ≤64-byte read) or a byte stream (reply ends with ``#``)."""

    def exchange(self, frame: bytes) -> bytes:
        """Send ``frame`` and return the raw reply; raises transport errors."""
        ...

    def close(self) -> None:
        """Release the transport."""
        ...


class AmbaSession(RecorderSession):
    """``@Ver`` login and ``@Gdv`` device ID on open; ``@Sdt``/``@Stm`` clock; ``@ATH`` storage.

    No public command reads battery, clock or storage, so those are ``None``.
    """

    def __init__(self, link: AmbaLink, password: bytes | None, clock: Clock,
                 zone: dt.tzinfo) -> None:
        self._link = link
        self._password = proto.password_text(password)
        self._clock = clock
        self._zone = zone
        self._closed = False
        try:
            proto.check_login(self._ask(proto.login_frame(), "Ver"))
            self._device_id = proto.parse_device_id(
                self._ask(proto.device_id_frame(self._password), "Gdv"))
        except BaseException:
            self.close()
            raise

    @property
    def capabilities(self) -> Capabilities:
        """Clock set only; the password is checked by the recorder [inferred]."""
        return Capabilities(battery=False, read_clock=False, set_clock=True, storage=False,
                            authenticated=True)

    def identify(self) -> RecorderIdentity:
        """The ``@Gdv`` device ID is both the serial and the volume label."""
        return RecorderIdentity(serial=self._device_id, driver=DRIVER_NAME,
                                device_label=self._device_id)

    def battery_percent(self) -> None:
        """Unknown: no public command."""
        return None

    def read_clock(self) -> ClockReading:
        """Unknown recorder time: no public command."""
        return ClockReading(None, self._clock.now())

    def set_clock(self, moment: dt.datetime) -> None:
        """``@Sdt`` then ``@Stm`` with the same local wall time."""
        wall = to_wall_seconds(moment, self._zone)
        if not 0 <= wall.year <= 9999:
            raise ClockSetFailed(f"year {wall.year} cannot be sent")
        for frame, command in ((proto.set_date_frame(wall), "Sdt"),
                               (proto.set_time_frame(wall), "Stm")):
            if self._ask(frame, command).is_error:
                raise ClockSetFailed(f"recorder refused @{command} (replied ERROR)")

    def storage(self) -> StorageInfo | None:
        """Unknown: no public command."""
        return None

    def switch_to_mass_storage(self) -> None:
        """``@ATH``; the recorder then re-enumerates as a disk labelled with its device ID."""
        reply = self._ask(proto.mass_storage_frame(self._password), "ATH")
        if reply.is_error:
            raise RecorderError(f"recorder refused mass-storage mode ({reply.text!r})")
        log.info("recorder %s switched to mass storage", self._device_id)
        self.close()

    def close(self) -> None:
        """Close the link once."""
        if not self._closed:
            self._closed = True
            self._link.close()

    def _ask(self, frame: bytes, command: str) -> proto.AmbaReply:
        if self._closed:
            raise ProtocolError(f"session is closed; cannot send @{command}")
        reply = proto.parse_reply(self._link.exchange(frame))
        proto.check_ack(reply, command)
        return reply
