"""The bureau ledger's figures (prints them; docs/BENCHMARKS.md keeps them).

    flock /work/team/heavy.lock .venv/bin/python bench/ledger.py [--records N] [--docks D]
        [--latency N] [--web-docks D] [--web-records-per-day R] [--skip ...]

* ingest: a backlog of N records (default 1,000,000) from D simulated docks (default 10),
  real hashes and real Ed25519 checkpoints every 100 records, queued by a real Mosquitto
  for the ledger's persistent session(s); ``dockd ledger run`` drains it into PostgreSQL,
  one instance and then two (a shared subscription), each against a bare ``COPY`` of the
  same rows into the same tables measured in the same run (ratio ledger/COPY), plus the
  bytes per record PostgreSQL uses (tables and indexes).
* latency: publish -> committed row, records published one at a time at a steady rate
  while the ledger runs (median, p99).
* web: time to the first render of the bureau overview in headless Chromium with D docks
  (default 100) and a year of records (R per dock and day, default 100), against the same
  page of an empty ledger.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dockd.clock import utc_iso
from dockd.ledger.db import LedgerDb, connect, migrate
from dockd.ledger.judge import judge
from dockd.store.canonical import canonical_json
from dockd.store.custody import GENESIS_HASH, checkpoint_message, record_hash
from dockd.store.keys import Signer
from tests.mqtt_broker import MosquittoBroker, free_port
from tests.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parent.parent
PREFIX = "dockd"
SHARE = "ledger"
PUB_CHUNK = 60_000


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--docks", type=int, default=10)
    p.add_argument("--latency", type=int, default=2000)
    p.add_argument("--web-docks", type=int, default=100)
    p.add_argument("--web-records-per-day", type=int, default=100)
    p.add_argument("--skip", nargs="*", default=[], choices=["ingest", "latency", "web"])
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dockd-bench-ledger-", dir="/tmp"))
    base.chmod(0o755)  # the postgres user must reach its data dir inside
    (base / "pg").mkdir()
    pg = PostgresServer(base / "pg")
    pg.start()
    try:
        docks = [SimDock(f"dock-{i:03d}") for i in range(args.docks)]
        if "ingest" not in args.skip:
            bench_ingest(base, pg, docks, args.records)
        if "latency" not in args.skip:
            bench_latency(base, pg, args.latency)
        if "web" not in args.skip:
            bench_web(base, pg, args.web_docks, args.web_records_per_day)
    finally:
        pg.stop()


# -- simulated docks: real records, real signatures ----------------------------------------


class SimDock:
    """Makes a dock's custody stream exactly as its outbox would publish it."""

    def __init__(self, dock: str, site: str = "site-01") -> None:
        self.dock, self.site = dock, site
        self.signer = Signer(Ed25519PrivateKey.generate())
        self.seq, self.prev = 0, GENESIS_HASH

    def records(self, n: int, checkpoint_every: int = 100,
                start: dt.datetime | None = None, step_s: float = 1.0
                ) -> list[tuple[str, bytes, tuple[Any, ...]]]:
        """``n`` records (and their checkpoints): (topic, payload, COPY rows) each."""
        out = []
        moment = start or dt.datetime.now(dt.UTC)
        for _ in range(n):
            self.seq += 1
            moment += dt.timedelta(seconds=step_s)
            time_ = utc_iso(moment)
            event_id = str(uuid.uuid4())
            payload = {"sha256": os.urandom(32).hex(), "size": 1 << 20, "recorder": "SN0001"}
            h = record_hash(self.dock, self.seq, event_id, time_, "file.ingested", "dockd",
                            "SN0001", payload, self.prev)
            record = {"v": 1, "dock": self.dock, "seq": self.seq, "event_id": event_id,
                      "time": time_, "type": "file.ingested", "actor": "dockd",
                      "subject": "SN0001", "payload": payload, "prev_hash": self.prev, "hash": h}
            rows = ((self.dock, self.seq, event_id, bytes.fromhex(self.prev), bytes.fromhex(h),
                     moment), (self.dock, self.seq, moment, time_, "file.ingested", "dockd",
                               "SN0001", canonical_json(payload).decode()))
            out.append((f"{PREFIX}/{self.site}/{self.dock}/custody", canonical_json(record), rows))
            self.prev = h
            if self.seq % checkpoint_every == 0:
                key = self.signer.public_key_hex
                sig = self.signer.sign(checkpoint_message(self.dock, self.seq, h, time_, key))
                cp = {"v": 1, "dock": self.dock, "seq": self.seq, "hash": h, "time": time_,
                      "public_key": key, "signature": sig}
                out.append((f"{PREFIX}/{self.site}/{self.dock}/checkpoint", canonical_json(cp),
                            ()))
        return out


