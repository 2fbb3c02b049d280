"""Health checks made at every dock (rules art. 4): battery, recorder storage, clock.

Pure decisions on readings; the bay gathers the readings through the recorder driver.
Unknown readings (None) are not faults by themselves: the dock does not invent values. They
are *unchecked*, and the report says so (``HealthReport.unchecked``), so that a bay never calls
a recorder ``ready`` whose checks were not done (it is ``ready_unchecked``). A model's
``require_checks`` makes an unknown reading of those checks the fault ``check_unavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockd.config.health import CHECKS, HealthSection
from dockd.dock.states import FaultReason


@dataclass(frozen=True)
class ClockCheck:
    """The recorder's clock before and (if set) after the dock corrected it.

    ``drift_before_s`` is None when the recorder's clock cannot be read; ``settable`` says the
    recorder can be told the time at all; ``set_accepted`` that it acknowledged a set. A set
    is *verified* only when the clock could be read back (``drift_after_s``)."""

    drift_before_s: float | None
    drift_after_s: float | None = None
    set_attempted: bool = False
    dock_synchronised: bool = True
    settable: bool = False
    set_accepted: bool = False

    @property
    def verified(self) -> bool:
        """The set was read back."""
        return self.set_attempted and self.drift_after_s is not None


@dataclass(frozen=True)
class HealthReport:
    """Readings, the faults they imply (in the order an officer should see them), and the
    checks that could not be done."""

    battery_percent: int | None = None
    storage_total_bytes: int | None = None
    storage_free_bytes: int | None = None
    clock: ClockCheck = field(default_factory=lambda: ClockCheck(None))
    faults: tuple[FaultReason, ...] = ()
    unchecked: tuple[str, ...] = ()
    required: tuple[str, ...] = ()  # the model's require_checks

    @property
    def missing_required(self) -> tuple[str, ...]:
        """Checks the model requires that could not be done (the ``check_unavailable`` fault)."""
        return tuple(c for c in self.unchecked if c in self.required)

    def to_json_dict(self) -> dict[str, Any]:
        return {"battery_percent": self.battery_percent,
                "storage_total_bytes": self.storage_total_bytes,
                "storage_free_bytes": self.storage_free_bytes,
                "clock_drift_before_s": self.clock.drift_before_s,
                "clock_drift_after_s": self.clock.drift_after_s,
                "clock_set": self.clock.set_attempted,
                "clock_set_verified": self.clock.verified,
                "dock_clock_synchronised": self.clock.dock_synchronised,
                "faults": [f.value for f in self.faults],
                "unchecked": list(self.unchecked),
                "required_checks": list(self.required)}


def evaluate(settings: HealthSection, battery_percent: int | None, storage_total: int | None,
             storage_free: int | None, clock: ClockCheck,
             required: tuple[str, ...] = ()) -> HealthReport:
    """Faults implied by the readings, and which checks had nothing to go on; an unchecked
    check that is ``required`` is the fault ``check_unavailable`` (after the others)."""
    faults: list[FaultReason] = []
    if battery_percent is not None and battery_percent < settings.battery_min_percent:
        faults.append(FaultReason.BATTERY_LOW)
    if storage_total and storage_free is not None and \
            100.0 * storage_free / storage_total < settings.storage_min_free_percent:
        faults.append(FaultReason.STORAGE_FULL)
    clock_wrong = clock_faults(settings, clock)
    faults.extend(clock_wrong)
    unchecked = []
    if battery_percent is None:
        unchecked.append("battery")
    if not storage_total or storage_free is None:
        unchecked.append("storage")
    if not clock_wrong and not clock.set_accepted and clock.drift_before_s is None:
        unchecked.append("clock")
    if any(c in required for c in unchecked):
        faults.append(FaultReason.CHECK_UNAVAILABLE)
    return HealthReport(battery_percent, storage_total, storage_free, clock, tuple(faults),
                        tuple(unchecked), tuple(c for c in CHECKS if c in required))


def clock_faults(settings: HealthSection, clock: ClockCheck) -> list[FaultReason]:
    """clock_unsynced when the dock could not vouch for its own time (and the recorder's clock
    could be read or set); clock_set_failed when a set was refused, or did not bring a clock
    that can be read back within bounds, or a known drift was left uncorrected."""
    if clock.drift_before_s is None and not clock.settable:
        return []
    if not clock.dock_synchronised:
        return [FaultReason.CLOCK_UNSYNCED]
    if clock.set_attempted:
        if not clock.set_accepted:
            return [FaultReason.CLOCK_SET_FAILED]
        if clock.drift_after_s is not None and abs(clock.drift_after_s) > settings.max_clock_drift_s:
            return [FaultReason.CLOCK_SET_FAILED]
        return []
    if clock.drift_before_s is not None and abs(clock.drift_before_s) > settings.max_clock_drift_s:
        return [FaultReason.CLOCK_SET_FAILED]
    return []


def needs_clock_set(settings: HealthSection, drift_s: float | None, dock_synchronised: bool,
                    settable: bool = True) -> bool:
    """Set the clock when the dock's clock can be trusted and the recorder's is beyond the
    bound, or cannot be read at all: art. 4 asks for the time to be set before use, and public
    stations set it after every login."""
    return (settings.set_clock and settable and dock_synchronised
            and (drift_s is None or abs(drift_s) > settings.max_clock_drift_s))
