"""``dockd ledger run`` as a real process, between real docks (evidence core + outbox
reporter), a real Mosquitto, a real PostgreSQL and a real WORM archive (SeaweedFS): every
seq ends in the ledger exactly once although PostgreSQL and the broker are SIGKILLed
mid-stream; two instances share the load through an MQTT 5 shared subscription.

A SIGKILLed Mosquitto can lose a message it had already acknowledged to the dock (it
persists on a timer, not before each PUBACK): that seq becomes a gap, and the ledger fills
it from the dock's archived custody segments. Both sources together lose nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dockd.clock import SystemClock
from dockd.config import parse_config
from dockd.report.mqtt.reporter import MqttReporter
from dockd.store.evidence import EvidenceStore, open_store
from tests.conftest import REPO_ROOT, run_dockd
from tests.custody_support import NoteEvent
from tests.ledger_support import ledger_toml
from tests.mqtt_broker import MosquittoBroker, broker  # noqa: F401
from tests.postgres_server import PostgresServer, ledger_dsn, postgres  # noqa: F401
from tests.seaweedfs_server import ACCESS_KEY, SECRET_KEY, SeaweedFS, seaweedfs_fixture  # noqa: F401

FAST = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.3, "poll_interval_s": 0.05}


class Dock:
    """A real dock's custody log and outbox reporter."""

    def __init__(self, root: Path, dock: str, url: str, archive: dict[str, Any]) -> None:
        self.config = parse_config({"dock": {"id": dock, "site": "site-01",
                                             "store_dir": str(root / dock)},
                                    "ingest": {"checkpoint_every": 25},
                                    "mqtt": {"enabled": True, "broker": url, **FAST},
                                    "archive": archive})
        self.id = dock
        self.store: EvidenceStore = open_store(self.config, SystemClock())
        self.key = self.store.custody.signer.public_key_hex
        self.reporter = MqttReporter(self.config, self.config.dock.store_dir, SystemClock(),
                                     self.key)
        self.reporter.start()

    def append(self, n: int, pause_s: float = 0.0) -> None:
        for i in range(n):
            self.store.custody.append(NoteEvent(f"SN{i % 5}", {"i": i}), "tester")
            self.reporter.wake()
            if pause_s:
                time.sleep(pause_s)

    def sync_archive(self) -> None:
        from dockd.records.archive.sync import open_archive, sync_archive

        section, archive = open_archive(self.config)
        sync_archive(self.store, archive, section)

    def close(self) -> None:
        self.reporter.stop()
        self.store.close()


class Ledger:
    """``dockd ledger run`` subprocesses."""

    def __init__(self, config: Path, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, client_id: str) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"{client_id}.log"
        env = {k: v for k, v in os.environ.items() if k != "DOCKD_CONFIG"}
        env["PYTHONPATH"] = str(REPO_ROOT)
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "dockd.cli", "ledger", "run",
                                     "--config", str(self.config), "--client-id", client_id],
                                    stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs.append((proc, log))
        # Its session must exist before the docks publish: what a broker receives before a
        # subscriber's first connection is never queued for it (the archive fills that).
        wait_for(lambda: "subscribed" in log.read_text(errors="replace"), 30,
                 f"{client_id} subscribed")
        return proc

    def stop_all(self) -> list[str]:
        logs = []
        for proc, log in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            logs.append(log.read_text(errors="replace"))
        return logs


