"""Bay state change -> LED written: median and p95 latency (target: median <= 50 ms).

Two paths, each through LedController and its worker thread, as the daemon uses them:
* sysfs: an LED class directory laid out as the kernel's (tmp dir); an observer polls the
  ``brightness`` file (the last attribute written) until it holds the new value;
* serial: the simulated bay controller board on a real pty; the time until the board has
  applied the command (the ack round trip is then still in flight).

Run: .venv/bin/python bench/led_latency.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dockd.config.leds import SerialBoardSpec, SysfsLedSpec
from dockd.dock.states import BayState, BayStatus
from dockd.report.leds.controller import LedController
from dockd.report.leds.pattern import LED_OFF, READY
from dockd.report.leds.serial_board import SerialBoardDriver
from dockd.report.leds.sysfs import SysfsLedDriver
from dockd.sim.led_board import SimulatedLedBoard, make_sysfs_led

STATES = (BayStatus(1, "Bay 1", BayState.READY), BayStatus(1, "Bay 1", BayState.EMPTY))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report("sysfs", bench_sysfs(Path(tmp), args.runs))
        report("serial", bench_serial(Path(tmp), args.runs))


def bench_sysfs(tmp: Path, runs: int) -> list[float]:
    root = tmp / "sys" / "class" / "leds"
    make_sysfs_led(root, "bay1:status", channels=("red", "green", "blue"))
    brightness = root / "bay1:status" / "brightness"
    driver = SysfsLedDriver([SysfsLedSpec(1, multicolor="bay1:status")], _fail, root=root)

    def written(i: int) -> bool:
        expected = "255\n" if i % 2 == 0 else "0\n"
        deadline = time.perf_counter() + 5
        while brightness.read_text() != expected:
            if time.perf_counter() > deadline:
                return False
            # A short sleep lets the worker have the GIL; a hot loop would measure the
            # interpreter's 5 ms switch interval instead of the LED path.
            time.sleep(0.0001)
        return True

    return measure(LedController(driver, broker_online=True), runs, written)


def bench_serial(tmp: Path, runs: int) -> list[float]:
    board = SimulatedLedBoard(tmp / "by-id" / "ledboard")
    board.plug()
    driver = SerialBoardDriver(SerialBoardSpec(port=board.link), _fail)
    try:
        return measure(LedController(driver, broker_online=True), runs,
                       lambda i: board.wait_for(1, READY if i % 2 == 0 else LED_OFF, 5))
    finally:
        board.unplug()


def measure(controller: LedController, runs: int, written: Callable[[int], bool]) -> list[float]:
    controller.start()
    controller.bay_changed(STATES[1])
    controller.wait_idle(5)
    samples = []
    try:
        for i in range(runs):
            started = time.perf_counter()
            controller.bay_changed(STATES[i % 2])
            if not written(i):
                raise SystemExit(f"run {i}: the LED was not written within 5 s")
            samples.append(time.perf_counter() - started)
            controller.wait_idle(5)
    finally:
        controller.stop()
    return samples


def report(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(len(ms) * 0.95) - 1]
    verdict = "ok" if statistics.median(ms) <= 50 else "OVER TARGET"
    print(f"{name:6s} state change -> LED written: median {statistics.median(ms):.3f} ms, "
          f"p95 {p95:.3f} ms, max {ms[-1]:.3f} ms over {len(ms)} changes "
          f"(target median <= 50 ms: {verdict})")


def _fail(message: str) -> None:
    raise SystemExit(f"LED fault during the benchmark: {message}")


if __name__ == "__main__":
    main()
