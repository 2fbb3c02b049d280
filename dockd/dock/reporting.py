"""What the dock tells whoever shows it: the one interface of LEDs, MQTT and the state channel.

The daemon holds a list of :class:`Reporter` and tells each of them the same things: a bay
changed, a recorder was checked, the dock line changed, custody records were committed. A
reporter ignores what it does not show (the LEDs have no use for a health report). The MQTT
reporter is also the dock's :class:`Uplink`: its link state is part of the dock line, which
is how the dock LED and the console learn whether the broker is reachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from dockd.dock.health import HealthReport
from dockd.dock.states import BayStatus


@dataclass(frozen=True)
class BrokerState:
    """One snapshot of the link to the broker."""

    broker: str
    connected: bool = False
    error: str | None = None
    since: str | None = None  # RFC 3339 time of the last connect/disconnect
    outbox_pending: int = 0
    in_flight: int = 0
    outbox_over_limit: bool = False
    last_sent_id: int | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {"broker": self.broker, "connected": self.connected, "error": self.error,
                "since": self.since, "outbox_pending": self.outbox_pending,
                "in_flight": self.in_flight, "outbox_over_limit": self.outbox_over_limit,
                "last_sent_id": self.last_sent_id}


@dataclass(frozen=True)
class DockInfo:
    """The dock line: the dock's identity and the state of what every bay depends on."""

    id: str
    site: str
    version: str
    time: str
    store_free_bytes: int
    store_total_bytes: int
    clock_synchronised: bool
    outbox_depth: int
    public_key: str
    broker: BrokerState | None = None  # None: MQTT is not enabled

    @property
    def broker_online(self) -> bool:
        return self.broker is not None and self.broker.connected

    def to_json_dict(self) -> dict[str, Any]:
        """The state channel's ``dock`` object."""
        return {"id": self.id, "site": self.site, "version": self.version, "time": self.time,
                "store_free_bytes": self.store_free_bytes,
                "store_total_bytes": self.store_total_bytes,
                "clock_synchronised": self.clock_synchronised, "outbox_depth": self.outbox_depth,
                "broker": self.broker.to_json_dict() if self.broker else {"state": "disabled"},
                "public_key": self.public_key}


@dataclass(frozen=True)
class RecorderChecked:
    """A recorder's art. 4 checks at a dock, as the reporters show them."""

    serial: str
    bay: int
    report: HealthReport
    docked_at: str  # RFC 3339 UTC


class Reporter(Protocol):
    """Something that shows the dock (LEDs, MQTT, the state channel)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def bay_changed(self, status: BayStatus) -> None: ...

    def recorder_checked(self, checked: RecorderChecked) -> None: ...

    def dock_changed(self, info: DockInfo) -> None: ...

    def records_committed(self) -> None: ...


class Uplink(Protocol):
    """The dock's link to the central broker."""

    def link_state(self) -> BrokerState: ...
