"""MQTT outbox benchmarks against a loopback Mosquitto (prints figures).

    .venv/bin/python bench/mqtt_outbox.py [--drain N] [--outage N] [--latency N]

* drain:   N custody events already in the outbox, drained at QoS 1 (events/s).
* outage:  N events queued while the broker is down, then delivered after it starts:
           in order? how long? reporter-process RSS before/during/after (flat memory).
* latency: publish_bay() -> retained bay state seen by a subscriber (median, p95).
           ``measure_bay_latency`` is the helper to reuse once the daemon drives the bays.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dockd.clock import SystemClock
from dockd.config import Config, parse_config
from dockd.dock.states import BayState, BayStatus
from dockd.report.mqtt.reporter import MqttReporter
from dockd.store.events import RecorderFileDeleted
from dockd.store.evidence import EvidenceStore, open_store
from tests.mqtt_broker import Collector, MosquittoBroker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drain", type=int, default=20_000)
    parser.add_argument("--outage", type=int, default=100_000)
    parser.add_argument("--latency", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.drain:
            bench_drain(root / "drain", args.drain)
        if args.outage:
            bench_outage(root / "outage", args.outage)
        if args.latency:
            bench_latency(root / "latency", args.latency)


def bench_drain(root: Path, n: int) -> None:
    broker = MosquittoBroker(root / "broker", persistence=False)
    broker.start()
    try:
        config = _config(root, broker.url)
        store = open_store(config, SystemClock())
        _fill(store, n)
        total = _pending(store)
        reporter = MqttReporter(config, config.dock.store_dir, SystemClock(),
                                store.custody.signer.public_key_hex)
        began = time.perf_counter()
        reporter.start()
        _wait(lambda: _pending(store) == 0, 600)
        took = time.perf_counter() - began
        reporter.stop()
        store.close()
        print(f"drain: {total} outbox rows ({n} custody + checkpoints) at QoS 1 in {took:.2f} s"
              f" = {total / took:,.0f} rows/s (includes connect)")
    finally:
        broker.stop()


def bench_outage(root: Path, n: int) -> None:
    broker = MosquittoBroker(root / "broker", persistence=False)
    config = _config(root, broker.url)
    store = open_store(config, SystemClock())
    me = psutil.Process()
    rss_start = me.memory_info().rss
    reporter = MqttReporter(config, config.dock.store_dir, SystemClock(),
                            store.custody.signer.public_key_hex)
    reporter.start()  # broker is down: it keeps retrying
    began = time.perf_counter()
    _fill(store, n, wake=reporter.wake)
    queued_s = time.perf_counter() - began
    rss_queued = me.memory_info().rss
    broker.start()
    # The subscriber is another process, so the RSS below is the store writer + reporter only.
    received = root / "received.txt"
    with received.open("w") as sink:
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port),
                                "-q", "1", "-t", "dockd/+/+/custody", "-C", str(n)], stdout=sink)
        peak = [rss_queued]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.2):
                peak[0] = max(peak[0], me.memory_info().rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        began = time.perf_counter()
        try:
            _wait(lambda: _pending(store) == 0, 900)
            sub.wait(120)
            took = time.perf_counter() - began
            stop.set()
            seqs = [json.loads(line)["seq"] for line in received.read_text().splitlines()]
            first_seen = list(dict.fromkeys(seqs))
            in_order = first_seen == list(range(1, n + 1))
            rss_after = me.memory_info().rss
            print(f"outage: {n} custody events queued in {queued_s:.1f} s with the broker down; "
                  f"{len(first_seen)} distinct arrived ({len(seqs) - len(first_seen)} duplicates)"
                  f" in {took:.1f} s after it started = {n / took:,.0f}/s; in order: {in_order}")
            print(f"outage: RSS of the store writer + reporter: start {rss_start / 2**20:.1f} MiB,"
                  f" queued {rss_queued / 2**20:.1f} MiB, peak while draining "
                  f"{peak[0] / 2**20:.1f} MiB, after {rss_after / 2**20:.1f} MiB")
        finally:
            stop.set()
            if sub.poll() is None:
                sub.kill()
            reporter.stop()
            store.close()
            broker.stop()


def bench_latency(root: Path, n: int) -> None:
    broker = MosquittoBroker(root / "broker", persistence=False)
    broker.start()
    try:
        config = _config(root, broker.url)
        store = open_store(config, SystemClock())
        reporter = MqttReporter(config, config.dock.store_dir, SystemClock(),
                                store.custody.signer.public_key_hex)
        reporter.start()
        _wait(lambda: reporter.link_state().connected, 10)
        samples = measure_bay_latency(broker, "dockd/site-01/dock-01/bay/1/state",
                                      lambda i: reporter.bay_changed(BayStatus(
                                          bay=1, label="A", state=BayState.OFFLOADING,
                                          updated_at=f"2026-01-01T00:00:00.{i:06d}Z")), n)
        reporter.stop()
        store.close()
        ms = sorted(s * 1000 for s in samples)
        print(f"latency: publish_bay -> retained bay state at a subscriber, {n} samples: "
              f"median {statistics.median(ms):.2f} ms, p95 {ms[int(len(ms) * 0.95) - 1]:.2f} ms,"
              f" max {ms[-1]:.2f} ms")
    finally:
        broker.stop()


def measure_bay_latency(broker: MosquittoBroker, topic: str, trigger: Callable[[int], None],
                        samples: int, timeout: float = 5.0) -> list[float]:
    """Seconds from ``trigger(i)`` (a dock event) to the i-th distinct message on ``topic``.

    ``trigger`` must cause a new retained payload on ``topic`` each time (e.g. the daemon
    changing a bay's state); pass the daemon's hook once it exists.
    """
    collector = Collector(broker, topic)
    try:
        collector.wait_for(lambda m: True, 0.1)
        out = []
        for i in range(samples):
            seen = len(collector.messages)
            began = time.perf_counter()
            trigger(i)
            if not collector.wait_for(lambda m, seen=seen: len(m) > seen, timeout):
                raise TimeoutError(f"sample {i}: nothing on {topic} within {timeout} s")
            out.append(time.perf_counter() - began)
            time.sleep(0.005)
        return out
    finally:
        collector.close()


def _config(root: Path, url: str) -> Config:
    return parse_config({"dock": {"store_dir": str(root / "store")},
                         "ingest": {"checkpoint_every": 100},
                         "mqtt": {"enabled": True, "broker": url, "reconnect_min_s": 0.2,
                                  "reconnect_max_s": 1.0, "outbox_alert_rows": 10**9}})


def _fill(store: EvidenceStore, n: int, wake: Callable[[], None] | None = None) -> None:
    # Batches of 500 records per transaction, as a busy offload writes them.
    for start in range(0, n, 500):
        with store.catalog.transaction() as tx:
            for i in range(start, min(n, start + 500)):
                store.custody.record(tx, RecorderFileDeleted(f"SN{i % 7}", f"DCIM/{i}.MP4",
                                                             f"{i:064x}", i), "bench")
        if wake is not None:
            wake()


def _pending(store: EvidenceStore) -> int:
    row = store.catalog.query_one("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
    return int(row[0]) if row else -1


def _wait(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish in time")
        time.sleep(0.02)


if __name__ == "__main__":
    main()