def _new_db(pg: PostgresServer, docks: list[SimDock]) -> str:
    dsn = pg.new_database()
    conn = connect(dsn)
    migrate(conn, dt.datetime.now(dt.UTC))
    db = LedgerDb(conn)
    for d in docks:
        db.add_dock(d.dock, d.signer.public_key_hex, "bench", site=d.site)
    conn.close()
    return dsn


def _config(base: Path, name: str, dsn: str, broker: MosquittoBroker, **extra: Any) -> Path:
    lines = ["[ledger]", f'database = "{dsn}"', f'share_group = "{SHARE}"',
             "verify_interval_s = 2", "gap_grace_s = 5", *[f"{k} = {v}" for k, v in extra.items()],
             "[ledger.mqtt]", f'broker = "{broker.url}"', "session_expiry_s = 86400"]
    path = base / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DOCKD_CONFIG"}
    env["PYTHONPATH"] = str(REPO)
    return env


def _ledger(config: Path, client_id: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "dockd.cli", "ledger", "run", "--config",
                                 str(config), "--client-id", client_id], stdout=out,
                                stderr=subprocess.STDOUT, env=_env())


def _session(broker: MosquittoBroker, client_id: str) -> None:
    """Create the ledger's persistent shared-subscription session, then leave it offline."""
    from dockd.ledger.consumer import subscriptions

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 86400
    done = threading.Event()
    client.on_subscribe = lambda *a: done.set()
    client.connect("127.0.0.1", broker.port, clean_start=True, properties=props)
    client.loop_start()
    client.subscribe([(t, 1) for t in subscriptions(PREFIX, SHARE)])
    assert done.wait(10)
    client.disconnect()
    client.loop_stop()


def _publish(broker: MosquittoBroker, messages: list[tuple[str, bytes, Any]]) -> float:
    """Publish every message at QoS 1 with ``mosquitto_pub -l`` (C: a Python publisher would
    be the bottleneck of the figure, not the ledger), one thread per topic. At most 60,000
    lines per process: mosquitto_pub stops at EOF once the message id of its last line is
    acknowledged, and ids wrap at 65,535 (a longer run silently drops its tail)."""
    by_topic: dict[str, list[bytes]] = {}
    for topic, payload, _ in messages:
        by_topic.setdefault(topic, []).append(payload)
    failed: list[str] = []

    def send(topic: str, payloads: list[bytes]) -> None:
        for first in range(0, len(payloads), PUB_CHUNK):
            done = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port),
                                   "-V", "mqttv5", "-q", "1", "-t", topic, "-l"],
                                  input=b"\n".join(payloads[first:first + PUB_CHUNK]) + b"\n",
                                  stdout=subprocess.DEVNULL, check=False)
            if done.returncode != 0:
                failed.append(topic)

    start = time.monotonic()
    writers = [threading.Thread(target=send, args=item) for item in by_topic.items()]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    if failed:
        raise SystemExit(f"mosquitto_pub failed for {failed}")
    return time.monotonic() - start


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM custody_chain").fetchone()[0])  # type: ignore[index]


def _bytes_per_record(dsn: str, n: int) -> dict[str, float]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
            " JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = 'public'"
            " AND c.relkind = 'r' AND (c.relname = 'custody_chain' OR c.relname LIKE"
            " 'custody_y%' OR c.relname = 'checkpoints')").fetchall()
    total = sum(r[1] for r in rows)
    return {"total": total / n, **{r[0]: r[1] / n for r in rows if not r[0].startswith("custody_y")},
            "custody (partitions)": sum(r[1] for r in rows if r[0].startswith("custody_y")) / n}


