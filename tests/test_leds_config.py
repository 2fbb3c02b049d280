"""The [leds] config section and building the driver it names."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dockd.config import load_config, parse_config
from dockd.config.leds import DOCK, LedsSection, SerialBoardSpec, SysfsLedSpec
from dockd.errors import ConfigError
from dockd.report.leds.build import build_led_driver
from dockd.report.leds.driver import NoneDriver
from dockd.report.leds.serial_board import SerialBoardDriver
from dockd.report.leds.sysfs import SysfsLedDriver


def leds(text: str) -> LedsSection:
    section = parse_config(tomllib.loads(text)).leds
    assert isinstance(section, LedsSection)
    return section


def test_default_is_no_leds() -> None:
    assert leds("") == LedsSection()
    assert isinstance(build_led_driver(LedsSection(), print), NoneDriver)


def test_sysfs_bays_and_dock(tmp_path: Path) -> None:
    path = tmp_path / "dockd.toml"
    path.write_text('''
[leds]
driver = "sysfs"
sysfs_root = "/tmp/leds"
dock = { led = "dock:status" }
[[leds.bay]]
bay = 1
led = "bay1:rgb:status"
[[leds.bay]]
bay = 2
red = "bay2:red"
green = "bay2:green"
amber = "bay2:amber"
''')
    section = load_config(path).leds
    assert section.driver == "sysfs"
    assert section.sysfs_root == Path("/tmp/leds")
    assert section.sysfs_leds == (
        SysfsLedSpec(1, multicolor="bay1:rgb:status"),
        SysfsLedSpec(2, red="bay2:red", green="bay2:green", amber="bay2:amber"),
        SysfsLedSpec(DOCK, multicolor="dock:status"),
    )
    driver = build_led_driver(section, print)
    assert isinstance(driver, SysfsLedDriver) and driver.root == Path("/tmp/leds")
    assert driver.has_target(2) and driver.has_target(DOCK) and not driver.has_target(3)


def test_serial_board() -> None:
    section = leds('''
[leds]
driver = "serial"
[leds.serial]
port = "/dev/serial/by-id/usb-board"
baud = 57600
ack_timeout_ms = 50
retries = 1
reconnect_interval_ms = 500
''')
    assert section.serial == SerialBoardSpec(Path("/dev/serial/by-id/usb-board"), 57600, 0.05,
                                             1, 0.5)
    driver = build_led_driver(section, print)
    assert isinstance(driver, SerialBoardDriver) and not driver.connected


@pytest.mark.parametrize("text,message", [
    ('[leds]\ndrive = "none"', "leds.drive: unknown key"),
    ('[leds]\ndriver = "gpio"', "leds.driver: 'gpio' is not one of"),
    ('[leds]\ndriver = 1', "leds.driver: expected a string, got an integer"),
    ('[leds]\ndriver = "sysfs"', "leds.bay: driver \"sysfs\" needs at least one"),
    ('[leds]\ndriver = "serial"', "leds.serial.port: driver \"serial\" needs"),
    ('[leds.serial]\nbaud = 1234', "leds.serial.baud: 1234 is not one of"),
    ('[leds.serial]\nbaud = "fast"', "leds.serial.baud: expected an integer, got a string"),
    ('[leds.serial]\nack_timeout_ms = 5', "leds.serial.ack_timeout_ms: 5 is below the minimum"),
    ('[leds.serial]\nretries = true', "leds.serial.retries: expected an integer, got a boolean"),
    ('[leds.serial]\nspeed = 9600', "leds.serial.speed: unknown key"),
    ('[[leds.bay]]\nled = "x"', "leds.bay[0].bay: missing"),
    ('[[leds.bay]]\nbay = 1\nled = "../../etc"', "leds.bay[0].led: '../../etc' is not valid"),
    ('[[leds.bay]]\nbay = 1\nled = ".."', "leds.bay[0].led: '..' is not valid"),
    ('[[leds.bay]]\nbay = 1\nled = "a"\nred = "b"', "leds.bay[0].red: give either led"),
    ('[[leds.bay]]\nbay = 1\nred = "b"', "leds.bay[0].green: missing"),
    ('[[leds.bay]]\nbay = 1\nled = "a"\ncolour = "red"', "leds.bay[0].colour: unknown key"),
    ('[[leds.bay]]\nbay = 1\nled = 5', "leds.bay[0].led: expected a string or nothing, got an"),
    ('[[leds.bay]]\nbay = 256\nled = "a"', "leds.bay[0].bay: 256 is above the maximum 255"),
    ('[[leds.bay]]\nbay = 1\nled = "a"\n[[leds.bay]]\nbay = 1\nled = "b"',
     "leds.bay[1].bay: bay 1 is listed twice"),
    ('[leds]\ndock = "dock:status"', "leds.dock: expected a table, got a string"),
    ('[leds.dock]\nled = "a"\nblink = true', "leds.dock.blink: unknown key"),
])
def test_bad_values_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(text))
    assert message in str(info.value)
    assert info.value.exit_code == 78
