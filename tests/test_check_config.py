"""``dockd check-config``: every problem of a config at once (the file's and the machine's).

The bays' USB ports are looked up in a sysfs tree made here with the layout the kernel
gives hub ports (``/sys/bus/usb/devices/<hub>/<hub>:1.0/<hub>-port<n>``): the one fake, for
hardware this machine does not have.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockd.commands.check_config import hub_port, usb_port_exists
from tests.conftest import run_dockd

NOBODY = 65534


@pytest.fixture
def place() -> Iterator[Path]:
    """A directory other users can enter (the unreadable-file case runs as nobody)."""
    path = Path(tempfile.mkdtemp(prefix="dockd-cc-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_sysfs(root: Path, hubs: dict[str, int]) -> Path:
    """Hubs and their port counts, as the kernel lists them (root hubs are ``usbN``)."""
    devices = root / "sys" / "bus" / "usb" / "devices"
    for hub, ports in hubs.items():
        interface = f"{hub.removeprefix('usb')}-0:1.0" if hub.startswith("usb") else f"{hub}:1.0"
        for n in range(1, ports + 1):
            (devices / hub / interface / f"{hub}-port{n}").mkdir(parents=True)
    return root / "sys"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_every_problem_is_listed_in_one_run(place: Path) -> None:
    sysfs = make_sysfs(place, {"usb1": 2, "1-1": 4})
    write(place / "gat947.password", "123456\n", 0o644)
    unreadable_ca = write(place / "ca.pem", "-----BEGIN CERTIFICATE-----\n", 0o000)
    config = write(place / "dockd.toml", f"""
[dock]
id = "dock-01"
store_dir = "{place}/store"
colour = "blue"

[health]
battery_min_percent = 500

[daemon]
[[daemon.bays]]
port = "1-1.2"
number = 1
label = "Bay 1"
[[daemon.bays]]
port = "1-1.7"
number = 2
label = "Bay 2"
[[daemon.bays]]
port = "3-1"
number = 3
label = "Bay 3"

[[daemon.models]]
name = "gat947-dv16"
vendor_id = "2ca3"
product_id = "0947"
driver = "gat947"
control = "sg"
password_file = "{place}/gat947.password"

[[daemon.models]]
name = "ambarella-a7"
vendor_id = "4255"
product_id = "0001"
driver = "amba"
control = "usb"
password_file = "{place}/amba.password"

[mqtt]
enabled = true
broker = "mqtts://broker.example:8883"
credentials_file = "{place}/mqtt.credentials"
ca_file = "{unreadable_ca}"

[archive]
endpoint_url = "https://s3.example"
bucket = "dockd-evidence"
credentials_file = "{place}/archive-credentials.toml"
""", 0o644)
    result = run_dockd(["check-config", "--config", config, "--sys-root", sysfs], user=NOBODY)
    assert result.returncode == 78, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == f"dockd: {config}: 8 problem(s)"
    problems = [line.removeprefix("dockd: config: ") for line in lines[:-1]]
    expected = ["dock.colour: unknown key", "health.battery_min_percent: 500",
                f"daemon.models[1].password_file: {place}/amba.password does not exist",
                f"mqtt.credentials_file: {place}/mqtt.credentials does not exist",
                f"mqtt.ca_file: {unreadable_ca} is not readable by this user",
                f"archive.credentials_file: archive credentials file {place}/archive-credentials.toml",
                "daemon.bays[1].port: '1-1.7' (bay 2) is not a USB port of this dock (no 1-1-port7",
                "daemon.bays[2].port: '3-1' (bay 3) is not a USB port of this dock (no usb3-port1"]
    for start in expected:
        assert sum(p.startswith(start) for p in problems) == 1, (start, problems)
    assert len(problems) == len(expected)
    # what is right is not reported: bay 1's port, the readable GA/T 947 password
    assert not [p for p in problems if "bays[0]" in p or "models[0]" in p]


def test_a_config_whose_files_and_ports_are_there_is_ok(place: Path) -> None:
    sysfs = make_sysfs(place, {"usb1": 1, "1-1": 2})
    creds = write(place / "mqtt.credentials", "dock-01\nsecret\n")
    config = write(place / "dockd.toml", f"""
