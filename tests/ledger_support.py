"""Helpers of the ledger tests: genuine dock streams from the real evidence core, forged
variants, a ledger config, and a publisher."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockd.clock import SystemClock, utc_iso
from dockd.config import parse_config
from dockd.ledger.db import LedgerDb, connect, migrate
from dockd.store.canonical import canonical_json
from dockd.store.custody import record_hash
from dockd.store.evidence import open_store
from tests.custody_support import RawEvent

PREFIX = "dockd"


@dataclass(frozen=True)
class DockStream:
    """What a dock publishes on custody/checkpoint/status, as the outbox holds it."""

    dock: str
    site: str
    records: list[bytes]
    checkpoints: list[bytes]
    key: str
    store_dir: Path

    def topic(self, kind: str) -> str:
        return f"{PREFIX}/{self.site}/{self.dock}/{kind}"

    def record(self, seq: int) -> dict[str, Any]:
        return dict(json.loads(self.records[seq - 1]))

    def status(self, time: str | None = None, key: str | None = None,
               state: str = "online") -> bytes:
        return canonical_json({"v": 1, "dock": self.dock, "site": self.site, "state": state,
                               "time": time or utc_iso(SystemClock().now()), "version": "0.1.0",
                               "public_key": key or self.key,
                               "store": {"free_bytes": 1, "total_bytes": 2},
                               "clock_synced": True, "outbox_pending": 0})

    def messages(self) -> list[tuple[str, bytes]]:
        """Records then checkpoints, as (topic, payload)."""
        return [(self.topic("custody"), r) for r in self.records] + \
               [(self.topic("checkpoint"), c) for c in self.checkpoints]


def make_stream(root: Path, dock: str, count: int, checkpoint_every: int = 5,
                site: str = "site-01") -> DockStream:
    """``count`` custody records of a real store (real Ed25519 key, real chain)."""
    config = parse_config({"dock": {"id": dock, "site": site, "store_dir": str(root)},
                           "ingest": {"checkpoint_every": checkpoint_every}})
    store = open_store(config, SystemClock())
    try:
        for i in range(count):
            kind = "recorder.docked" if i % 3 == 0 else "test.event"
            store.custody.append(RawEvent(kind, f"SN{i % 4:04d}", {"i": i, "名": "证据"}),
                                 "tester")
        rows = store.catalog.query("SELECT kind, payload FROM outbox ORDER BY id")
        key = store.custody.signer.public_key_hex
    finally:
        store.close()
    return DockStream(dock, site, [r["payload"].encode() for r in rows if r["kind"] == "custody"],
                      [r["payload"].encode() for r in rows if r["kind"] == "checkpoint"], key,
                      root)


def rehashed(record: dict[str, Any], **changes: Any) -> bytes:
    """``record`` with ``changes`` and a correct self-hash (a forger who knows the format)."""
    r = {**record, **changes}
    r["hash"] = record_hash(r["dock"], r["seq"], r["event_id"], r["time"], r["type"], r["actor"],
                            r["subject"], r["payload"], r["prev_hash"])
    return canonical_json(r)


def open_db(dsn: str) -> LedgerDb:
    conn = connect(dsn)
    migrate(conn, SystemClock().now())
    return LedgerDb(conn)


def ledger_toml(path: Path, dsn: str, broker_url: str, **ledger: Any) -> Path:
    """A ledger config file."""
    lines = ["[ledger]", f'database = "{dsn}"']
    web = ledger.pop("web", None)
    for key, value in ledger.items():
        lines.append(f"{key} = {json.dumps(value)}")
    lines += ["[ledger.mqtt]", f'broker = "{broker_url}"']
    if web:
        lines.append("[ledger.web]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in web.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
