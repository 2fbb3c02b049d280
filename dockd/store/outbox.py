"""The durable MQTT outbox: rows written in the transaction of what they report, read and
marked sent by the publisher.

A custody record, a checkpoint or an alert is put in the outbox in the same transaction as
the change it reports (:func:`enqueue`, :func:`enqueue_alert`), so nothing is logged without
being reported, or reported without being logged. The publisher (dockd/report/mqtt) reads
pending rows in id order (:class:`Outbox`) and sets ``sent_at`` once the broker acknowledged
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dockd.store.canonical import JsonObject, canonical_json
from dockd.store.catalog import Catalog, Transaction, catalog_path

PAYLOAD_VERSION = 1
"""Version of the topic tree's JSON payloads (``"v"``)."""

# SQLite's default limit on host parameters is 999 on old builds; stay well under it.
_MARK_BATCH = 500


def enqueue(tx: Transaction, kind: str, topic: str, payload: JsonObject, *, ref_seq: int | None,
            qos: int, retain: bool, created_at: str) -> None:
    """Put one message in the outbox, in the caller's transaction."""
    tx.execute("INSERT INTO outbox (kind, ref_seq, topic, payload, qos, retain, created_at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?)",
               (kind, ref_seq, topic, canonical_json(payload).decode(), qos, int(retain),
                created_at))


def enqueue_encoded(tx: Transaction, kind: str, topic: str,
                    messages: Sequence[tuple[int | None, str, str]], *, qos: int,
                    retain: bool) -> None:
    """Put many messages in the outbox in one statement, each (ref_seq, payload already in
    canonical JSON, created_at): for a batch of custody records."""
    tx.conn.executemany(
        "INSERT INTO outbox (kind, ref_seq, topic, payload, qos, retain, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(kind, ref_seq, topic, text, qos, int(retain), created_at)
         for ref_seq, text, created_at in messages])


def alert_payload(dock: str, time: str, reason: str, *, bay: int | None = None,
                  recorder: str | None = None, detail: str = "") -> JsonObject:
    """``…/alert``: a fault to be seen at once (art. 5(6)); ``reason`` is a FaultReason
    value or ``outbox_backlog``."""
    return {"v": PAYLOAD_VERSION, "dock": dock, "time": time, "reason": reason, "bay": bay,
            "recorder": recorder, "detail": detail}


def enqueue_alert(tx: Transaction, dock: str, time: str, reason: str, *, bay: int | None = None,
                  recorder: str | None = None, detail: str = "") -> None:
    """Put an alert in the outbox inside the caller's transaction."""
    enqueue(tx, "alert", "alert", alert_payload(dock, time, reason, bay=bay, recorder=recorder,
                                                 detail=detail),
            ref_seq=None, qos=1, retain=False, created_at=time)


def pending_count(catalog: Catalog) -> int:
    """How many rows still wait for a PUBACK."""
    row = catalog.query_one("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class OutboxRow:
    """One message waiting for the broker."""

    id: int
    kind: str
    ref_seq: int | None
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    """Reads pending rows and marks them sent, on a connection of its own (one thread)."""

    def __init__(self, store_dir: Path) -> None:
        self.catalog = Catalog(catalog_path(store_dir))
        # Only sent_at is written here. Losing a mark to a power cut just re-sends the row
        # (a duplicate consumers already expect), so these commits need not wait for fsync;
        # WAL keeps the database consistent either way. The core's own connection stays FULL.
        self.catalog.conn.execute("PRAGMA synchronous=NORMAL")
        self._data_version = self._read_data_version()

    def pending(self, after_id: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` unsent rows with id above ``after_id``, lowest id first."""
        rows = self.catalog.query(
            "SELECT id, kind, ref_seq, topic, payload, qos, retain FROM outbox"
            " WHERE sent_at IS NULL AND id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [OutboxRow(r["id"], r["kind"], r["ref_seq"], r["topic"],
                          r["payload"].encode("utf-8"), int(r["qos"]), bool(r["retain"]))
                for r in rows]

    def mark_sent(self, ids: Sequence[int], sent_at: str) -> None:
        """Set ``sent_at`` on ``ids`` (already-sent rows keep their first time)."""
        with self.catalog.transaction() as tx:
            for start in range(0, len(ids), _MARK_BATCH):
                chunk = list(ids[start:start + _MARK_BATCH])
                marks = ",".join("?" * len(chunk))
                tx.execute(f"UPDATE outbox SET sent_at = ? WHERE sent_at IS NULL AND id IN ({marks})",
                           (sent_at, *chunk))

    def pending_count(self) -> int:
        """How many rows still wait for a PUBACK."""
        return pending_count(self.catalog)

    def changed(self) -> bool:
        """True when another connection committed since the last call (cheap: no table read)."""
        version = self._read_data_version()
        if version != self._data_version:
            self._data_version = version
            return True
        return False

    def close(self) -> None:
        self.catalog.close()

    def _read_data_version(self) -> int:
        row = self.catalog.query_one("PRAGMA data_version")
        return int(row[0]) if row else 0