[dock]
store_dir = "{place}/store"
[[daemon.bays]]
port = "1-1.2"
number = 1
label = "Bay 1"
[[daemon.bays]]
port = "1-1"
number = 2
label = "Bay 2"
[mqtt]
enabled = true
broker = "mqtt://127.0.0.1:1883"
credentials_file = "{creds}"
""", 0o644)
    result = run_dockd(["check-config", "--config", config, "--sys-root", sysfs])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{config}: OK"
    as_json = run_dockd(["check-config", "--config", config, "--sys-root", sysfs, "--json"])
    assert json.loads(as_json.stdout) == {"config": str(config), "ok": True, "problems": []}


def test_json_lists_the_problems_and_a_simulated_dock_has_no_ports_to_check(place: Path) -> None:
    config = write(place / "dockd.toml", f"""
[dock]
store_dir = "{place}/store"
[daemon]
device_source = "spool"
[[daemon.bays]]
port = "9-9.9"
number = 1
label = "Bay 1"
[mqtt]
enabled = true
credentials_file = "{place}/nope"
""", 0o644)
    result = run_dockd(["check-config", "--config", config, "--json"])
    assert result.returncode == 78
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["problems"] == [f"mqtt.credentials_file: {place}/nope does not exist"]


def test_a_config_that_is_not_toml_is_one_line_exit_78(place: Path) -> None:
    config = write(place / "dockd.toml", "[dock\n", 0o644)
    result = run_dockd(["check-config", "--config", config])
    assert result.returncode == 78
    assert result.stderr.count("\n") == 1 and "not valid TOML" in result.stderr


def test_port_paths_against_real_hub_layouts(tmp_path: Path) -> None:
    sysfs = make_sysfs(tmp_path, {"usb2": 4, "2-3": 7, "2-3.4": 2})
    assert [hub_port(p) for p in ("2-3", "2-3.4", "2-3.4.1")] == [("usb2", 3), ("2-3", 4), ("2-3.4", 1)]
    assert usb_port_exists("2-3", sysfs) and usb_port_exists("2-3.7", sysfs)
    assert usb_port_exists("2-3.4.2", sysfs)
    assert not usb_port_exists("2-5", sysfs) and not usb_port_exists("2-3.8", sysfs)
    assert not usb_port_exists("1-3", sysfs) and not usb_port_exists("2-3.4.3", sysfs)


@given(st.text(max_size=40))
def test_any_port_text_is_a_path_or_none_never_an_exception(text: str) -> None:
    node = hub_port(text)
    assert node is None or (node[1] >= 0 and "/" not in node[0])
    assert usb_port_exists(text, Path("/nonexistent")) is False


@given(st.integers(1, 99), st.lists(st.integers(1, 15), min_size=1, max_size=6))
def test_every_port_path_names_its_parent_hub(bus: int, ports: list[int]) -> None:
    path = f"{bus}-{'.'.join(map(str, ports))}"
    hub, number = hub_port(path) or ("", -1)
    assert number == ports[-1]
    assert hub == (f"usb{bus}" if len(ports) == 1 else f"{bus}-{'.'.join(map(str, ports[:-1]))}")
    assert os.sep not in hub


def test_a_missing_pdf_font_is_named_with_its_package(place: Path) -> None:
    config = write(place / "dockd.toml", f'[dock]\nstore_dir = "{place}/store"\n'
                   f'[records]\npdf_font = "{place}/no-font.ttc"\n', 0o644)
    result = run_dockd(["check-config", "--config", config])
    assert result.returncode == 78, result.stderr
    assert f"records.pdf_font: {place}/no-font.ttc is missing or unreadable" in result.stderr
    assert "fonts-wqy-zenhei" in result.stderr


def test_an_archive_without_credentials_file_is_one_problem(place: Path) -> None:
    config = write(place / "dockd.toml", f'[dock]\nstore_dir = "{place}/store"\n[archive]\n'
                   'endpoint_url = "https://s3.example.internal"\nbucket = "evidence"\n', 0o644)
    result = run_dockd(["check-config", "--config", config, "--json"])
    assert result.returncode == 78, result.stderr
    problems = [p for p in json.loads(result.stdout)["problems"] if p.startswith("archive.")]
    assert len(problems) == 1 and problems[0].startswith("archive.credentials_file: missing"), \
        problems