def bench_ingest(base: Path, pg: PostgresServer, docks: list[SimDock], n: int) -> None:
    per = n // len(docks)
    t0 = time.monotonic()
    streams = [d.records(per, start=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)) for d in docks]
    # Interleaved as a bureau's docks publish: one record of each dock in turn.
    messages = [m for group in zip(*streams, strict=True) for m in group]
    print(f"generated {len(messages)} messages ({per * len(docks)} records, "
          f"{len(messages) - per * len(docks)} checkpoints) from {len(docks)} docks in "
          f"{time.monotonic() - t0:.1f} s", flush=True)
    records = per * len(docks)
    copy_rate = bench_copy(pg, docks, messages, records)
    for instances in (1, 2):
        rate, took, dsn = bench_instances(base, pg, docks, messages, records, instances)
        print(f"ingest, {instances} instance(s): {records} records in {took:.1f} s = "
              f"{rate:,.0f} records/s; ratio to bare COPY {rate / copy_rate:.3f}", flush=True)
        if instances == 1:
            sizes = _bytes_per_record(dsn, records)
            print("bytes per record: " + ", ".join(f"{k} {v:.0f}" for k, v in sizes.items()),
                  flush=True)


def bench_copy(pg: PostgresServer, docks: list[SimDock], messages: list[Any],
               records: int) -> float:
    dsn = _new_db(pg, docks)
    conn = connect(dsn)
    from dockd.ledger.db import ensure_partitions, month_of

    ensure_partitions(conn, {month_of(r[2][1][2]) for r in messages if r[2]}, set())
    start = time.monotonic()
    with conn.transaction():
        with conn.cursor().copy("COPY custody_chain (dock, seq, event_id, prev_hash, hash, at)"
                                " FROM STDIN") as copy:
            for _, _, rows in messages:
                if rows:
                    copy.write_row(rows[0])
        with conn.cursor().copy("COPY custody (dock, seq, at, time, type, actor, subject,"
                                " payload) FROM STDIN") as copy:
            for _, _, rows in messages:
                if rows:
                    copy.write_row(rows[1])
    took = time.monotonic() - start
    conn.close()
    rate = records / took
    print(f"bare COPY of the same rows: {records} records in {took:.1f} s = {rate:,.0f} "
          "records/s", flush=True)
    return rate


def bench_instances(base: Path, pg: PostgresServer, docks: list[SimDock], messages: list[Any],
                    records: int, instances: int) -> tuple[float, float, str]:
    broker = MosquittoBroker(base / f"broker-{instances}", persistence=False)
    broker.start()
    try:
        dsn = _new_db(pg, docks)
        config = _config(base, f"ledger-{instances}", dsn, broker, batch_max=1000,
                         receive_maximum=5000, batch_wait_s=0.05)
        ids = [f"bench-ledger-{i}" for i in range(instances)]
        for client_id in ids:
            _session(broker, client_id)
        took_pub = _publish(broker, messages)
        print(f"  backlog of {len(messages)} messages queued by the broker in {took_pub:.1f} s",
              flush=True)
        start = time.monotonic()
        procs = [_ledger(config, c, base / f"{c}-{instances}.log") for c in ids]
        try:
            deadline = time.monotonic() + 1800
            while _count(dsn) < records:
                if any(p.poll() is not None for p in procs):
                    raise SystemExit(f"a ledger instance exited; see {base}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {_count(dsn)} of {records} records after 30 min")
                time.sleep(0.5)
            took = time.monotonic() - start
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(60)
        return records / took, took, dsn
    finally:
        broker.stop()


