"""The ``[leds]`` section: which LED driver, and which LED belongs to which bay.

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
from typing import Final, Literal, TypeAlias

from dockd.config.reader import TableReader
from dockd.i18n import _

DOCK: Final = "dock"
LedTarget: TypeAlias = int | Literal["dock"]
"""A bay number, or ``DOCK`` for the dock-level LED."""

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
    """Validate ``[leds]``."""
    driver = t.choice("driver", "none", DRIVERS)
    root = t.path("sysfs_root", LedsSection.sysfs_root) or LedsSection.sysfs_root
    leds: list[SysfsLedSpec] = []
    seen: set[LedTarget] = set()
    for bay_table in t.tables("bay"):
        if "bay" not in bay_table.data:
            bay_table.problem("bay", _("missing; every [[leds.bay]] needs a bay"))
            continue
        bay = bay_table.integer("bay", -1, minimum=0, maximum=255)
        if bay in seen:
            bay_table.problem("bay", _("bay {bay} is listed twice").format(bay=bay))
        seen.add(bay)
        spec = _parse_sysfs_spec(bay_table, bay)
        if spec is not None and bay >= 0:
            leds.append(spec)
    if "dock" in t.data:
        dock = _parse_sysfs_spec(t.table("dock"), DOCK)
        if dock is not None:
            leds.append(dock)
    else:
        t.seen.add("dock")
    serial = _parse_serial(t.table("serial"))
    if driver == "sysfs" and not any(spec.target != DOCK for spec in leds) and not t.has_problem("bay"):
        t.problem("bay", _('driver "sysfs" needs at least one [[leds.bay]]'))
    if driver == "serial" and serial.port is None:
        t.problem("serial.port", _('driver "serial" needs the board\'s port'))
    return LedsSection(driver=driver, sysfs_root=root, sysfs_leds=tuple(leds), serial=serial)


def _parse_sysfs_spec(t: TableReader, target: LedTarget) -> SysfsLedSpec | None:
    names = {key: t.optional_string(key, LED_NAME_PATTERN, LED_NAME_HINT)
             for key in ("led", "red", "green", "amber")}
    t.finish()
    if names["led"] is not None:
        extra = [k for k in ("red", "green", "amber") if names[k] is not None]
        if extra:
            t.problem(extra[0], _("give either led (multicolour) or red/green/amber LEDs, not both"))
            return None
        return SysfsLedSpec(target, multicolor=names["led"])
    missing = [k for k in ("red", "green") if names[k] is None and not t.has_problem(k)]
    if missing:
        t.problem(missing[0], _("missing; give led (a multicolour LED) or both red and green"))
        return None
    if names["red"] is None or names["green"] is None:
        return None
    return SysfsLedSpec(target, red=names["red"], green=names["green"], amber=names["amber"])


def _parse_serial(t: TableReader) -> SerialBoardSpec:
    baud = t.integer("baud", 115200)
    if baud not in BAUD_RATES:
        t.problem("baud", _("{baud} is not one of {rates}").format(
                            baud=baud, rates=', '.join(str(b) for b in BAUD_RATES)))
        baud = 115200
    spec = SerialBoardSpec(
        port=t.path("port", None),
        baud=baud,
        ack_timeout_s=t.integer("ack_timeout_ms", 200, minimum=10, maximum=10_000) / 1000,
        retries=t.integer("retries", 3, minimum=0, maximum=20),
        reconnect_interval_s=t.integer("reconnect_interval_ms", 2000, minimum=50,
                                       maximum=600_000) / 1000,
    )
    t.finish()
    return spec
