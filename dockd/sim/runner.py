"""The real daemon as a subprocess, with simulated recorders docked through the spool.

``DaemonRunner`` writes a dock config (the demo's, pointed at a directory), starts
``dockd run``, and offers waits on the daemon's own state channel, so the demo, the
tests and the benchmarks all observe what the dock reports, not its internals.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dockd.errors import SoftwareError
from dockd.i18n import _
from dockd.sim.demo_config import DemoPaths, demo_paths, write_demo_config
from dockd.sim.dock import SimDock


class RunnerError(SoftwareError):
    """The simulated dock did not reach the awaited state (or the daemon died)."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DOCKD_CONFIG", None)
    return env



class DaemonRunner:
    """One simulated dock running the real daemon."""

    def __init__(self, root: Path, bays: int = 3, clock_sync: str = "assume_synced",
                 storage_wait_s: float = 10, extra: str = "", broker_url: str | None = None,
                 daemon_extra: str = "", store: Path | None = None, mqtt_extra: str = "",
                 dock_id: str = "demo-dock", site: str = "demo-site",
                 mounter: str = "directory",
                 model_extra: Mapping[str, str] | None = None, ingest_extra: str = "") -> None:
        self.root = root
        self.paths: DemoPaths = demo_paths(root, store)
        root.mkdir(parents=True, exist_ok=True)
        write_demo_config(self.paths, bays, broker_url, clock_sync=clock_sync,
                          storage_wait_s=storage_wait_s, extra=extra, daemon_extra=daemon_extra,
                          mqtt_extra=mqtt_extra, dock_id=dock_id, site=site, mounter=mounter,
                          model_extra=model_extra, ingest_extra=ingest_extra)
        self.dock = SimDock(self.paths.spool, self.paths.cards)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "daemon.log"

    # -- life cycle ---------------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        env = _env()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dockd.cli", "run", "--config", str(self.paths.config)],
                stderr=log, stdout=log, env=env)
        self.wait_until(lambda s: True, timeout, "the state channel")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.dock.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    # -- observing ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.paths.socket))
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        data: dict[str, Any] = json.loads(buf)
        return data

    def bay(self, number: int) -> dict[str, Any]:
        for bay in self.state()["bays"]:
            if bay["bay"] == number:
                return dict(bay)
        raise KeyError(f"no bay {number}")

    def wait_until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float,
                   what: str, interval: float = 0.05) -> dict[str, Any]:
        """Poll the state channel until ``predicate(state)``; fail with the log otherwise."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RunnerError(_("daemon exited ({code}) waiting for {what}:\n{log}").format(
                    code=self.proc.returncode, what=what, log=self.log()[-3000:]))
            try:
                last = self.state()
                if predicate(last):
                    return last
            except (OSError, ValueError):
                pass
            time.sleep(interval)
        raise RunnerError(_("timed out waiting for {what}; last state {last}\n{log}").format(
            what=what, last=last, log=self.log()[-3000:]))

    def wait_bay(self, number: int, state: str, timeout: float = 60) -> dict[str, Any]:
        """Wait for bay ``number`` to reach ``state``; returns that bay's status."""
        found = self.wait_until(
            lambda s: any(b["bay"] == number and b["state"] == state for b in s["bays"]),
            timeout, f"bay {number} {state}")
        return next(b for b in found["bays"] if b["bay"] == number)

    def custody(self) -> list[dict[str, Any]]:
        out = subprocess.run([sys.executable, "-m", "dockd.cli", "log", "--json", "--config",
                              str(self.paths.config)], capture_output=True, text=True, check=True,
                             env=_env())
        records: list[dict[str, Any]] = json.loads(out.stdout)
        return records

    def dockd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dockd.cli", *args, "--config",
                               str(self.paths.config)], capture_output=True, text=True, check=False,
                              env=_env(), timeout=120)


def pid_of(runner: DaemonRunner) -> int:
    """The daemon's process id."""
    assert runner.proc is not None
    return runner.proc.pid