def bench_latency(base: Path, pg: PostgresServer, n: int) -> None:
    dock = SimDock("dock-lat")
    broker = MosquittoBroker(base / "broker-latency", persistence=False)
    broker.start()
    try:
        dsn = _new_db(pg, [dock])
        config = _config(base, "ledger-latency", dsn, broker)
        proc = _ledger(config, "bench-latency", base / "latency.log")
        while "subscribed" not in (base / "latency.log").read_text():
            time.sleep(0.1)
        messages = [m for m in dock.records(n) if m[2]]
        published: dict[int, float] = {}
        seen: dict[int, float] = {}
        stop = threading.Event()

        def watch() -> None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                last = 0
                while not stop.is_set():
                    top = conn.execute("SELECT coalesce(max(seq), 0) FROM custody_chain"
                                       ).fetchone()[0]  # type: ignore[index]
                    now = time.monotonic()
                    for seq in range(last + 1, int(top) + 1):
                        seen[seq] = now
                    last = max(last, int(top))
                    time.sleep(0.002)

        watcher = threading.Thread(target=watch)
        watcher.start()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        for i, (topic, payload, _) in enumerate(messages, start=1):
            published[i] = time.monotonic()
            client.publish(topic, payload, qos=1)
            time.sleep(0.005)  # ~200 records/s: a busy bureau's live rate, not a backlog
        deadline = time.monotonic() + 60
        while len(seen) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        watcher.join()
        client.disconnect()
        client.loop_stop()
        proc.terminate()
        proc.wait(30)
        lat = sorted((seen[s] - published[s]) * 1000 for s in published if s in seen)
        print(f"latency publish -> committed row, {len(lat)} records at ~200/s: median "
              f"{statistics.median(lat):.1f} ms, p99 {lat[int(len(lat) * 0.99) - 1]:.1f} ms "
              f"(poll resolution 2 ms)", flush=True)
    finally:
        broker.stop()


def bench_web(base: Path, pg: PostgresServer, docks_n: int, per_day: int) -> None:
    docks = [SimDock(f"dock-{i:03d}") for i in range(docks_n)]
    empty = _new_db(pg, [])
    full = _new_db(pg, docks)
    records = docks_n * per_day * 365
    start = time.monotonic()
    _fill_year(full, docks, per_day)
    print(f"web: filled a year of {records:,} records for {docks_n} docks in "
          f"{time.monotonic() - start:.0f} s", flush=True)
    results = {}
    for name, dsn in (("empty", empty), ("year", full)):
        results[name] = _first_render(base, dsn, name)
    ratio = results["year"]["fcp"] / results["empty"]["fcp"]
    print(f"web: overview, first contentful paint in Chromium: empty ledger "
          f"{results['empty']['fcp']:.0f} ms, {docks_n} docks and a year "
          f"{results['year']['fcp']:.0f} ms (ratio {ratio:.2f}); server time to first byte "
          f"{results['empty']['ttfb']:.0f} ms vs {results['year']['ttfb']:.0f} ms", flush=True)


def _fill_year(dsn: str, docks: list[SimDock], per_day: int) -> None:
    """A year of records per dock by COPY (a ledger that has run a year), counters, a
    checkpoint per day, a status and 8 bays per dock."""
    conn = connect(dsn)
    from dockd.ledger.db import ensure_partitions, month_of

    first = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    ensure_partitions(conn, {month_of(first + dt.timedelta(days=d)) for d in range(366)}, set())
    step = 86400 / per_day
    for d in docks:
        msgs = d.records(per_day * 365, checkpoint_every=per_day, start=first, step_s=step)
        with conn.transaction():
            with conn.cursor().copy("COPY custody_chain (dock, seq, event_id, prev_hash, hash,"
                                    " at) FROM STDIN") as copy:
                for m in msgs:
                    if m[2]:
                        copy.write_row(m[2][0])
            with conn.cursor().copy("COPY custody (dock, seq, at, time, type, actor, subject,"
                                    " payload) FROM STDIN") as copy:
                for m in msgs:
                    if m[2]:
                        copy.write_row(m[2][1])
            cps = [judge(PREFIX, t, p, 1 << 20) for t, p, rows in msgs if not rows][-1:]
            LedgerDb(conn)._write_plans({d.dock: _plan_with(cps)},
                                        {d.dock: (d.signer.public_key_hex, 0)},
                                        dt.datetime.now(dt.UTC), "bench", _result())
            conn.execute("UPDATE docks SET records = %s, max_seq = %s, contiguous_to = %s,"
                         " last_record_at = now() WHERE dock = %s",
                         (d.seq, d.seq, d.seq, d.dock))
            status = canonical_json({"v": 1, "dock": d.dock, "site": d.site, "state": "online",
                                     "time": utc_iso(dt.datetime.now(dt.UTC)),
                                     "version": "0.1.0", "public_key": d.signer.public_key_hex,
                                     "store": {"free_bytes": 1, "total_bytes": 2},
                                     "clock_synced": True, "outbox_pending": 0})
            items = [judge(PREFIX, f"{PREFIX}/{d.site}/{d.dock}/status", status, 1 << 20)]
        LedgerDb(conn).apply_batch(items + _bays(d), dt.datetime.now(dt.UTC))
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


