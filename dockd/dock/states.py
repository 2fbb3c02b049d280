"""Bay states and fault reasons: the words shared by the daemon, LEDs, console and MQTT."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

# The store owns offload progress; the bay's status carries it.
from dockd.store.progress import Progress

__all__ = ["BayState", "BayStatus", "FaultReason", "Progress"]


class BayState(enum.StrEnum):
    """Where a bay's recorder is in its dock."""

    EMPTY = "empty"
    IDENTIFYING = "identifying"
    CHECKING = "checking"
    OFFLOADING = "offloading"
    READY = "ready"
    #: Offloaded and nothing wrong found, but some art. 4 check could not be done (the model
    #: cannot report its battery, storage or clock): ``BayStatus.unchecked`` says which.
    READY_UNCHECKED = "ready_unchecked"
    FAULT = "fault"


class FaultReason(enum.StrEnum):
    """Why a bay is in ``fault``. Recorder problems vs dock problems decide the LED pattern."""

    BATTERY_LOW = "battery_low"
    STORAGE_FULL = "storage_full"
    CLOCK_UNSYNCED = "clock_unsynced"
    CLOCK_SET_FAILED = "clock_set_failed"
    UNKNOWN_DEVICE = "unknown_device"
    LOGIN_FAILED = "login_failed"
    STORAGE_SWITCH_FAILED = "storage_switch_failed"
    OFFLOAD_FAILED = "offload_failed"
    REMOVED_DURING_OFFLOAD = "removed_during_offload"
    STORE_FULL = "store_full"
    #: A check the model's ``require_checks`` asks for could not be done (unknown reading).
    CHECK_UNAVAILABLE = "check_unavailable"

    @property
    def is_dock_problem(self) -> bool:
        """True when the dock, not the recorder, must be looked at."""
        return self in (FaultReason.CLOCK_UNSYNCED, FaultReason.STORE_FULL,
                        FaultReason.OFFLOAD_FAILED)


@dataclass(frozen=True)
class BayStatus:
    """Everything the dock shows about one bay at one moment."""

    bay: int
    label: str
    state: BayState = BayState.EMPTY
    fault: FaultReason | None = None
    recorder: str | None = None
    officer: str | None = None
    battery_percent: int | None = None
    storage_free_bytes: int | None = None
    storage_total_bytes: int | None = None
    clock_drift_s: float | None = None
    progress: Progress = field(default_factory=Progress)
    updated_at: str = ""
    #: The art. 4 checks (``battery``, ``storage``, ``clock``) that could not be done on the
    #: recorder in the bay; shown with ``ready_unchecked``.
    unchecked: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """The one JSON shape of a bay: the state channel's, and MQTT's ``bay/<n>/state``
        (which adds ``v`` and ``dock``)."""
        p = self.progress
        return {"bay": self.bay, "label": self.label, "state": self.state.value,
                "fault": self.fault.value if self.fault else None,
                "fault_scope": None if self.fault is None
                else ("dock" if self.fault.is_dock_problem else "recorder"),
                "recorder": self.recorder, "officer": self.officer,
                "battery_percent": self.battery_percent,
                "storage_free_bytes": self.storage_free_bytes,
                "storage_total_bytes": self.storage_total_bytes,
                "clock_drift_s": self.clock_drift_s,
                "progress": {"files_done": p.files_done, "files_total": p.files_total,
                             "bytes_done": p.bytes_done, "bytes_total": p.bytes_total,
                             "rate_bytes_per_s": round(p.rate_bytes_per_s, 1),
                             "seconds_left": p.seconds_left},
                "unchecked": list(self.unchecked),
                "updated_at": self.updated_at or None}
