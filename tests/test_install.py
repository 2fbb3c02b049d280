"""`dockd install` into a scratch root, and the shipped example config."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

from dockd.config import load_config
from tests.conftest import REPO_ROOT, run_dockd


def test_example_config_is_valid_and_names_every_section() -> None:
    config = load_config(REPO_ROOT / "config" / "dockd.toml")
    settings = config.daemon
    assert [b.port for b in settings.bays] == ["1-1.1", "1-1.2"]
    assert {m.driver for m in settings.models} == {"amba", "msc"}
    # nothing is offered that no recorder speaks (the simulator's test framing)
    assert "test-serial" not in (REPO_ROOT / "config" / "dockd.toml").read_text()


def test_example_config_documents_records_homeassistant_archive_and_the_two_line_credentials(
        tmp_path: Path) -> None:
    text = (REPO_ROOT / "config" / "dockd.toml").read_text()
    config = load_config(REPO_ROOT / "config" / "dockd.toml")
    assert config.archive is None  # commented out: a dock without [archive] has no archive
    assert config.records.retention_days == 90 and not config.mqtt.homeassistant.enabled
    assert "[mqtt.homeassistant]" in text and "[records]" in text
    # the commented [archive] block is a working section once uncommented
    lines, inside = [], False
    for line in text.splitlines():
        inside = inside or line == "# [archive]"
        lines.append(line[2:] if (inside and line.startswith("# ") and "=" in line) or line == "# [archive]"
                     else line)
    uncommented = tmp_path / "dockd.toml"
    uncommented.write_text("\n".join(lines) + "\n")
    archive = load_config(uncommented).archive
    assert archive is not None and archive.bucket == "dockd-evidence"
    # the MQTT credentials file the example describes is the one the code reads
    from dockd.report.mqtt.credentials import read_credentials

    described = next(line for line in text.splitlines() if "credentials_file" in line and "mqtt" in line)
    assert "line 1 the username, line 2 the password" in described
    creds = tmp_path / "mqtt.credentials"
    creds.write_text("dock-01\ns3cret:with:colons\n")
    creds.chmod(0o600)
    assert read_credentials(creds).username == "dock-01"
    assert read_credentials(creds).password == "s3cret:with:colons"


def test_install_writes_unit_rules_and_config_without_overwriting(tmp_path: Path) -> None:
    first = run_dockd(["install", "--root", tmp_path, "--no-reload"])
    assert first.returncode == 0, first.stderr
    unit = tmp_path / "etc/systemd/system/dockd.service"
    parser = _unit(unit)
    assert parser["Service"]["Type"] == "notify"
    assert parser["Service"]["ExecStart"].split()[0].endswith("/dockd")
    assert Path(parser["Service"]["ExecStart"].split()[0]).exists()
    assert (tmp_path / "etc/udev/rules.d/70-dockd-recorders.rules").read_text().count("dockd") > 3
    assert parser["Service"]["Group"] == "dockd"
    # users and groups for the first boot of an image (systemd-sysusers), /run/dockd at boot
    sysusers = (tmp_path / "etc/sysusers.d/dockd.conf").read_text().splitlines()
    entries = [line.split()[:2] for line in sysusers if line and not line.startswith("#")]
    assert entries == [["u", "dockd"], ["g", "dockd-admin"], ["g", "dockd-audit"]]
    tmpfiles = (tmp_path / "etc/tmpfiles.d/dockd.conf").read_text()
    assert "d /run/dockd 0750 root dockd -" in tmpfiles.splitlines()
    kiosk = _unit(tmp_path / "etc/systemd/system/dockd-console.service")
    assert kiosk["Service"]["ExecStart"].split()[1:3] == ["console", "--kiosk"]
    assert kiosk["Service"]["TTYPath"] == "/dev/tty1" and kiosk["Service"]["User"] == "dockd"
    assert kiosk["Unit"]["Conflicts"] == "getty@tty1.service"
    for job, command in (("archive", ["archive", "sync"]), ("prune", ["prune"])):
        timer = _unit(tmp_path / f"etc/systemd/system/dockd-{job}.timer")
        assert timer["Timer"]["Unit"] == f"dockd-{job}.service"
        assert timer["Install"]["WantedBy"] == "timers.target"
        service = _unit(tmp_path / f"etc/systemd/system/dockd-{job}.service")
        argv = service["Service"]["ExecStart"].split()
        assert service["Service"]["Type"] == "oneshot"
        assert Path(argv[0]).exists() and argv[0] == parser["Service"]["ExecStart"].split()[0]
        assert argv[1:] == [*command, "--config", "/etc/dockd/dockd.toml"]
        # the command the timer runs is one this dockd has
        assert run_dockd([*command, "--help"]).returncode == 0
    # systemd's own checker accepts every unit as installed (ExecStart found, keys known)
    for unit_file in sorted((tmp_path / "etc/systemd/system").iterdir()):
        checked = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit_file)],
                                 capture_output=True, text=True)
        assert checked.returncode == 0 and not checked.stderr, (unit_file.name, checked.stderr)
    config = tmp_path / "etc/dockd/dockd.toml"
    config.write_text("[dock]\nid = \"mine\"\n")
    second = run_dockd(["install", "--root", tmp_path, "--no-reload"])
    assert second.returncode == 0
    assert config.read_text() == "[dock]\nid = \"mine\"\n"
    assert "kept existing" in second.stdout


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(path.read_text())
    return parser


def test_install_into_a_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    result = run_dockd(["install", "--root", tmp_path / "nope", "--no-reload"])
    assert result.returncode == 2
    assert "not a directory" in result.stderr