def _plan_with(checkpoints: list[Any]) -> Any:
    from dockd.ledger.plan import DockPlan

    return DockPlan(checkpoints=checkpoints)


def _result() -> Any:
    from dockd.ledger.db import BatchResult

    return BatchResult()


def _bays(d: SimDock) -> list[Any]:
    out = []
    for bay in range(1, 9):
        msg = {"v": 1, "dock": d.dock, "bay": bay, "label": f"Bay {bay}",
               "state": "ready" if bay % 4 else "empty", "fault": None, "fault_scope": None,
               "recorder": f"SN{bay:04d}" if bay % 4 else None, "officer": None,
               "battery_percent": 90, "storage_free_bytes": 1, "storage_total_bytes": 2,
               "clock_drift_s": 0.1,
               "progress": {"files_done": 0, "files_total": 0, "bytes_done": 0,
                            "bytes_total": 0, "rate_bytes_per_s": 0.0, "seconds_left": None},
               "updated_at": utc_iso(dt.datetime.now(dt.UTC))}
        out.append(judge(PREFIX, f"{PREFIX}/{d.site}/{d.dock}/bay/{bay}/state",
                         canonical_json(msg), 1 << 20))
    return out


def _first_render(base: Path, dsn: str, name: str) -> dict[str, float]:
    """Median of 5 loads: first contentful paint (Chromium) and time to first byte."""
    import httpx
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from dockd.ledger.web.auth import hash_password

    users = base / f"users-{name}.toml"
    users.write_text(f'[[user]]\nname = "b"\nrole = "audit"\npassword = "{hash_password("bench-pw")}"\n')
    users.chmod(0o600)
    port = free_port()
    config = base / f"web-{name}.toml"
    config.write_text(f'[ledger]\ndatabase = "{dsn}"\n[ledger.mqtt]\nbroker = "mqtt://x:1"\n'
                      f'[ledger.web]\nlisten = "127.0.0.1:{port}"\nusers_file = "{users}"\n'
                      "allow_plain_http = true\n")
    proc = subprocess.Popen([sys.executable, "-m", "dockd.cli", "ledger", "serve", "--config",
                             str(config)], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/?lang=zh_CN"
    auth = ("b", "bench-pw")
    try:
        for _ in range(100):
            try:
                if httpx.get(url, auth=auth, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        ttfb = []
        for _ in range(5):
            t = time.monotonic()
            with httpx.stream("GET", url, auth=auth) as r:
                next(r.iter_raw())
                ttfb.append((time.monotonic() - t) * 1000)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for arg in ("--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                    f"--user-data-dir={base / ('chrome-' + name)}"):
            opts.add_argument(arg)
        os.environ["SE_OFFLINE"] = "true"
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        token = base64.b64encode(b"b:bench-pw").decode()
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                               {"headers": {"Authorization": f"Basic {token}"}})
        fcp = []
        try:
            for _ in range(5):
                driver.get("about:blank")
                driver.get(url)
                value = None
                for _ in range(50):  # the paint entry lands just after the load
                    value = driver.execute_script(
                        "const e = performance.getEntriesByName('first-contentful-paint')[0];"
                        " return e ? e.startTime : null")
                    if value is not None:
                        break
                    time.sleep(0.1)
                if value is None:
                    raise SystemExit("Chromium reported no first-contentful-paint")
                fcp.append(float(value))
        finally:
            driver.quit()
        return {"fcp": statistics.median(fcp), "ttfb": statistics.median(ttfb)}
    finally:
        proc.terminate()
        proc.wait(20)


if __name__ == "__main__":
    main()
