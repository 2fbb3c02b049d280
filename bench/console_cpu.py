"""CPU cost of ``dockd console`` while 8 bays offload (target: <= 5 % of one core).

A real StateChannel in this process pushes the dock state as the daemon does when every
bay reports progress twice a second (16 snapshots/s, staggered); ``dockd console`` runs as
a subprocess in a 160x50 pseudo-terminal whose output is drained (as a terminal would);
its user+system CPU time (psutil) over the measuring window is the figure. Start-up and the
first two seconds are not counted.

Run: .venv/bin/python bench/console_cpu.py [--seconds 20] [--bays 8]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from dockd.dock.states import BayState, BayStatus, Progress
from dockd.report.state_channel import StateChannel

REPO = Path(__file__).resolve().parent.parent
UPDATES_PER_BAY_PER_S = 2
RATE = 30_000_000.0  # bytes/s a recorder's USB link gives


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bays", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dockd-bench-") as tmp:
        result = measure(Path(tmp) / "status.sock", args.bays, args.seconds)
    print(f"dockd console, {args.bays} bays offloading, {result['pushes']} snapshots in "
          f"{result['seconds']:.1f} s ({result['pushes'] / result['seconds']:.1f}/s, "
          f"{result['snapshot_bytes']} bytes each)")
    print(f"console CPU: {result['cpu_s']:.2f} s = {result['percent']:.1f} % of one core "
          f"(target <= 5 %); terminal output {result['tty_bytes'] / result['seconds'] / 1000:.1f} kB/s")


def measure(sock: Path, bays: int, seconds: float) -> dict[str, Any]:
    """Run the console against a pushing StateChannel; its CPU use over ``seconds``."""
    started = time.monotonic()
    dock = {"id": "BENCH", "site": "bench", "version": "0", "time": "2026-11-28T00:00:00Z",
            "store_free_bytes": 10**12, "store_total_bytes": 2 * 10**12, "clock_synchronised": True,
            "outbox_depth": 0, "broker": {"state": "disabled"}, "public_key": "00" * 32}
    statuses = [_offloading(n, 0.0) for n in range(1, bays + 1)]
    lock = threading.Lock()

    def snapshot() -> dict[str, Any]:
        with lock:
            return {"v": 1, "dock": dock, "bays": [s.to_json_dict() for s in statuses]}

    channel = StateChannel(sock, snapshot)
    channel.start()
    console, tty_bytes = _start_console(sock)
    try:
        _wait(lambda: channel.client_count == 1, 30)
        proc = psutil.Process(console.pid)
        pushes, cpu_before, t0 = 0, None, 0.0
        tick = 1.0 / (UPDATES_PER_BAY_PER_S * bays)
        next_at = time.monotonic()
        while True:
            now = time.monotonic()
            if cpu_before is None and now - started >= 2.0:  # warm-up over: start counting
                cpu_before, t0, bytes0, pushes = _cpu(proc), now, tty_bytes[0], 0
            if cpu_before is not None and now - t0 >= seconds:
                break
            bay = pushes % bays
            with lock:
                statuses[bay] = _offloading(bay + 1, now - started)
            channel.changed()
            pushes += 1
            next_at += tick
            time.sleep(max(0.0, next_at - time.monotonic()))
        elapsed = time.monotonic() - t0
        cpu = _cpu(proc) - cpu_before
        assert channel.client_count == 1, "the console was dropped (too slow) during the run"
        return {"pushes": pushes, "seconds": elapsed, "cpu_s": cpu, "percent": 100 * cpu / elapsed,
                "snapshot_bytes": len(channel._line()), "tty_bytes": tty_bytes[0] - bytes0}
    finally:
        console.terminate()
        console.wait(10)
        channel.stop()


def _offloading(bay: int, t: float) -> BayStatus:
    total = 40 * 100_000_000
    done = min(total, int(RATE * t) + bay * 10_000_000)
    return BayStatus(bay, str(bay), BayState.OFFLOADING, recorder=f"GAT947-{bay:06d}",
                     officer=f"Officer {bay}", battery_percent=80, storage_free_bytes=20 * 10**9,
                     storage_total_bytes=64 * 10**9, clock_drift_s=0.4,
                     progress=Progress(done // 100_000_000, 40, done, total, RATE))


def _start_console(sock: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "LANG": "C.UTF-8", "PYTHONPATH": str(REPO)}
    console = subprocess.Popen([sys.executable, "-m", "dockd.cli", "console", "--socket", str(sock)],
                               stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    received = [0]

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            received[0] += len(chunk)

    threading.Thread(target=drain, daemon=True).start()
    return console, received


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _wait(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("the console never connected")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