@pytest.fixture
def setup(tmp_path: Path, broker: MosquittoBroker, ledger_dsn: str,  # noqa: F811
          seaweedfs: SeaweedFS) -> Iterator[dict[str, Any]]:
    creds = tmp_path / "archive.toml"
    creds.write_text(f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{SECRET_KEY}"\n')
    creds.chmod(0o600)
    archive = {"endpoint_url": seaweedfs.endpoint_url, "bucket": seaweedfs.new_bucket(),
               "credentials_file": str(creds), "connect_timeout_s": 2, "read_timeout_s": 20}
    config = ledger_toml(tmp_path / "ledger.toml", ledger_dsn, broker.url,
                         share_group="ledger", batch_max=50, batch_wait_s=0.02,
                         receive_maximum=200, gap_grace_s=0.0, verify_interval_s=0.2,
                         archive_retry_s=0.0, reconnect_min_s=0.05, reconnect_max_s=0.5)
    # The broker link backs off fast too (the [ledger.mqtt] table takes the dock's keys).
    text = config.read_text() + "reconnect_min_s = 0.05\nreconnect_max_s = 0.3\n"
    text += "[ledger.archive]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in archive.items())
    config.write_text(text)
    docks = [Dock(tmp_path, "dock-a", broker.url, archive),
             Dock(tmp_path, "dock-b", broker.url, archive)]
    ledger = Ledger(config, tmp_path)
    for d in docks:
        done = run_dockd(["ledger", "dock", "add", d.id, "--public-key", d.key, "--site",
                          "site-01", "--config", config])
        assert done.returncode == 0, done.stderr
        assert f"dock {d.id}: enrolled" in done.stdout
    yield {"config": config, "docks": docks, "ledger": ledger, "dsn": ledger_dsn}
    ledger.stop_all()
    for d in docks:
        d.close()


def counts(dsn: str) -> dict[str, tuple[int, int, int]]:
    """Per dock: rows kept, distinct seqs, highest seq (a failed connection reads as {})."""
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            rows = conn.execute("SELECT dock, count(*), count(DISTINCT seq), max(seq)"
                                " FROM custody_chain GROUP BY dock").fetchall()
    except psycopg.OperationalError:
        return {}
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def missing(dsn: str, total: int) -> dict[str, list[int]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT dock, array_agg(seq) FROM custody_chain GROUP BY dock")
        return {r[0]: sorted(set(range(1, total + 1)) - set(r[1])) for r in rows}


def wait_for(predicate: Any, timeout: float, what: str, state: Any = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {state()}")


def test_every_seq_ends_in_the_ledger_exactly_once_through_database_and_broker_crashes(
        setup: dict[str, Any], postgres: PostgresServer, broker: MosquittoBroker  # noqa: F811
) -> None:
    docks: list[Dock] = setup["docks"]
    ledger: Ledger = setup["ledger"]
    dsn = setup["dsn"]
    ledger.start("ledger-1")
    total = 150
    writers = [threading.Thread(target=d.append, args=(total, 0.01)) for d in docks]
    for w in writers:
        w.start()
    wait_for(lambda: sum(c[0] for c in counts(dsn).values()) >= 40, 30, "the first records")
    postgres.kill()  # mid-stream: the ledger holds its batch and stops acknowledging
    time.sleep(1.0)
    postgres.start()
    wait_for(lambda: sum(c[0] for c in counts(dsn).values()) >= 120, 30, "records after the "
             "database came back")
    broker.kill()  # mid-stream again: docks and ledger reconnect, unacked messages come again
    time.sleep(0.5)
    broker.start()
    for w in writers:
        w.join(60)
    for d in docks:  # the docks go on working, and archive what checkpoints cover
        d.append(25)
        d.sync_archive()
    total += 26  # and each sync recorded one custody.archived event
    assert all(d.store.catalog.query_one("SELECT MAX(seq) FROM custody")[0] == total
               for d in docks)
    expected = {d.id: (total, total, total) for d in docks}
    wait_for(lambda: counts(dsn) == expected, 60, "every seq of both docks",
             lambda: missing(dsn, total))
    logs = ledger.stop_all()
    assert "PostgreSQL unavailable" in logs[0]
    assert "lost the broker" in logs[0] or "broker reconnect failed" in logs[0]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM rejected").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM forks").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM alerts WHERE closed_at IS NULL"
                            " AND kind <> 'gap'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 14
        # Whatever MQTT lost came from the archive (and said so when its gap closed).
        filled = conn.execute("SELECT count(*) FROM custody_chain WHERE source = 'archive'"
                              ).fetchone()[0]
        closed = conn.execute("SELECT count(*) FROM alerts WHERE kind = 'gap' AND resolution"
                              " LIKE '%%from archive%%'").fetchone()[0]
        assert (filled == 0) == (closed == 0)
    done = run_dockd(["ledger", "status", "--check", "--config", setup["config"]])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"dock-a: verified; records {total} (seq 1..{total}, verified to {total})" \
        in done.stdout


def test_two_instances_share_the_load_through_a_shared_subscription(
        setup: dict[str, Any]) -> None:
    docks: list[Dock] = setup["docks"]
    ledger: Ledger = setup["ledger"]
    ledger.start("ledger-1")
    ledger.start("ledger-2")
    for d in docks:
        d.append(100)
    expected = {d.id: (100, 100, 100) for d in docks}
    wait_for(lambda: counts(setup["dsn"]) == expected, 60, "every seq of both docks")
    logs = ledger.stop_all()
    committed = [int(re.findall(r"committed=(\d+)", text)[-1]) for text in logs]
    assert all(n > 20 for n in committed), committed  # both did real work
    done = run_dockd(["ledger", "status", "--check", "--config", setup["config"]])
    assert done.returncode == 0, done.stdout + done.stderr
