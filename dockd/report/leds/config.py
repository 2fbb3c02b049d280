"""The ``[leds]`` config section: which LED driver, and which LED belongs to which bay.

::

    [leds]
    driver = "sysfs"                 # "none" | "sysfs" | "serial"
    sysfs_root = "/sys/class/leds"
    dock = { led = "dock:status" }   # optional dock-level LED
    [[leds.bay]]
    bay = 1
    led = "bay1:status"              # a multicolour LED (multi_index/multi_intensity) ...
    [[leds.bay]]
    bay = 2
    red = "bay2:red"                 # ... or one LED per colour; amber optional
    green = "bay2:green"             #     (absent: amber = red + green together)
    [leds.serial]
    port = "/dev/serial/by-id/usb-dockd_ledboard-if00"
    baud = 115200
    ack_timeout_ms = 200
    retries = 3
    reconnect_interval_ms = 2000
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from dockd.config import TableReader, register_section
from dockd.errors import ConfigError
from dockd.report.leds.pattern import DOCK, LedTarget

DRIVERS = ("none", "sysfs", "serial")
# Kernel LED names are "devicename:colour:function"; no '/', and never '.' or '..'.
LED_NAME_PATTERN = re.compile(r"^(?!\.\.?$)[A-Za-z0-9_.:+-]{1,64}$")
LED_NAME_HINT = "an LED name under /sys/class/leds (letters, digits, '_.:+-')"
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)


@dataclass(frozen=True)
class SysfsLedSpec:
    """The LED class device(s) of one target: one multicolour LED, or red/green[/amber]."""

    target: LedTarget
    multicolor: str | None = None
    red: str | None = None
    green: str | None = None
    amber: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Every LED class device name this spec drives."""
        return tuple(n for n in (self.multicolor, self.red, self.green, self.amber) if n)


@dataclass(frozen=True)
class SerialBoardSpec:
    """Where the bay controller board is and how patient to be with it."""

    port: Path | None = None
    baud: int = 115200
    ack_timeout_s: float = 0.2
    retries: int = 3
    reconnect_interval_s: float = 2.0


@dataclass(frozen=True)
class LedsSection:
    """The parsed ``[leds]`` section."""

    driver: str = "none"
    sysfs_root: Path = Path("/sys/class/leds")
    sysfs_leds: tuple[SysfsLedSpec, ...] = ()
    serial: SerialBoardSpec = field(default_factory=SerialBoardSpec)


def parse_leds(t: TableReader) -> LedsSection:
    """Validate ``[leds]`` (the caller checks for unknown keys at this level)."""
    driver = t.choice("driver", "none", DRIVERS)
    root = t.path("sysfs_root", LedsSection.sysfs_root) or LedsSection.sysfs_root
    leds: list[SysfsLedSpec] = []
    seen: set[LedTarget] = set()
    for bay_table in t.tables("bay"):
        if "bay" not in bay_table.data:
            raise ConfigError(f"{bay_table.key('bay')}: missing; every [[leds.bay]] needs a bay")
        bay = bay_table.integer("bay", 0, minimum=0, maximum=255)
        if bay in seen:
            raise ConfigError(f"{bay_table.key('bay')}: bay {bay} is listed twice")
        seen.add(bay)
        leds.append(_parse_sysfs_spec(bay_table, bay))
    if "dock" in t.data:
        leds.append(_parse_sysfs_spec(t.table("dock"), DOCK))
    else:
        t.seen.add("dock")
    serial = _parse_serial(t.table("serial"))
    if driver == "sysfs" and not any(spec.target != DOCK for spec in leds):
        raise ConfigError(f"{t.key('bay')}: driver \"sysfs\" needs at least one [[leds.bay]]")
    if driver == "serial" and serial.port is None:
        raise ConfigError(f"{t.key('serial.port')}: driver \"serial\" needs the board's port")
    return LedsSection(driver=driver, sysfs_root=root, sysfs_leds=tuple(leds), serial=serial)


def _parse_sysfs_spec(t: TableReader, target: LedTarget) -> SysfsLedSpec:
    names = {key: t.get(key, (str, type(None)), None) for key in ("led", "red", "green", "amber")}
    for key, value in names.items():
        if value is not None and not LED_NAME_PATTERN.match(value):
            raise ConfigError(f"{t.key(key)}: {value!r} is not valid; expected {LED_NAME_HINT}")
    t.finish()
    if names["led"] is not None:
        extra = [k for k in ("red", "green", "amber") if names[k] is not None]
        if extra:
            raise ConfigError(f"{t.key(extra[0])}: give either led (multicolour) or "
                              "red/green/amber LEDs, not both")
        return SysfsLedSpec(target, multicolor=names["led"])
    missing = [k for k in ("red", "green") if names[k] is None]
    if missing:
        raise ConfigError(f"{t.key(missing[0])}: missing; give led (a multicolour LED) or "
                          "both red and green")
    return SysfsLedSpec(target, red=names["red"], green=names["green"], amber=names["amber"])


def _parse_serial(t: TableReader) -> SerialBoardSpec:
    spec = SerialBoardSpec(
        port=t.path("port", None),
        baud=t.integer("baud", 115200),
        ack_timeout_s=t.integer("ack_timeout_ms", 200, minimum=10, maximum=10_000) / 1000,
        retries=t.integer("retries", 3, minimum=0, maximum=20),
        reconnect_interval_s=t.integer("reconnect_interval_ms", 2000, minimum=50,
                                       maximum=600_000) / 1000,
    )
    if spec.baud not in BAUD_RATES:
        raise ConfigError(f"{t.key('baud')}: {spec.baud} is not one of "
                          f"{', '.join(str(b) for b in BAUD_RATES)}")
    t.finish()
    return spec


register_section("leds", parse_leds)
