"""The JSON payloads of the topic tree (version 1), built from the shared dock words.

Each builder returns a plain dict whose shape is pinned by ``schemas/<name>.v1.json``;
custody and checkpoint payloads are the store's own ``to_json_dict()`` and are not built here.
Nothing of a recording's content is ever in a payload (art. 3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dockd.dock.states import BayStatus, FaultReason
from dockd.store.canonical import canonical_json
from dockd.store.outbox import PAYLOAD_VERSION

ONLINE = "online"
OFFLINE = "offline"
OUTBOX_BACKLOG = "outbox_backlog"
LED_FAULT = "led_fault"
# Every ``reason`` an alert can carry: a bay's fault, the outbox backlog, a broken LED board.
ALERT_REASONS: tuple[str, ...] = (*(f.value for f in FaultReason), OUTBOX_BACKLOG, LED_FAULT)


@dataclass(frozen=True)
class RecorderHealth:
    """The fitness of one recorder as last seen at a dock (art. 4)."""

    battery_percent: int | None = None
    spare_battery_percent: int | None = None
    storage_free_bytes: int | None = None
    storage_total_bytes: int | None = None
    clock_drift_s: float | None = None
    clock_corrected: bool | None = None
    last_docked: str | None = None  # RFC 3339 UTC
    bay: int | None = None


@dataclass(frozen=True)
class DockStatus:
    """What the status topic says besides online/offline."""

    version: str
    public_key: str
    store_free_bytes: int | None = None
    store_total_bytes: int | None = None
    clock_synced: bool | None = None
    outbox_pending: int | None = None


def status_payload(dock: str, site: str, online: bool, status: DockStatus,
                   time: str | None) -> dict[str, Any]:
    """``…/status``: online (birth) or offline (Last Will and clean shutdown)."""
    return {"v": PAYLOAD_VERSION, "dock": dock, "site": site,
            "state": ONLINE if online else OFFLINE, "time": time, "version": status.version,
            "public_key": status.public_key,
            "store": {"free_bytes": status.store_free_bytes,
                      "total_bytes": status.store_total_bytes},
            "clock_synced": status.clock_synced, "outbox_pending": status.outbox_pending}


def bay_payload(dock: str, bay: BayStatus) -> dict[str, Any]:
    """``…/bay/<n>/state``: the bay's one JSON shape, with the payload version and dock."""
    return {"v": PAYLOAD_VERSION, "dock": dock, **bay.to_json_dict()}


def health_payload(dock: str, serial: str, health: RecorderHealth) -> dict[str, Any]:
    """``…/recorder/<serial>/health``."""
    return {"v": PAYLOAD_VERSION, "dock": dock, "recorder": serial,
            "battery_percent": health.battery_percent,
            "spare_battery_percent": health.spare_battery_percent,
            "storage_free_bytes": health.storage_free_bytes,
            "storage_total_bytes": health.storage_total_bytes,
            "clock_drift_s": health.clock_drift_s, "clock_corrected": health.clock_corrected,
            "last_docked": health.last_docked, "bay": health.bay}


def encode(payload: dict[str, Any]) -> bytes:
    """The bytes put on the wire: canonical JSON (the same form the outbox stores)."""
    return canonical_json(payload)


def decode(data: bytes) -> Any:
    """Parse a payload; ValueError (never anything else) on bytes that are not JSON."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"payload is not UTF-8 JSON: {exc}") from None
