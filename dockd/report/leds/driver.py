"""The one small interface every LED driver implements, and the ``none`` driver.

A failing LED must never stop an offload, so drivers do not raise for hardware faults:
``show`` returns False and the driver calls the injected ``on_fault(message)`` once per
outage (the daemon turns it into a dock alert) and ``on_recover(message)`` when the LED
works again. Drivers are called from one thread only (the LedController's worker).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from dockd.config.leds import LedTarget
from dockd.report.leds.pattern import LedPattern

log = logging.getLogger(__name__)

FaultCallback = Callable[[str], None]


class LedDriver(Protocol):
    """Shows patterns on LEDs; never raises for hardware faults."""

    name: str

    def show(self, target: LedTarget, pattern: LedPattern) -> bool:
        """Make ``target``'s LED show ``pattern``; True when it does, False on a fault."""
        ...

    def has_target(self, target: LedTarget) -> bool:
        """Whether this driver has an LED for ``target`` (a bay number or ``DOCK``)."""
        ...

    def maintain(self) -> None:
        """Periodic upkeep from the worker: reconnect, re-send state after a replug."""
        ...

    def close(self) -> None:
        """Release the hardware; the LEDs keep whatever they showed last."""
        ...


class NoneDriver:
    """``driver = "none"``: a dock without bay LEDs. Every target accepts every pattern."""

    name = "none"

    def show(self, target: LedTarget, pattern: LedPattern) -> bool:
        return True

    def has_target(self, target: LedTarget) -> bool:
        return True

    def maintain(self) -> None:
        return None

    def close(self) -> None:
        return None


class FaultLatch:
    """Reports a fault once per outage and the recovery once, per key."""

    def __init__(self, on_fault: FaultCallback, on_recover: FaultCallback | None) -> None:
        self._on_fault = on_fault
        self._on_recover = on_recover
        self._failing: dict[str, str] = {}

    def fault(self, key: str, message: str) -> None:
        """Record a failure of ``key``; the callback fires only on the first of an outage."""
        if key in self._failing:
            log.debug("LED fault persists: %s", message)
            return
        self._failing[key] = message
        log.warning("LED fault: %s", message)
        _call_safely(self._on_fault, message)

    def ok(self, key: str, message: str) -> None:
        """Record a success of ``key``; reports recovery if it was failing."""
        if self._failing.pop(key, None) is None:
            return
        log.info("LED recovered: %s", message)
        if self._on_recover is not None:
            _call_safely(self._on_recover, message)

    def failing(self) -> dict[str, str]:
        """Keys currently failing, with the first message of their outage."""
        return dict(self._failing)


def _call_safely(callback: FaultCallback, message: str) -> None:
    # The callback belongs to the daemon; a bug there must not kill the LED worker, but it
    # is a bug, so it is logged with its traceback rather than hidden.
    try:
        callback(message)
    except Exception:
        log.exception("LED fault callback failed for %r", message)
