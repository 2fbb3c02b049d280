"""``dockd demo``: the real daemon, N simulated recorders docked, bays shown live.

It writes a demo config (simulator device source, directory "mounts", a local broker),
starts ``dockd run`` as a subprocess, docks recorders of every kind (GA/T 947 over a
serial port, Ambarella, plain mass storage), shows the bays until each is settled,
stops the daemon and runs ``dockd verify``. Exit 0 only when every bay is ``ready`` (or
``ready_unchecked``: Ambarella and plain mass-storage recorders cannot report their battery,
and the dock says so) and the store verifies.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockd.errors import SoftwareError
from dockd.sim.dock import KINDS
from dockd.sim.runner import DaemonRunner, RunnerError

READY = ("ready", "ready_unchecked")


class DemoFailed(SoftwareError):
    """The demo did not reach every bay ready and a clean verify."""


def run_demo(recorders: int, broker_url: str | None, store: Path | None, keep_running: bool,
             show: Callable[[dict[str, Any]], None], local_broker: bool = True,
             timeout_s: float = 120.0) -> int:
    """The whole demo; returns 0 on success, raises DemoFailed otherwise."""
    root = Path(tempfile.mkdtemp(prefix="dockd-demo-"))
    broker_proc = None
    if broker_url is None and local_broker:
        from dockd.sim.broker import start_local_mosquitto

        broker_proc, port = start_local_mosquitto(root / "broker")
        broker_url = f"mqtt://127.0.0.1:{port}"
    runner = DaemonRunner(root, bays=recorders, broker_url=broker_url, store=store)
    try:
        runner.start()
        for n in range(1, recorders + 1):
            runner.dock.plug(f"1-1.{n}", KINDS[(n - 1) % len(KINDS)], files=_demo_files(n))
        state = _watch_until_settled(runner, recorders, show, timeout_s)
        if keep_running:
            _keep_running(runner, show)
        runner.stop()
    except RunnerError as exc:
        raise DemoFailed(str(exc)) from None
    finally:
        runner.close()
        if broker_proc is not None:
            broker_proc.terminate()
            broker_proc.wait(10)
    faults = [b for b in state["bays"] if b["state"] not in READY]
    if faults:
        raise DemoFailed("bays not ready: " + ", ".join(f"{b['label']}={b['state']}({b['fault']})"
                                                         for b in faults) + f"; log: {runner.log_path}")
    verify = runner.dockd("verify")
    sys.stdout.write(verify.stdout)
    if verify.returncode != 0:
        raise DemoFailed(f"dockd verify failed ({verify.returncode}): {verify.stderr.strip()}")
    print(f"demo store: {runner.paths.store}  (config {runner.paths.config})")
    return 0


def _demo_files(n: int) -> list[tuple[str, int]]:
    return [(f"DCIM/100MEDIA/REC{n:02d}{i:03d}.MP4", (4 << 20) + i * 4096) for i in range(6)]


def _watch_until_settled(runner: DaemonRunner, recorders: int,
                         show: Callable[[dict[str, Any]], None], timeout_s: float) -> dict[str, Any]:
    def settled(state: dict[str, Any]) -> bool:
        show(state)
        bays = [b for b in state["bays"] if b["bay"] <= recorders]
        return len(bays) == recorders and all(b["state"] in (*READY, "fault") for b in bays)

    return runner.wait_until(settled, timeout_s, "every bay settled", interval=0.3)


def _keep_running(runner: DaemonRunner, show: Callable[[dict[str, Any]], None]) -> None:
    try:
        while runner.proc is not None and runner.proc.poll() is None:
            show(runner.state())
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
