"""The sysfs LED driver against a directory laid out as the kernel's LED class.

Failures use what the kernel really answers, not mocks:
* EIO: the attribute is a symlink to ``/proc/self/fd/N`` of a pty slave whose master has
  been closed; the tty layer refuses to open it with EIO (pty_open, TTY_OTHER_CLOSED),
  the errno an LED behind a dead I2C/USB link gives.
* EINVAL: ``trigger`` is a symlink to ``/proc/<pid>/oom_score_adj`` of a sleeping child;
  the kernel parses what we write as an integer and rejects ``timer`` with EINVAL, as a
  kernel without ledtrig-timer rejects the trigger name.
* ENOENT: the LED directory disappears (a USB LED unplugged).
A read-only file does not work for this: we run as root, and root writes it anyway.
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockd.config.leds import DOCK, SysfsLedSpec
from dockd.report.leds.pattern import (
    CHECKING,
    DOCK_FAULT,
    LED_OFF,
    READY,
    Colour,
    LedPattern,
    Mode,
)
from dockd.report.leds.sysfs import SysfsLedDriver
from dockd.sim.led_board import make_sysfs_led

AMBER_PULSE = LedPattern(Colour.AMBER, Mode.PULSE, 1500, 500, 40)


class Faults:
    def __init__(self) -> None:
        self.faults: list[str] = []
        self.recoveries: list[str] = []


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "sys" / "class" / "leds"


@pytest.fixture
def faults() -> Faults:
    return Faults()


def driver(root: Path, faults: Faults, *specs: SysfsLedSpec) -> SysfsLedDriver:
    return SysfsLedDriver(specs, faults.faults.append, faults.recoveries.append, root=root)


def attr(root: Path, name: str, attribute: str) -> str:
    return (root / name / attribute).read_text()


def mono_bay(root: Path, bay: int = 1, amber: bool = False,
             max_brightness: int = 1) -> SysfsLedSpec:
    for colour in ("red", "green", "amber") if amber else ("red", "green"):
        make_sysfs_led(root, f"bay{bay}:{colour}", max_brightness=max_brightness)
    return SysfsLedSpec(bay, red=f"bay{bay}:red", green=f"bay{bay}:green",
                        amber=f"bay{bay}:amber" if amber else None)


def test_layout_is_the_kernels(root: Path) -> None:
    device = make_sysfs_led(root, "bay1:status", channels=("red", "green", "blue"))
    assert (root / "bay1:status").is_symlink()
    assert (root / "bay1:status").resolve() == device.resolve()
    assert attr(root, "bay1:status", "multi_index") == "red green blue\n"
    assert "[none]" in attr(root, "bay1:status", "trigger")
    assert (root / "bay1:status" / "subsystem").resolve() == root.resolve()


def test_steady_green_on_separate_leds(root: Path, faults: Faults) -> None:
    spec = mono_bay(root, max_brightness=1)
    assert driver(root, faults, spec).show(1, READY)
    assert attr(root, "bay1:green", "trigger") == "none\n"
    assert attr(root, "bay1:green", "brightness") == "1\n"
    assert attr(root, "bay1:red", "brightness") == "0\n"
    assert faults.faults == []


def test_blink_uses_the_timer_trigger_in_milliseconds(root: Path, faults: Faults) -> None:
    spec = mono_bay(root, max_brightness=255)
    assert driver(root, faults, spec).show(1, DOCK_FAULT)
    assert attr(root, "bay1:red", "trigger") == "timer\n"
    assert attr(root, "bay1:red", "delay_on") == "150\n"
    assert attr(root, "bay1:red", "delay_off") == "150\n"
    assert attr(root, "bay1:red", "brightness") == "255\n"
    assert attr(root, "bay1:green", "brightness") == "0\n"


def test_amber_without_an_amber_led_lights_red_and_green(root: Path, faults: Faults) -> None:
    spec = mono_bay(root)
    assert driver(root, faults, spec).show(1, CHECKING)
    for colour in ("red", "green"):
        assert attr(root, f"bay1:{colour}", "trigger") == "timer\n"
        assert attr(root, f"bay1:{colour}", "delay_on") == "500\n"


def test_amber_led_is_used_alone_when_fitted(root: Path, faults: Faults) -> None:
    spec = mono_bay(root, amber=True)
    drv = driver(root, faults, spec)
    assert drv.show(1, AMBER_PULSE)
    assert attr(root, "bay1:amber", "delay_on") == "1500\n"
    assert attr(root, "bay1:red", "brightness") == "0\n"
    assert attr(root, "bay1:green", "brightness") == "0\n"
    assert drv.show(1, LED_OFF)
    assert attr(root, "bay1:amber", "brightness") == "0\n"


def test_multicolor_rgb_mixes_amber(root: Path, faults: Faults) -> None:
    make_sysfs_led(root, "bay2:status", max_brightness=200, channels=("green", "red", "blue"))
    drv = driver(root, faults, SysfsLedSpec(2, multicolor="bay2:status"))
    assert drv.show(2, CHECKING)
    # Order follows multi_index; amber = #FFBF00 scaled to max_brightness.
    assert attr(root, "bay2:status", "multi_intensity") == "150 200 0\n"
    assert attr(root, "bay2:status", "trigger") == "timer\n"
    assert drv.show(2, READY)
    assert attr(root, "bay2:status", "multi_intensity") == "200 0 0\n"
    assert attr(root, "bay2:status", "trigger") == "none\n"
    assert attr(root, "bay2:status", "brightness") == "200\n"


def test_multicolor_amber_channel_and_max_intensity(root: Path, faults: Faults) -> None:
    make_sysfs_led(root, "dock:status", max_brightness=63, channels=("red", "green", "amber"),
                   max_intensity=True)
    drv = driver(root, faults, SysfsLedSpec(DOCK, multicolor="dock:status"))
    assert drv.show(DOCK, LedPattern(Colour.AMBER, Mode.STEADY))
    assert attr(root, "dock:status", "multi_intensity") == "0 0 63\n"


def test_off_writes_only_brightness_zero(root: Path, faults: Faults) -> None:
    make_sysfs_led(root, "bay3:status", channels=("red", "green", "blue"))
    drv = driver(root, faults, SysfsLedSpec(3, multicolor="bay3:status"))
    assert drv.show(3, READY)
    assert drv.show(3, LED_OFF)
    assert attr(root, "bay3:status", "brightness") == "0\n"  # also clears the trigger
    assert attr(root, "bay3:status", "multi_intensity") == "0 255 0\n"


def test_unconfigured_bay_is_a_fault_not_an_exception(root: Path, faults: Faults) -> None:
    drv = driver(root, faults, mono_bay(root))
    assert not drv.has_target(4)
    assert drv.show(4, READY) is False
    assert faults.faults == ["bay 4 LED: no LED configured in [leds]"]


@pytest.fixture
def dead_tty() -> Iterator[int]:
    master, slave = pty.openpty()
    os.close(master)
    yield slave
    os.close(slave)


def test_eio_is_reported_once_per_outage_and_recovery_too(
        root: Path, faults: Faults, dead_tty: int) -> None:
    spec = mono_bay(root)
    brightness = root / "bay1:green" / "brightness"
    saved = brightness.read_text()
    brightness.unlink()
    brightness.symlink_to(f"/proc/self/fd/{dead_tty}")
    drv = driver(root, faults, spec)
    assert drv.show(1, READY) is False
    assert drv.show(1, READY) is False
    assert len(faults.faults) == 1
    message = faults.faults[0]
    assert "bay 1 LED" in message and "EIO" in message and "brightness" in message
    assert "did not respond" in message
    brightness.unlink()
    brightness.write_text(saved)  # the LED answers again
    assert drv.show(1, READY) is True
    assert attr(root, "bay1:green", "brightness") == "1\n"
    assert faults.recoveries == ["bay 1 LED: LED works again"]
    assert drv.failing() == {}


@pytest.fixture
def child_pid() -> Iterator[int]:
    child = subprocess.Popen(["sleep", "60"])
    yield child.pid
    child.kill()
    child.wait()


def test_einval_on_timer_shows_steady_and_reports(
        root: Path, faults: Faults, child_pid: int) -> None:
    spec = mono_bay(root, max_brightness=255)
    trigger = root / "bay1:red" / "trigger"
    trigger.unlink()
    trigger.symlink_to(f"/proc/{child_pid}/oom_score_adj")
    drv = driver(root, faults, spec)
    assert drv.show(1, DOCK_FAULT) is False
    assert attr(root, "bay1:red", "brightness") == "255\n"  # steady red, not dark
    assert attr(root, "bay1:red", "delay_on") == "500\n"  # untouched
    assert len(faults.faults) == 1
    assert "EINVAL" in faults.faults[0] and "steady" in faults.faults[0]
    assert "'timer'" in faults.faults[0]


def test_unplugged_led_gives_enoent_and_comes_back(root: Path, faults: Faults) -> None:
    make_sysfs_led(root, "usb-bay1:status", max_brightness=255, channels=("red", "green", "blue"))
    drv = driver(root, faults, SysfsLedSpec(1, multicolor="usb-bay1:status"))
    assert drv.show(1, READY)
    device = (root / "usb-bay1:status").resolve()
    (root / "usb-bay1:status").unlink()
    shutil.rmtree(device)
    assert drv.show(1, CHECKING) is False
    assert "ENOENT" in faults.faults[0] and "check the names in [leds]" in faults.faults[0]
    # Plugged back with another max_brightness: the driver reads the limits afresh.
    make_sysfs_led(root, "usb-bay1:status", max_brightness=15, channels=("red", "green", "blue"))
    assert drv.show(1, READY)
    assert attr(root, "usb-bay1:status", "multi_intensity") == "0 15 0\n"
    assert attr(root, "usb-bay1:status", "brightness") == "15\n"
    assert len(faults.recoveries) == 1


def test_missing_delay_files_after_timer_is_a_fault(root: Path, faults: Faults) -> None:
    make_sysfs_led(root, "bay1:red", timer_files=False)
    make_sysfs_led(root, "bay1:green", timer_files=False)
    drv = driver(root, faults, SysfsLedSpec(1, red="bay1:red", green="bay1:green"))
    assert drv.show(1, DOCK_FAULT) is False
    assert "delay_on" in faults.faults[0]
    # Never creates files in sysfs: a missing attribute stays missing.
    assert not (root / "bay1:red" / "delay_on").exists()


@pytest.mark.parametrize("content,expected", [("abc\n", "not a number"),
                                              ("0\n", "cannot light")])
def test_bad_max_brightness_is_a_fault(root: Path, faults: Faults, content: str,
                                       expected: str) -> None:
    spec = mono_bay(root)
    path = root / "bay1:green" / "max_brightness"
    path.chmod(0o644)
    path.write_text(content)
    assert driver(root, faults, spec).show(1, READY) is False
    assert expected in faults.faults[0]


def test_bad_multi_max_intensity_is_a_fault(root: Path, faults: Faults) -> None:
    make_sysfs_led(root, "bay1:status", channels=("red", "green"), max_intensity=True)
    (root / "bay1:status" / "multi_max_intensity").write_text("255\n")
    drv = driver(root, faults, SysfsLedSpec(1, multicolor="bay1:status"))
    assert drv.show(1, READY) is False
    assert "multi_max_intensity" in faults.faults[0]


def test_attribute_that_is_a_fifo_fails_at_once(root: Path, faults: Faults) -> None:
    spec = mono_bay(root)
    path = root / "bay1:green" / "trigger"
    path.unlink()
    os.mkfifo(path)  # nobody reads it: O_NONBLOCK turns a hang into ENXIO
    assert driver(root, faults, spec).show(1, READY) is False
    assert "ENXIO" in faults.faults[0]


def test_a_failing_fault_callback_does_not_break_the_driver(
        root: Path, caplog: pytest.LogCaptureFixture) -> None:
    def broken(message: str) -> None:
        raise RuntimeError("alert queue full")

    drv = SysfsLedDriver([mono_bay(root)], broken, root=root)
    assert drv.show(9, READY) is False
    assert "LED fault callback failed" in caplog.text
    assert drv.show(1, READY) is True
