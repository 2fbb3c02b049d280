"""Health checks made at every dock (rules art. 4): battery, recorder storage, clock.

Pure decisions on readings; the bay gathers the readings through the recorder driver.
Unknown readings (None) are never faults: the dock does not invent values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockd.config.health import HealthSection
from dockd.dock.states import FaultReason


@dataclass(frozen=True)
class ClockCheck:
    """The recorder's clock before and (if set) after the dock corrected it."""

    drift_before_s: float | None
    drift_after_s: float | None = None
    set_attempted: bool = False
    dock_synchronised: bool = True


@dataclass(frozen=True)
class HealthReport:
    """Readings and the faults they imply, in the order an officer should see them."""

    battery_percent: int | None = None
    storage_total_bytes: int | None = None
    storage_free_bytes: int | None = None
    clock: ClockCheck = field(default_factory=lambda: ClockCheck(None))
    faults: tuple[FaultReason, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {"battery_percent": self.battery_percent,
                "storage_total_bytes": self.storage_total_bytes,
                "storage_free_bytes": self.storage_free_bytes,
                "clock_drift_before_s": self.clock.drift_before_s,
                "clock_drift_after_s": self.clock.drift_after_s,
                "clock_set": self.clock.set_attempted,
                "dock_clock_synchronised": self.clock.dock_synchronised,
                "faults": [f.value for f in self.faults]}


def evaluate(settings: HealthSection, battery_percent: int | None, storage_total: int | None,
             storage_free: int | None, clock: ClockCheck) -> HealthReport:
    """Faults implied by the readings."""
    faults: list[FaultReason] = []
    if battery_percent is not None and battery_percent < settings.battery_min_percent:
        faults.append(FaultReason.BATTERY_LOW)
    if storage_total and storage_free is not None and \
            100.0 * storage_free / storage_total < settings.storage_min_free_percent:
        faults.append(FaultReason.STORAGE_FULL)
    faults.extend(clock_faults(settings, clock))
    return HealthReport(battery_percent, storage_total, storage_free, clock, tuple(faults))


def clock_faults(settings: HealthSection, clock: ClockCheck) -> list[FaultReason]:
    """clock_unsynced when the dock could not vouch for its own time; clock_set_failed when a
    set did not bring the drift within bounds."""
    if clock.drift_before_s is None:
        return []
    if not clock.dock_synchronised:
        return [FaultReason.CLOCK_UNSYNCED]
    final = clock.drift_after_s if clock.set_attempted else clock.drift_before_s
    if final is None or abs(final) > settings.max_clock_drift_s:
        return [FaultReason.CLOCK_SET_FAILED]
    return []


def needs_clock_set(settings: HealthSection, drift_s: float | None, dock_synchronised: bool) -> bool:
    """Set the clock when it drifts beyond the bound and the dock's clock can be trusted."""
    return (settings.set_clock and dock_synchronised and drift_s is not None
            and abs(drift_s) > settings.max_clock_drift_s)
