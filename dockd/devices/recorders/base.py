"""The recorder plugin interface: what every driver offers the dock, and the errors it raises.

A driver (``RecorderDriver``) opens a ``RecorderSession`` on one docked recorder through one
transport.  A session answers only what the recorder really told it: an unknown battery level or
clock is ``None``, never a guess.  Every failure is a ``RecorderError`` (a ``DeviceError``, exit 69);
its subclass says what happened at the recorder.  Which bay fault that means is the dock's policy
(``dockd.dock.faults``), not the driver's: this module knows nothing of bays.

Times at this interface are timezone-aware.  Recorders keep local wall-clock time without a zone,
so each session converts with the zone of its ``TransportSpec`` (see ``wallclock``).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from dockd.clock import Clock
from dockd.errors import DeviceError


@dataclass(frozen=True)
class RecorderIdentity:
    """Who a recorder is, as far as the recorder itself said.

    ``serial`` is the one key the dock files recordings under; the other fields are ``None`` when
    the protocol has no way to read them (``id_code`` is the 5-character GA/T 947 manufacturer and
    model code, ``device_label`` the Ambarella device ID that also labels its volume).
    """

    serial: str
    driver: str
    id_code: str | None = None
    officer_id: str | None = None
    officer_name: str | None = None
    unit_id: str | None = None
    unit_name: str | None = None
    device_label: str | None = None
    #: The bytes each text field arrived as (``officer_id``, ``officer_name``, ``unit_id``,
    #: ``unit_name``), kept so that a custody record holds what the recorder really said even
    #: when the text could not be decoded (the field is then ``None``).
    text_raw: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    #: What was tolerated while decoding (a field left ``None``, and why).
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClockReading:
    """The recorder's clock and the dock's clock at the moment it was read.

    ``recorder_time`` is ``None`` when the protocol cannot read the clock; ``read_at`` always comes
    from the injected dock clock, so drift is ``recorder_time - read_at``.
    """

    recorder_time: dt.datetime | None
    read_at: dt.datetime

    @property
    def drift_s(self) -> float | None:
        """Seconds the recorder is ahead of the dock (negative: behind), or ``None``."""
        if self.recorder_time is None:
            return None
        return (self.recorder_time - self.read_at).total_seconds()


@dataclass(frozen=True)
class ClockSetResult:
    """What a clock set sent: the recorder's local wall time and the bytes on the wire.

    Recorders acknowledge a set but most cannot be asked for their time afterwards, so the
    custody record keeps exactly what was sent."""

    wall_time: dt.datetime
    wire: str


@dataclass(frozen=True)
class SwitchOutcome:
    """How the recorder took the command to present its card as a disk.

    ``acknowledged`` is False when the command went out but no confirmation came back (a
    timeout, a transport error, the device leaving the bus): real recorders often drop off mid-
    command, so only the disk that appears (or not) decides.  An explicit refusal is not an
    outcome but a ``SwitchRefused`` (or ``NoSdCard``) error."""

    acknowledged: bool
    detail: str


@dataclass(frozen=True)
class StorageInfo:
    """Capacity of the recorder's card, in bytes."""

    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class Capabilities:
    """What a session can really do, so the dock skips checks instead of inventing values.

    ``authenticated`` is True only when the recorder itself checked the admin password.
    """

    battery: bool
    read_clock: bool
    set_clock: bool
    storage: bool
    authenticated: bool


@dataclass(frozen=True)
class TransportSpec:
    """Where and how to reach one recorder.

    ``kind`` is one of ``serial`` (pyserial port at ``path``), ``sg`` (SCSI generic node at
    ``path``, or found by INQUIRY when ``path`` is None), ``usb`` (pyusb bulk, found by
    ``usb_serial`` or ``usb_bus``/``usb_address``), ``usb-a9`` (pyusb control transfers) and
    ``volume`` (a mounted mass-storage volume at ``mount_path``).  ``timezone`` is the IANA zone
    the recorder's wall clock runs in; ``None`` means the dock's own local zone.  Timeouts
    ``None`` mean the protocol's own per-command timeouts.  ``options`` are
    driver-specific settings documented in docs/recorder-protocols.md.
    """

    kind: str
    path: str | None = None
    usb_serial: str | None = None
    usb_bus: int | None = None
    usb_address: int | None = None
    mount_path: str | None = None
    timezone: str | None = None
    timeout_s: float | None = None  # reads / replies; None: the protocol's own
    write_timeout_s: float | None = None  # writes where the protocol has its own (DV16: 10 s)
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


class RecorderError(DeviceError):
    """A recorder answered wrongly, not at all, or refused a command."""


class LoginFailed(RecorderError):
    """The recorder refused the admin password."""


class RecorderTimeout(RecorderError):
    """The recorder did not answer within the protocol's timeout."""


class ProtocolError(RecorderError):
    """The recorder's reply was short, garbled or not what the protocol allows."""


class NoSdCard(RecorderError):
    """The recorder has no (readable) SD card, so there is no storage to check or offload."""


class ClockSetFailed(RecorderError):
    """The recorder did not accept the new time."""


class SwitchRefused(RecorderError):
    """The recorder explicitly refused to present its card as a disk (e.g. an ERROR reply)."""


class RecorderGone(RecorderError):
    """The recorder vanished from the bus (pulled out, or re-enumerated) during an exchange."""


class RecorderSession(abc.ABC):
    """An open control connection to one docked recorder.

    Methods raise ``RecorderError`` subclasses; a method whose capability is False returns
    ``None`` (reads) or raises ``ClockSetFailed`` (``set_clock``).  Once
    ``switch_to_mass_storage`` has sent its command the recorder leaves the bus and the session
    is closed, whatever the outcome; after a refusal it stays open.
    """

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """What this session can read and set."""

    @abc.abstractmethod
    def identify(self) -> RecorderIdentity:
        """Read the recorder's identity (serial, ID code, officer and unit when known)."""

    @abc.abstractmethod
    def battery_percent(self) -> int | None:
        """Battery level 0..100, or ``None`` when the protocol cannot tell."""

    @abc.abstractmethod
    def read_clock(self) -> ClockReading:
        """Read the recorder's clock together with the dock's time of reading."""

    @abc.abstractmethod
    def set_clock(self, moment: dt.datetime) -> ClockSetResult:
        """Set the recorder's clock to ``moment`` (aware) in the recorder's wall-clock zone;
        returns what was sent once the recorder has acknowledged it."""

    @abc.abstractmethod
    def storage(self) -> StorageInfo | None:
        """Card capacity, or ``None`` when the protocol cannot tell; ``NoSdCard`` when absent."""

    @abc.abstractmethod
    def switch_to_mass_storage(self) -> SwitchOutcome:
        """Ask the recorder to present its card as a USB disk; closes this session.

        Errors before the command is sent propagate; once it is sent, anything but an explicit
        refusal (``SwitchRefused``, ``NoSdCard``) is an unacknowledged ``SwitchOutcome``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the transport.  Safe to call more than once."""

    def __enter__(self) -> RecorderSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RecorderDriver(Protocol):
    """A protocol family.  ``name`` is the entry-point name in ``dockd.recorders``."""

    name: str

    def transports(self) -> frozenset[str]:
        """The ``TransportSpec.kind`` values this driver can open."""
        ...

    def open(
        self, spec: TransportSpec, password: bytes | None, clock: Clock
    ) -> RecorderSession:
        """Connect and log in; raises ``LoginFailed``, ``RecorderTimeout``, ``RecorderGone`` …"""
        ...
