"""Builds the LED driver the ``[leds]`` section asks for (the daemon's one wiring point)."""

from __future__ import annotations

from dockd.clock import Clock
from dockd.config.leds import LedsSection
from dockd.report.leds.driver import FaultCallback, LedDriver, NoneDriver


def build_led_driver(section: LedsSection, on_fault: FaultCallback,
                     on_recover: FaultCallback | None = None,
                     clock: Clock | None = None) -> LedDriver:
    """The configured driver; nothing is opened until the first pattern is shown."""
    if section.driver == "sysfs":
        from dockd.report.leds.sysfs import SysfsLedDriver

        return SysfsLedDriver(section.sysfs_leds, on_fault, on_recover, root=section.sysfs_root)
    if section.driver == "serial":
        # Imported here so a dock without a board never loads pyserial.
        from dockd.report.leds.serial_board import SerialBoardDriver

        return SerialBoardDriver(section.serial, on_fault, on_recover, clock=clock)
    return NoneDriver()
