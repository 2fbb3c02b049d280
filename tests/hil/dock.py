"""The dock in the HIL guest: dockd running with its udev rules, a store disk and a config,
and the helpers that ask it what it knows. One guest serves every `dockd run` scenario of
tests/hil (tests/hil/conftest.py boots it); this module says how it is set up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .harness import REPO_ROOT, Guest, GuestProcess, HilError, HilTimeout

DOCKD = str(REPO_ROOT / ".venv" / "bin" / "dockd")
CONFIG = "/etc/dockd/dockd.toml"
STORE = "/var/lib/dockd"
MOUNT_ROOT = "/run/dockd/bays"
STATUS_SOCKET = "/run/dockd/status.sock"
PASSWORD = "123456"
AMBA = dict(vendor_id=0x4255, product_id=0x0001, storage_vendor_id=0x4255, storage_product_id=0x0001)
GAT947 = dict(vendor_id=0x2CA3, product_id=0x0947, storage_vendor_id=0x2CA3,
              storage_product_id=0x0948)
# The public notes give no USB IDs for DV16 recorders (the host finds them by INQUIRY): these
# are the test's own, distinct from the CDC-ACM gat947 ones.
DV16 = dict(vendor_id=0x2CA3, product_id=0x0A16, storage_vendor_id=0x2CA3,
            storage_product_id=0x0A17)
BAY_AMBA, BAY_GAT, BAY_MSC = 1, 2, 3
MSC_ROOT_PORT = 3  # hub at 1-3, disk at 1-3.1: bay 3 is port 1-3

# What the HIL runs measured (seconds), printed as "HIL timings" when the guest shuts down.
TIMINGS: dict[str, float] = {}


def config_text(*, enrolled_only: bool = False, storage_wait_s: int = 90) -> str:
    """dockd's config in the guest: three bays, the four models of the scenarios; the
    storage-identity scenarios turn `enrolled_only` on and wait less for a disk."""
    return f"""
[dock]
id = "hil-dock"
site = "hil"
store_dir = "{STORE}"

[ingest]
store_reserve_bytes = 0

[daemon]
device_source = "udev"
mounter = "mount"
mount_root = "{MOUNT_ROOT}"
status_socket = "{STATUS_SOCKET}"
clock_sync = "assume_synced"
max_concurrent_offloads = 3
storage_wait_s = {storage_wait_s}
enrolled_only = {str(enrolled_only).lower()}
control_wait_s = 30

[[daemon.bays]]
port = "3-1"
number = {BAY_AMBA}
label = "Bay 1"

[[daemon.bays]]
port = "4-1"
number = {BAY_GAT}
label = "Bay 2"

[[daemon.bays]]
port = "1-{MSC_ROOT_PORT}"
number = {BAY_MSC}
label = "Bay 3"

[[daemon.models]]
name = "ambarella"
vendor_id = "4255"
product_id = "0001"
driver = "amba"
control = "usb"
password_file = "/etc/dockd/amba.pw"
timezone = "Asia/Shanghai"

[[daemon.models]]
name = "gat947-cdc"
vendor_id = "2ca3"
product_id = "0947"
storage_vendor_id = "2ca3"
storage_product_id = "0948"
driver = "gat947"
control = "test-serial"
password_file = "/etc/dockd/gat947.pw"
timezone = "Asia/Shanghai"

[[daemon.models]]
name = "gat947-dv16"
vendor_id = "2ca3"
product_id = "0a16"
storage_vendor_id = "2ca3"
storage_product_id = "0a17"
driver = "gat947"
control = "sg"
password_file = "/etc/dockd/gat947.pw"
timezone = "Asia/Shanghai"

