"""What a bay's LED shows for a bay state: the one table of docs/leds.md, as a pure function.

Hardware differences (pulsing, progress, multicolour) are the drivers' business; a pattern
always carries ``on_ms``/``off_ms`` so that hardware which can only blink still shows a
rhythm that tells the states apart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from dockd.dock.states import BayState, BayStatus, FaultReason, Progress


class Colour(enum.StrEnum):
    """Colours every driver can show (amber may be red + green mixed)."""

    OFF = "off"
    RED = "red"
    GREEN = "green"
    AMBER = "amber"


class Mode(enum.StrEnum):
    """How the colour is shown over time."""

    OFF = "off"
    STEADY = "steady"
    BLINK = "blink"
    PULSE = "pulse"  # smooth breathing where the hardware can; otherwise blink on_ms/off_ms


@dataclass(frozen=True)
class LedPattern:
    """One LED's appearance. ``progress`` (0-100) is shown by hardware that can."""

    colour: Colour
    mode: Mode
    on_ms: int = 0
    off_ms: int = 0
    progress: int | None = None

    def __post_init__(self) -> None:
        if (self.mode is Mode.OFF) != (self.colour is Colour.OFF):
            raise ValueError(f"colour {self.colour} does not go with mode {self.mode}")
        if self.mode in (Mode.BLINK, Mode.PULSE) and (self.on_ms <= 0 or self.off_ms <= 0):
            raise ValueError(f"{self.mode} needs positive on_ms and off_ms")
        if self.progress is not None and not 0 <= self.progress <= 100:
            raise ValueError(f"progress {self.progress} is not within 0-100")


LED_OFF: Final = LedPattern(Colour.OFF, Mode.OFF)

# The table of docs/leds.md. Timings are chosen so that each state has its own rhythm even
# on an LED that can only blink: checking 1 Hz even, offloading mostly-on, ready but
# unchecked steady amber, recorder fault slow, dock fault fast.
CHECKING: Final = LedPattern(Colour.AMBER, Mode.BLINK, 500, 500)
OFFLOADING_MS: Final = (1500, 500)
READY: Final = LedPattern(Colour.GREEN, Mode.STEADY)
# Broker offline: a ready bay keeps its green but "winks" (a short dark gap every 3 s), so
# an officer still sees green while the dock shows it is not reporting.
READY_OFFLINE: Final = LedPattern(Colour.GREEN, Mode.BLINK, 2850, 150)
# Ready, but some art. 4 check could not be done: never green. Amber steady (checking blinks,
# offloading pulses), winking the same way while the broker is offline.
READY_UNCHECKED: Final = LedPattern(Colour.AMBER, Mode.STEADY)
READY_UNCHECKED_OFFLINE: Final = LedPattern(Colour.AMBER, Mode.BLINK, 2850, 150)
RECORDER_FAULT: Final = LedPattern(Colour.RED, Mode.BLINK, 1000, 1000)
DOCK_FAULT: Final = LedPattern(Colour.RED, Mode.BLINK, 150, 150)
DOCK_ONLINE: Final = LedPattern(Colour.GREEN, Mode.STEADY)
DOCK_OFFLINE: Final = LedPattern(Colour.AMBER, Mode.STEADY)


def led_pattern(status: BayStatus, broker_online: bool) -> LedPattern:
    """The pattern a bay's LED shows for ``status`` (see the table in docs/leds.md)."""
    state = status.state
    if state is BayState.EMPTY:
        return LED_OFF
    if state in (BayState.IDENTIFYING, BayState.CHECKING):
        return CHECKING
    if state is BayState.OFFLOADING:
        on_ms, off_ms = OFFLOADING_MS
        return LedPattern(Colour.AMBER, Mode.PULSE, on_ms, off_ms,
                          offload_percent(status.progress))
    if state is BayState.READY:
        return READY if broker_online else READY_OFFLINE
    if state is BayState.READY_UNCHECKED:
        return READY_UNCHECKED if broker_online else READY_UNCHECKED_OFFLINE
    return fault_pattern(status.fault)


def fault_pattern(reason: FaultReason | None) -> LedPattern:
    """Red, slow for a recorder problem, fast for a dock problem.

    A fault without a reason is a bug upstream; it is shown as a dock problem because
    somebody must look at the dock to find out.
    """
    if reason is None or reason.is_dock_problem:
        return DOCK_FAULT
    return RECORDER_FAULT


def dock_pattern(broker_online: bool) -> LedPattern:
    """The dock-level LED (where one is fitted): green online, amber while offline."""
    return DOCK_ONLINE if broker_online else DOCK_OFFLINE


def offload_percent(progress: Progress) -> int | None:
    """Whole percent done by bytes, else by files; None when nothing is known yet."""
    if progress.bytes_total > 0:
        done, total = progress.bytes_done, progress.bytes_total
    elif progress.files_total > 0:
        done, total = progress.files_done, progress.files_total
    else:
        return None
    return max(0, min(100, done * 100 // total))
