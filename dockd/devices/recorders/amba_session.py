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
    ClockSetResult,
    ProtocolError,
    RecorderError,
    RecorderIdentity,
    RecorderSession,
    StorageInfo,
    SwitchOutcome,
    SwitchRefused,
)
from dockd.devices.recorders.wallclock import to_wall_seconds
from dockd.i18n import _

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

    def set_clock(self, moment: dt.datetime) -> ClockSetResult:
        """``@Sdt`` then ``@Stm`` with the same local wall time.

        The public host never looks at these replies; only an explicit ``ERROR`` is taken as a
        refusal (``ClockSetFailed``), a garbled reply is logged and accepted."""
        wall = to_wall_seconds(moment, self._zone)
        if not 0 <= wall.year <= 9999:
            raise ClockSetFailed(_("year {year} cannot be sent").format(year=wall.year))
        frames = ((proto.set_date_frame(wall), "Sdt"), (proto.set_time_frame(wall), "Stm"))
        for frame, command in frames:
            reply = self._ask_lenient(frame, command)
            if reply is not None and reply.is_error:
                raise ClockSetFailed(_("recorder refused @{command} (replied {text!r})").format(
                                       command=command, text=reply.text))
        return ClockSetResult(wall, " ".join(frame.decode("ascii") for frame, _reply in frames))

    def storage(self) -> StorageInfo | None:
        """Unknown: no public command."""
        return None

    def switch_to_mass_storage(self) -> SwitchOutcome:
        """``@ATH``; the recorder then re-enumerates as a disk labelled with its device ID.

        Public hosts ignore this reply, and real recorders often leave the bus without one:
        only an explicit ``ERROR`` is a refusal; silence, a transport error or garbage is an
        unacknowledged outcome, and the disk that appears (or not) decides."""
        if self._closed:
            raise ProtocolError(_("session is closed; cannot send @ATH"))
        try:
            reply = proto.parse_reply(self._link.exchange(
                proto.mass_storage_frame(self._password)))
        except RecorderError as exc:
            self.close()
            log.info("recorder %s: no reply to @ATH (%s)", self._device_id, exc)
            return SwitchOutcome(False, f"@ATH sent, no usable reply: {exc}")
        if reply.is_error:  # the recorder stays as it was: the session stays open
            raise SwitchRefused(_("recorder refused mass-storage mode (replied {text!r}); public hosts "
                                  "read this as 'already in storage mode': unplug and re-dock it").format(
                                  text=reply.text))
        self.close()
        log.info("recorder %s acknowledged @ATH", self._device_id)
        return SwitchOutcome(True, f"@ATH answered {reply.text!r}")

    def close(self) -> None:
        """Close the link once."""
        if not self._closed:
            self._closed = True
            self._link.close()

    def _ask(self, frame: bytes, command: str) -> proto.AmbaReply:
        if self._closed:
            raise ProtocolError(_("session is closed; cannot send @{command}").format(command=command))
        reply = proto.parse_reply(self._link.exchange(frame))
        proto.check_ack(reply, command)
        return reply

    def _ask_lenient(self, frame: bytes, command: str) -> proto.AmbaReply | None:
        """A reply the public host ignores: garbled or mismatched ones are logged, not fatal."""
        try:
            return self._ask(frame, command)
        except ProtocolError as exc:
            if self._closed:
                raise
            log.warning("recorder %s: unusable reply to @%s ignored (%s)", self._device_id,
                        command, exc)
            return None