[[daemon.models]]
name = "plain-msc"
vendor_id = "46f4"
product_id = "0001"
driver = "msc"
"""


@dataclass
class Dock:
    """The guest running dockd, and the helpers that ask dockd what it knows."""

    guest: Guest
    work: Path
    store_disk: Path
    daemon: GuestProcess | None = None
    plugged: dict[str, Any] = field(default_factory=dict)
    config: str = field(default_factory=config_text)  # what CONFIG holds (prepare_dock writes it)

    def dockd(self, *args: str, check: bool = True, timeout: float = 120) -> Any:
        result = self.guest.run([DOCKD, *args, "--config", CONFIG], check=check, timeout=timeout)
        return result

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.dockd("status", "--json").text)
        return data

    def bay(self, number: int) -> dict[str, Any]:
        return next(b for b in self.status()["bays"] if b["bay"] == number)

    def wait_bay(self, number: int, states: tuple[str, ...], timeout: float = 120,
                 extra: Callable[[dict[str, Any]], bool] = lambda b: True) -> dict[str, Any]:
        """The bay as dockd's state channel shows it once it is in one of `states` (and
        `extra` holds): what `dockd status --json` prints, read by the guest agent, which
        sees every change without starting a process in the guest."""
        deadline = time.monotonic() + timeout
        skip: dict[str, Any] | None = None
        try:
            while True:
                skip = self.guest.state_wait(STATUS_SOCKET, bay=number, states=states, skip=skip,
                                             timeout=max(0.0, deadline - time.monotonic()))
                bay: dict[str, Any] = next(b for b in skip["bays"] if b["bay"] == number)
                if extra(bay):
                    return bay
        except HilTimeout as exc:
            raise HilTimeout(f"{exc}\n{self.log_tail()}") from exc

    def custody(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(self.dockd("log", "--json").text)
        return data

    def catalog(self, serial: str | None = None) -> list[dict[str, Any]]:
        """`dockd catalog --json`, of one recorder or (None) of all: one command for all the
        recorders of a scenario, as each dockd command is a Python start in the guest."""
        only = ("--recorder", serial) if serial is not None else ()
        data: list[dict[str, Any]] = json.loads(self.dockd("catalog", *only, "--json").text)
        return data

    def alerts(self) -> list[dict[str, Any]]:
        out = self.guest.run([str(REPO_ROOT / ".venv" / "bin" / "python"), "-c",
                              "import json,sqlite3,sys;c=sqlite3.connect(sys.argv[1]);"
                              "print(json.dumps([json.loads(r[0]) for r in c.execute("
                              "\"SELECT payload FROM outbox WHERE kind='alert' ORDER BY id\")]))",
                              f"{STORE}/catalog.sqlite"])
        data: list[dict[str, Any]] = json.loads(out.text)
        return data

    def mounts(self) -> list[list[str]]:
        return [line.split() for line in self.guest.run(["cat", "/proc/mounts"]).text.splitlines()]

    def log_tail(self) -> str:
        path = self.guest.exchange_dir / "dockd.log"
        text = path.read_text(errors="replace") if path.exists() else "(no dockd log)"
        return "--- dockd log (tail) ---\n" + text[-4000:]

    def start_daemon(self) -> float:
        """Start `dockd run`; returns seconds until its state channel answers."""
        started = time.monotonic()
        self.daemon = self.guest.spawn([DOCKD, "run", "--config", CONFIG],
                                       self.guest.exchange_dir / "dockd.log")
        # The agent connects until the channel answers: a Python start costs seconds here.
        try:
            self.guest.state_wait(STATUS_SOCKET, timeout=120)
        except HilTimeout as exc:
            raise HilTimeout(f"dockd did not answer on its state channel: {exc}\n"
                             + self.log_tail()) from exc
        return time.monotonic() - started

    def use_config(self, text: str, timeout: float = 60) -> float:
        """Make `text` dockd's config: written to CONFIG and, when dockd runs and it is not
        the config it has, applied the way a dock administrator does (SIGHUP: the `[daemon]`
        section reloads, docs/runtime.md), waiting until dockd logged that it reloaded.
        Returns the seconds it took (a restart would cost a Python start in the guest)."""
        started = time.monotonic()
        if text == self.config:
            return 0.0
        self.guest.write_file(CONFIG, text.encode())
        self.config = text
        if self.daemon is None:
            return time.monotonic() - started
        log = self.guest.exchange_dir / "dockd.log"
        seen = log.read_text(errors="replace").count("config reload")
        # To dockd alone (the agent's signal goes to the process group, mount helpers too).
        self.guest.run(["kill", "-HUP", str(self.daemon.pid)])
        deadline = started + timeout
        while time.monotonic() < deadline:
            # the log is read on the host: no process started in the guest
            lines = [line for line in log.read_text(errors="replace").splitlines()
                     if "config reload" in line][seen:]
            if any('msg="config reloaded"' in line for line in lines):
                return time.monotonic() - started
            if any("level=error" in line for line in lines):  # refused: the old config runs
                raise HilError(f"dockd did not reload its config: {lines}\n{self.log_tail()}")
            time.sleep(0.2)
        raise HilTimeout(f"dockd did not reload its config within {timeout}s\n{self.log_tail()}")



def prepare_guest(d: Dock) -> float:
    """dockd's udev rules installed (and its group, which they name), udevd started; returns
    the seconds udevd took to start. What the smoke test needs, before dockd."""
    g = d.guest
    g.install_udev_rules(sorted((REPO_ROOT / "udev-rules").glob("*.rules")))
    g.run("getent group dockd >/dev/null || groupadd --system dockd")
    return g.start_udevd()


def prepare_dock(d: Dock) -> None:
    """The store disk mounted, the admin passwords and `d.config` written: dockd can start."""
    g = d.guest
    g.run(["mkdir", "-p", STORE])
    g.run(["mount", "-t", "ext4", "/dev/vda", STORE])
    g.write_file("/etc/dockd/amba.pw", PASSWORD.encode() + b"\n", mode=0o400)
    g.write_file("/etc/dockd/gat947.pw", PASSWORD.encode() + b"\n", mode=0o400)
    g.write_file(CONFIG, d.config.encode())


def count_cpu(guest: Guest) -> None:
    """Add what this guest's QEMU has used to the CPU-seconds of the HIL guests."""
    TIMINGS["guest_cpu_s"] = TIMINGS.get("guest_cpu_s", 0.0) + guest.cpu_seconds()
