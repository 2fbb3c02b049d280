"""The ``[health]`` section: thresholds of the checks made at every dock (rules art. 4)."""

from __future__ import annotations

from dataclasses import dataclass

from dockd.config.reader import TableReader

#: The art. 4 checks made at every dock, in the order an officer is told about them; the
#: words of ``require_checks`` (docs/runtime.md) and of ``unchecked`` (docs/mqtt.md).
CHECKS = ("battery", "storage", "clock")


@dataclass(frozen=True)
class HealthSection:
    """Thresholds of the checks made at every dock (rules art. 4)."""

    battery_min_percent: int = 30
    storage_min_free_percent: float = 10.0
    max_clock_drift_s: float = 2.0
    set_clock: bool = True


def parse_health(t: TableReader) -> HealthSection:
    """Validate ``[health]``."""
    d = HealthSection
    return HealthSection(
        battery_min_percent=t.integer("battery_min_percent", d.battery_min_percent,
                                      minimum=0, maximum=100),
        storage_min_free_percent=t.number("storage_min_free_percent", d.storage_min_free_percent,
                                          minimum=0, maximum=100),
        max_clock_drift_s=t.number("max_clock_drift_s", d.max_clock_drift_s, minimum=0,
                                   maximum=86400),
        set_clock=t.boolean("set_clock", d.set_clock),
    )
