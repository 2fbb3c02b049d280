"""Turns bay status updates into LED patterns and drives them from a worker thread.

Callers (the bay sessions, the MQTT link) only compute a pattern and leave it in a
"latest wins" mailbox; a slow or failing board therefore never holds up an offload, and a
burst of progress updates for one bay collapses into the newest pattern.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from dockd.clock import Clock, SystemClock
from dockd.config.leds import DOCK, LedTarget
from dockd.dock.reporting import DockInfo, RecorderChecked
from dockd.dock.states import BayStatus
from dockd.report.leds.driver import LedDriver
from dockd.report.leds.pattern import LedPattern, dock_pattern, led_pattern

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class LedState:
    """What a target should show, and whether the driver last confirmed it does."""

    pattern: LedPattern
    shown: bool


class LedController:
    """Owns one driver; every call returns at once (a :class:`~dockd.dock.reporting.Reporter`)."""

    def __init__(self, driver: LedDriver, broker_online: bool = False,
                 maintain_interval_s: float = 0.5, clock: Clock | None = None) -> None:
        self.driver = driver
        self._clock = clock or SystemClock()
        self._maintain_interval_s = maintain_interval_s
        self._cond = threading.Condition()
        self._broker_online = broker_online
        self._statuses: dict[int, BayStatus] = {}
        self._desired: dict[LedTarget, LedPattern] = {DOCK: dock_pattern(broker_online)}
        self._pending: dict[LedTarget, LedPattern] = dict(self._desired)
        self._states: dict[LedTarget, LedState] = {}
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="dockd-leds", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Apply what is pending, then stop the worker and close the driver."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("LED worker did not stop within %.1f s", timeout_s)
                return
            self._thread = None
        self.driver.close()

    def bay_changed(self, status: BayStatus) -> None:
        """A bay's new status; its LED follows as soon as the worker gets to it."""
        with self._cond:
            self._statuses[status.bay] = status
            self._want(status.bay, led_pattern(status, self._broker_online))

    def dock_changed(self, info: DockInfo) -> None:
        """The dock line: the dock LED shows whether the broker is reachable (when MQTT is on)."""
        if info.broker is not None:
            self.set_broker_online(info.broker.connected)

    def recorder_checked(self, checked: RecorderChecked) -> None:
        """Nothing to show: the bay's state already says whether its checks passed."""

    def records_committed(self) -> None:
        """Nothing to show."""

    def set_broker_online(self, online: bool) -> None:
        """The MQTT link came up or went down: the dock LED and ready bays change."""
        with self._cond:
            if online == self._broker_online:
                return
            self._broker_online = online
            self._want(DOCK, dock_pattern(online))
            for bay, status in self._statuses.items():
                self._want(bay, led_pattern(status, online))

    def states(self) -> dict[LedTarget, LedState]:
        """Per target: the wanted pattern and whether the driver shows it (for the console)."""
        with self._cond:
            result = dict(self._states)
            for target, pattern in self._desired.items():
                if target in self._pending or target not in result:
                    result[target] = LedState(pattern, False)
            return result

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until every wanted pattern has been handed to the driver (tests, bench)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout_s)

    # -- worker --------------------------------------------------------------------------

    def _want(self, target: LedTarget, pattern: LedPattern) -> None:
        if self._desired.get(target) == pattern:
            return
        self._desired[target] = pattern
        self._pending[target] = pattern
        self._cond.notify_all()

    def _run(self) -> None:
        next_maintain = self._clock.monotonic() + self._maintain_interval_s
        while True:
            with self._cond:
                if not self._pending and not self._stopping:
                    self._cond.wait(max(0.0, next_maintain - self._clock.monotonic()))
                batch, self._pending = self._pending, {}
                stopping = self._stopping
                self._busy = bool(batch)
            if batch:
                self._apply(batch)
            # Upkeep runs on its own beat, so a stream of progress updates cannot starve
            # the reconnect of an unplugged board.
            if self._clock.monotonic() >= next_maintain:
                self._call("maintain", self.driver.maintain, None)
                next_maintain = self._clock.monotonic() + self._maintain_interval_s
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                if stopping and not self._pending:
                    return

    def _apply(self, batch: dict[LedTarget, LedPattern]) -> None:
        for target, pattern in batch.items():
            if not self.driver.has_target(target):
                continue
            shown = self._call("show", functools.partial(self.driver.show, target, pattern),
                               False)
            with self._cond:
                self._states[target] = LedState(pattern, shown)

    def _call(self, what: str, fn: Callable[[], T], fallback: T) -> T:
        # Drivers report hardware faults themselves; an exception here is a driver bug.
        # It is logged with its traceback, and the worker lives on so the other bays' LEDs
        # (and the offload, which never waits for us) carry on.
        try:
            return fn()
        except Exception:
            log.exception("LED driver %s.%s failed", self.driver.name, what)
            return fallback
