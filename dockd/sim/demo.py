"""``dockd demo``: the real daemon, N simulated recorders docked, bays shown live.

It writes a demo config (simulator device source, directory "mounts", a local broker),
starts ``dockd run`` as a subprocess, docks recorders of every kind (GA/T 947 over a
serial port, Ambarella, plain mass storage), shows the bays until each is ``ready``,
stops the daemon and runs ``dockd verify``. Exit 0 only when all of that succeeded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockd.errors import DockdError
from dockd.report.state_channel import read_state
from dockd.sim.dock import KINDS, SIM_IDS, SimDock

ADMIN_PASSWORD = "123456"


class DemoFailed(DockdError):
    """The demo did not reach every bay ready and a clean verify."""

    exit_code = 1


@dataclass(frozen=True)
class DemoPaths:
    root: Path
    store: Path
    config: Path
    spool: Path
    socket: Path
    cards: Path


def demo_paths(root: Path, store: Path | None) -> DemoPaths:
    return DemoPaths(root, store or root / "store", root / "dockd.toml", root / "spool",
                     root / "status.sock", root / "cards")


def write_demo_config(paths: DemoPaths, recorders: int, broker_url: str | None,
                      clock_sync: str = "assume_synced", storage_wait_s: float = 30,
                      extra: str = "") -> None:
    """The TOML a real dock would have, pointed at the simulator (``extra`` is appended)."""
    (paths.root / "admin.pw").write_text(ADMIN_PASSWORD + "\n")
    os.chmod(paths.root / "admin.pw", 0o400)
    lines = [
        "[dock]", 'id = "demo-dock"', 'site = "demo-site"', f'store_dir = "{paths.store}"', "",
        "[ingest]", "store_reserve_bytes = 0", "",
        "[daemon]", 'device_source = "spool"', f'spool_dir = "{paths.spool}"',
        'mounter = "directory"', f'status_socket = "{paths.socket}"',
        f'clock_sync = "{clock_sync}"  # the demo machine may have no NTP; a real dock uses "auto"',
        f"storage_wait_s = {storage_wait_s}", "",
    ]
    for n in range(1, recorders + 1):
        lines += ["[[daemon.bays]]", f'port = "1-1.{n}"', f"number = {n}", f'label = "Bay {n}"', ""]
    for kind in KINDS:
        vid, pid, svid, spid = SIM_IDS[kind]
        lines += ["[[daemon.models]]", f'name = "sim-{kind}"', f'vendor_id = "{vid}"',
                  f'product_id = "{pid}"', f'driver = "{kind}"', f'brand = "Simulated {kind}"']
        if kind != "msc":
            lines += ['control = "serial"', f'storage_vendor_id = "{svid}"',
                      f'storage_product_id = "{spid}"',
                      f'password_file = "{paths.root / "admin.pw"}"', 'timezone = "Asia/Shanghai"']
        lines.append("")
    if broker_url:
        lines += ["[mqtt]", "enabled = true", f'broker = "{broker_url}"', ""]
    paths.config.write_text("\n".join(lines) + "\n" + extra)


def run_demo(recorders: int, broker_url: str | None, store: Path | None, keep_running: bool,
             show: Callable[[dict[str, Any]], None], local_broker: bool = True,
             timeout_s: float = 120.0) -> int:
    """The whole demo; returns 0 on success, raises DemoFailed otherwise."""
    root = Path(tempfile.mkdtemp(prefix="dockd-demo-"))
    paths = demo_paths(root, store)
    broker_proc = None
    if broker_url is None and local_broker:
        from dockd.sim.broker import start_local_mosquitto

        broker_proc, port = start_local_mosquitto(root / "broker")
        broker_url = f"mqtt://127.0.0.1:{port}"
    write_demo_config(paths, recorders, broker_url)
    daemon = subprocess.Popen([sys.executable, "-m", "dockd.cli", "run", "--config", str(paths.config)],
                              stderr=open(root / "daemon.log", "wb"))  # noqa: SIM115
    dock = SimDock(paths.spool, paths.cards)
    try:
        _wait_for(lambda: paths.socket.exists(), 30, "the daemon's state channel", daemon, root)
        for n in range(1, recorders + 1):
            kind = KINDS[(n - 1) % len(KINDS)]
            dock.plug(f"1-1.{n}", kind, files=_demo_files(n))
        state = _watch_until_settled(paths, recorders, show, daemon, root, timeout_s)
        faults = [b for b in state["bays"] if b["state"] != "ready"]
        if keep_running:
            _keep_running(paths, show, daemon)
    finally:
        dock.stop()
        _stop(daemon)
        if broker_proc is not None:
            broker_proc.terminate()
            broker_proc.wait(10)
    if faults:
        raise DemoFailed("bays not ready: " + ", ".join(f"{b['label']}={b['state']}({b['fault']})"
                                                         for b in faults) + f"; log: {root / 'daemon.log'}")
    verify = subprocess.run([sys.executable, "-m", "dockd.cli", "verify", "--config", str(paths.config)],
                            capture_output=True, text=True, check=False)
    sys.stdout.write(verify.stdout)
    if verify.returncode != 0:
        raise DemoFailed(f"dockd verify failed ({verify.returncode}): {verify.stderr.strip()}")
    print(f"demo store: {paths.store}  (config {paths.config})")
    return 0


def _demo_files(n: int) -> list[tuple[str, int]]:
    return [(f"DCIM/100MEDIA/REC{n:02d}{i:03d}.MP4", (4 << 20) + i * 4096) for i in range(6)]


def _watch_until_settled(paths: DemoPaths, recorders: int, show: Callable[[dict[str, Any]], None],
                         daemon: subprocess.Popen[bytes], root: Path, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _check_alive(daemon, root)
        state = read_state(paths.socket)
        show(state)
        bays = [b for b in state["bays"] if b["bay"] <= recorders]
        if len(bays) == recorders and all(b["state"] in ("ready", "fault") for b in bays):
            return state
        time.sleep(0.3)
    raise DemoFailed(f"bays did not settle within {timeout_s:.0f} s; log: {root / 'daemon.log'}")


def _keep_running(paths: DemoPaths, show: Callable[[dict[str, Any]], None],
                  daemon: subprocess.Popen[bytes]) -> None:
    try:
        while daemon.poll() is None:
            show(read_state(paths.socket))
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def _wait_for(ready: Callable[[], bool], timeout: float, what: str,
              daemon: subprocess.Popen[bytes], root: Path) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        _check_alive(daemon, root)
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out waiting for {what}; log: {root / 'daemon.log'}")
        time.sleep(0.05)


def _check_alive(daemon: subprocess.Popen[bytes], root: Path) -> None:
    if daemon.poll() is not None:
        log = (root / "daemon.log").read_text(errors="replace")[-2000:]
        raise DemoFailed(f"the daemon exited with {daemon.returncode}:\n{log}")


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
