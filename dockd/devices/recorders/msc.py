"""Plain mass-storage recorders: no control channel, identity from the USB serial number.

Battery and clock are unknown.  Storage comes from ``statvfs`` of the mounted volume.  Models
that read their clock from a file at boot get it written when the spec's options say so::

    time_file   = "TIME.TXT"            # file name in the volume root
    time_format = "%Y-%m-%d %H:%M:%S"   # strftime of the recorder's local wall time
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path

from dockd.clock import Clock
from dockd.devices.recorders.base import (
    Capabilities,
    ClockReading,
    ClockSetFailed,
    ClockSetResult,
    RecorderGone,
    RecorderIdentity,
    RecorderSession,
    StorageInfo,
    SwitchOutcome,
    TransportSpec,
)
from dockd.devices.recorders.wallclock import recorder_zone, to_wall
from dockd.errors import ConfigError
from dockd.i18n import _

log = logging.getLogger(__name__)

DRIVER_NAME = "msc"
DEFAULT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_SERIAL_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_FILE_RE = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,63}")


class MscSession(RecorderSession):
    """A docked USB disk; every method works on the mounted volume or reports 'unknown'."""

    def __init__(self, spec: TransportSpec, clock: Clock) -> None:
        serial = spec.usb_serial
        if serial is None or not _SERIAL_RE.fullmatch(serial):
            raise ConfigError(_("mass-storage recorder needs a USB serial number of letters, digits, "
                                "'_', '.', '-' (got {serial!r})").format(serial=serial))
        self._serial = serial
        self._mount = Path(spec.mount_path) if spec.mount_path else None
        self._clock = clock
        self._zone = recorder_zone(spec.timezone)
        self._time_file = spec.options.get("time_file")
        self._time_format = spec.options.get("time_format", DEFAULT_TIME_FORMAT)
        if self._time_file is not None and not _FILE_RE.fullmatch(self._time_file):
            raise ConfigError(_("time_file {time_file!r} must be a plain file name in the volume "
                                "root").format(time_file=self._time_file))
        if self._time_file is not None and "%" not in self._time_format:
            raise ConfigError(_("time_format {time_format!r} has no strftime fields").format(
                                time_format=self._time_format))

    @property
    def capabilities(self) -> Capabilities:
        """Storage when mounted; clock set when a time file is configured."""
        mounted = self._mount is not None
        return Capabilities(battery=False, read_clock=False,
                            set_clock=mounted and self._time_file is not None,
                            storage=mounted, authenticated=False)

    def identify(self) -> RecorderIdentity:
        """The USB serial number."""
        return RecorderIdentity(serial=self._serial, driver=DRIVER_NAME)

    def battery_percent(self) -> None:
        """Unknown."""
        return None

    def read_clock(self) -> ClockReading:
        """Unknown recorder time (a time file says what we wrote, not what the clock shows)."""
        return ClockReading(None, self._clock.now())

    def set_clock(self, moment: dt.datetime) -> ClockSetResult:
        """Write the configured time file (atomically, synced) into the volume root."""
        if self._mount is None or self._time_file is None:
            raise ClockSetFailed(_("this recorder model has no clock file configured (options "
                                   "time_file/time_format)"))
        wall = to_wall(moment, self._zone)
        text = wall.strftime(self._time_format) + "\n"
        target = self._mount / self._time_file
        temp = self._mount / f".{self._time_file}.dockd-tmp"
        try:
            with open(temp, "w", encoding="ascii", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except (OSError, UnicodeEncodeError) as exc:
            raise ClockSetFailed(_("cannot write clock file {target}: {exc}").format(
                                   target=target, exc=exc)) from exc
        log.info("wrote clock file %s for recorder %s", target, self._serial)
        return ClockSetResult(wall, f"{self._time_file}: {text.rstrip()}")

    def storage(self) -> StorageInfo | None:
        """``statvfs`` of the mounted volume; ``RecorderGone`` if it vanished."""
        if self._mount is None:
            return None
        try:
            st = os.statvfs(self._mount)
        except OSError as exc:
            raise RecorderGone(_("recorder volume {mount} is gone: {exc}").format(
                                 mount=self._mount, exc=exc)) from exc
        return StorageInfo(total_bytes=st.f_blocks * st.f_frsize,
                           free_bytes=st.f_bavail * st.f_frsize)

    def switch_to_mass_storage(self) -> SwitchOutcome:
        """Already mass storage."""
        self.close()
        return SwitchOutcome(True, "already a disk")

    def close(self) -> None:
        """Nothing to release."""
