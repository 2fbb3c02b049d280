"""LedController: status updates reach real LED files quickly, callers never wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockd.config.leds import DOCK, LedTarget, SysfsLedSpec
from dockd.dock.states import BayState, BayStatus, FaultReason, Progress
from dockd.report.leds.controller import LedController
from dockd.report.leds.pattern import (
    DOCK_OFFLINE,
    DOCK_ONLINE,
    READY,
    READY_OFFLINE,
    LedPattern,
)
from dockd.report.leds.sysfs import SysfsLedDriver
from dockd.sim.led_board import make_sysfs_led


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "sys" / "class" / "leds"
    for name in ("bay1:status", "bay2:status", "dock:status"):
        make_sysfs_led(root, name, channels=("red", "green", "blue"))
    return root


@pytest.fixture
def controller(root: Path) -> Iterator[LedController]:
    specs = [SysfsLedSpec(1, multicolor="bay1:status"), SysfsLedSpec(2, multicolor="bay2:status"),
             SysfsLedSpec(DOCK, multicolor="dock:status")]
    ctl = LedController(SysfsLedDriver(specs, lambda m: None, root=root), broker_online=True,
                        maintain_interval_s=0.05)
    ctl.start()
    yield ctl
    ctl.stop()


def read(root: Path, name: str) -> tuple[str, str, str]:
    d = root / name
    return ((d / "multi_intensity").read_text().strip(), (d / "trigger").read_text().strip(),
            (d / "brightness").read_text().strip())


def bay(n: int, state: BayState, **kw: object) -> BayStatus:
    return BayStatus(bay=n, label=f"Bay {n}", state=state, **kw)  # type: ignore[arg-type]


def test_state_changes_reach_the_leds(controller: LedController, root: Path) -> None:
    controller.bay_changed(bay(1, BayState.READY))
    controller.bay_changed(bay(2, BayState.FAULT, fault=FaultReason.STORE_FULL))
    assert controller.wait_idle(2)
    assert read(root, "bay1:status") == ("0 255 0", "none", "255")
    assert read(root, "bay2:status") == ("255 0 0", "timer", "255")
    assert (root / "bay2:status" / "delay_on").read_text() == "150\n"
    assert read(root, "dock:status") == ("0 255 0", "none", "255")
    states = controller.states()
    assert states[1].pattern == READY and states[1].shown
    assert states[DOCK].pattern == DOCK_ONLINE and states[DOCK].shown


def test_broker_offline_changes_dock_led_and_ready_bays_only(
        controller: LedController, root: Path) -> None:
    controller.bay_changed(bay(1, BayState.READY))
    controller.bay_changed(bay(2, BayState.CHECKING))
    assert controller.wait_idle(2)
    before = read(root, "bay2:status")
    controller.set_broker_online(False)
    assert controller.wait_idle(2)
    assert controller.states()[1].pattern == READY_OFFLINE
    assert (root / "bay1:status" / "delay_off").read_text() == "150\n"
    assert controller.states()[DOCK].pattern == DOCK_OFFLINE
    assert read(root, "dock:status")[0] == "255 191 0"  # amber
    assert read(root, "bay2:status") == before  # checking still shows checking


class SlowDriver:
    """A board that takes 50 ms per command; records what it was asked to show."""

    name = "slow"

    def __init__(self) -> None:
        self.shown: list[tuple[LedTarget, LedPattern]] = []
        self.release = threading.Event()

    def show(self, target: LedTarget, pattern: LedPattern) -> bool:
        time.sleep(0.05)
        self.shown.append((target, pattern))
        return True

    def has_target(self, target: LedTarget) -> bool:
        return target != DOCK

    def maintain(self) -> None:
        return None

    def close(self) -> None:
        return None


def test_callers_never_wait_and_bursts_collapse_to_the_latest() -> None:
    driver = SlowDriver()
    ctl = LedController(driver, broker_online=True)
    ctl.start()
    try:
        started = time.monotonic()
        for i in range(200):
            ctl.bay_changed(bay(1, BayState.OFFLOADING, progress=Progress(bytes_done=i,
                                                                     bytes_total=199)))
        # Waiting for the driver would take 200 x 50 ms = 10 s; the mailbox takes microseconds
        # (the bound leaves room for a loaded CI machine).
        assert time.monotonic() - started < 0.5
        assert ctl.wait_idle(5)
        assert driver.shown[-1][1].progress == 100
        assert len(driver.shown) < 10
        assert all(target != DOCK for target, _ in driver.shown)
    finally:
        ctl.stop()


class BuggyDriver(SlowDriver):
    def show(self, target: LedTarget, pattern: LedPattern) -> bool:
        if target == 1:
            raise RuntimeError("driver bug")
        return super().show(target, pattern)


def test_a_driver_bug_is_logged_and_other_bays_carry_on(
        caplog: pytest.LogCaptureFixture) -> None:
    driver = BuggyDriver()
    ctl = LedController(driver, broker_online=True)
    ctl.start()
    try:
        ctl.bay_changed(bay(1, BayState.READY))
        ctl.bay_changed(bay(2, BayState.READY))
        assert ctl.wait_idle(2)
        assert driver.shown == [(2, READY)]
        assert ctl.states()[1].shown is False
        assert "LED driver slow.show failed" in caplog.text and "driver bug" in caplog.text
    finally:
        ctl.stop()


def test_stop_applies_what_is_pending() -> None:
    driver = SlowDriver()
    ctl = LedController(driver, broker_online=True)
    ctl.start()
    ctl.bay_changed(bay(1, BayState.READY))
    ctl.bay_changed(bay(2, BayState.READY))
    ctl.stop()
    assert {target for target, _ in driver.shown} == {1, 2}


def test_maintain_runs_on_its_own_beat_under_a_stream_of_updates() -> None:
    calls: list[float] = []

    class Counting(SlowDriver):
        def show(self, target: LedTarget, pattern: LedPattern) -> bool:
            return True

        def maintain(self) -> None:
            calls.append(time.monotonic())

    ctl = LedController(Counting(), broker_online=True, maintain_interval_s=0.02)
    ctl.start()
    try:
        end = time.monotonic() + 0.3
        i = 0
        while time.monotonic() < end:
            i += 1
            ctl.bay_changed(bay(1, BayState.OFFLOADING, progress=Progress(files_done=i % 100,
                                                                     files_total=100)))
            time.sleep(0.001)
    finally:
        ctl.stop()
    assert len(calls) >= 5
