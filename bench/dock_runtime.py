"""Dock runtime figures, measured on the real daemon with simulated recorders.

1. Dock event → bay state ``identifying``: the time from the spool event being posted (the
   moment udev would report the recorder) to the state channel pushing ``identifying``;
   median over repeated plugs. Target ≤ 100 ms. In the same plugs: dock event → the
   retained ``bay/1/state`` with that state at an MQTT subscriber of a local Mosquitto.
   Target ≤ 250 ms.
2. Four bays offloading at once vs one bay alone, same data per bay, same disk, same run:
   aggregate throughput ratio. Target ≥ 0.85.
3. Peak RSS of the daemon (VmHWM) over the whole run. Target ≤ 100 MB.
4. Idle CPU of the daemon over 10 s with nothing docked. Target: near zero.

Run: ``.venv/bin/python bench/dock_runtime.py [--mib-per-bay 512] [--plugs 30]``
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from dockd.sim.broker import start_local_mosquitto
from dockd.sim.runner import DaemonRunner, pid_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib-per-bay", type=int, default=512)
    parser.add_argument("--plugs", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dockd-bench-runtime-"))
    broker, port = start_local_mosquitto(root / "broker")
    runner = DaemonRunner(root, bays=4, daemon_extra="max_concurrent_offloads = 4",
                          broker_url=f"mqtt://127.0.0.1:{port}")
    runner.start()
    subscriber = BayStateSubscriber(port, "dockd/demo-site/demo-dock/bay/1/state")
    daemon = psutil.Process(pid_of(runner))
    try:
        idle = idle_cpu(daemon, 10.0)
        latency, mqtt_latency = dock_latency(runner, args.plugs, subscriber)
        single, multi = throughput(runner, args.mib_per_bay)
        peak_rss = peak_rss_mb(daemon.pid)
    finally:
        subscriber.close()
        runner.stop()
        runner.close()
        runner.dock.discard_cards()
        broker.terminate()
    result = {
        "dock_to_identifying_median_ms": round(statistics.median(latency), 1),
        "dock_to_identifying_p95_ms": round(sorted(latency)[int(len(latency) * 0.95) - 1], 1),
        "dock_to_mqtt_bay_state_median_ms": round(statistics.median(mqtt_latency), 1),
        "dock_to_mqtt_bay_state_p95_ms": round(sorted(mqtt_latency)[int(len(mqtt_latency) * 0.95) - 1], 1),
        "one_bay_mb_s": round(single, 1),
        "four_bays_aggregate_mb_s": round(multi, 1),
        "four_vs_one_ratio": round(multi / single, 2),
        "daemon_peak_rss_mb": round(peak_rss, 1),
        "daemon_idle_cpu_percent": round(idle, 2),
    }
    print(json.dumps(result, indent=2))


def idle_cpu(process: psutil.Process, seconds: float) -> float:
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return 100.0 * used / seconds


class BayStateSubscriber:
    """Records when each retained bay-state payload arrives (monotonic time, state)."""

    def __init__(self, port: int, topic: str) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("no SUBACK from the local broker")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.arrivals.append((time.monotonic(), json.loads(msg.payload)["state"]))
            self.cond.notify_all()

    def wait_state(self, after: float, state: str, timeout: float = 10) -> float:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for at, seen in self.arrivals:
                    if at >= after and seen == state:
                        return at
                if not self.cond.wait(deadline - time.monotonic()):
                    raise TimeoutError(f"no {state} on MQTT")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def dock_latency(runner: DaemonRunner, plugs: int,
                 subscriber: BayStateSubscriber) -> tuple[list[float], list[float]]:
    """Plug and unplug a small recorder ``plugs`` times; ms from event to ``identifying``
    on the state channel and on MQTT."""
    samples, mqtt_samples = [], []
    for n in range(plugs):
        serial = f"LAT{n:04d}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(runner.paths.socket))
            reader = sock.makefile("rb")
            reader.readline()  # the current snapshot
            posted = time.monotonic()
            runner.dock.plug("1-1.1", "msc", usb_serial=serial, files=[("DCIM/A.MP4", 4096)])
            while True:
                state = json.loads(reader.readline())
                bay = state["bays"][0]
                if bay["state"] not in ("empty", "ready_unchecked"):
                    samples.append((time.monotonic() - posted) * 1000)
                    break
        mqtt_samples.append((subscriber.wait_state(posted, "identifying") - posted) * 1000)
        runner.wait_bay(1, "ready_unchecked")
        runner.dock.unplug("1-1.1")
        runner.wait_bay(1, "empty")
    return samples, mqtt_samples


def throughput(runner: DaemonRunner, mib: int) -> tuple[float, float]:
    """MB/s of one bay alone, then of four bays at once (fresh data each time)."""
    files = [(f"DCIM/{i:03d}.MP4", 64 << 20) for i in range(max(1, mib // 64))]
    total = sum(size for _, size in files)
    for serial in ["ONE0", "FOUR0", "FOUR1", "FOUR2", "FOUR3"]:
        runner.dock.card(serial, files, seed=hash(serial) & 0xFFFF)
    drop_caches()
    start = time.monotonic()
    runner.dock.plug("1-1.1", "msc", usb_serial="ONE0", files=files)
    runner.wait_bay(1, "ready_unchecked", timeout=600)
    single = total / (time.monotonic() - start) / 1e6
    runner.dock.unplug("1-1.1")
    runner.wait_bay(1, "empty")
    drop_caches()
    start = time.monotonic()
    for n in range(4):
        runner.dock.plug(f"1-1.{n + 1}", "msc", usb_serial=f"FOUR{n}", files=files)
    for n in range(4):
        runner.wait_bay(n + 1, "ready_unchecked", timeout=900)
    multi = 4 * total / (time.monotonic() - start) / 1e6
    return single, multi


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        print("note: cannot drop page caches (not root); figures include cached reads")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
