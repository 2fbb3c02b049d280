"""Gaps: seqs a dock wrote (a later seq, or a signed checkpoint, says so) that the ledger
does not hold.

Worked out every ``verify_interval_s`` for the docks whose chain is not contiguous up to
what they are known to have written; a hole becomes an open ``gap`` alert once the record
after it has been there ``gap_grace_s`` (instances sharing a subscription commit in any
order, so a young hole is usually a record another instance is about to commit). When a
hole closes — the record came late over MQTT, or was filled from the archive — its alert
is closed with what filled it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockd.ledger import notes
from dockd.ledger.db import LedgerDb, note_json
from dockd.ledger.plan import ALERT_GAP, Alert
from dockd.store.custody_check import range_note

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hole:
    """Seqs ``lo``..``hi`` missing; ``since`` = when the record after them arrived."""

    lo: int
    hi: int
    since: dt.datetime | None

    @property
    def key(self) -> str:
        return f"{self.lo}-{self.hi}"


def holes_in(rows: list[tuple[int, dt.datetime | None]], start: int,
             expected_to: int, expected_since: dt.datetime | None) -> list[Hole]:
    """The holes above ``start`` in sorted ``(seq, received_at)`` rows (all above
    ``start``), up to ``expected_to`` (the tail hole dates from ``expected_since``)."""
    out: list[Hole] = []
    previous = start
    for seq, received in rows:
        if seq > previous + 1:
            out.append(Hole(previous + 1, seq - 1, received))
        previous = max(previous, seq)
    if expected_to > previous:
        out.append(Hole(previous + 1, expected_to, expected_since))
    return out


# Fills a hole of a dock from elsewhere (the archive); returns how many seqs it filled.
Filler = Callable[[LedgerDb, str, Hole], int]


class GapKeeper:
    """The periodic pass over docks whose chain has holes."""

    def __init__(self, db: LedgerDb, grace_s: float, filler: Filler | None = None,
                 retry_s: float = 300.0) -> None:
        self.db = db
        self.grace = dt.timedelta(seconds=grace_s)
        self.filler = filler
        self.retry = dt.timedelta(seconds=retry_s)

    def run(self, now: dt.datetime) -> dict[str, list[Hole]]:
        """One pass; the holes of every dock that has any."""
        conn = self.db.conn
        docks = conn.execute(
            "SELECT dock, contiguous_to, greatest(max_seq, coalesce(last_checkpoint_seq, 0))"
            " FROM docks WHERE contiguous_to < greatest(max_seq, coalesce(last_checkpoint_seq,"
            " 0)) OR EXISTS (SELECT 1 FROM alerts a WHERE a.dock = docks.dock AND a.kind = %s"
            " AND a.closed_at IS NULL) ORDER BY dock", (ALERT_GAP,)).fetchall()
        conn.commit()
        found: dict[str, list[Hole]] = {}
        for dock, contiguous, expected in docks:
            holes = self.check_dock(dock, contiguous, expected, now)
            if holes and self.filler is not None and self._fill(dock, holes, now):
                holes = self.check_dock(dock, contiguous, expected, now)
            if holes:
                found[dock] = holes
        return found

    def check_dock(self, dock: str, contiguous: int, expected: int,
                   now: dt.datetime) -> list[Hole]:
        """Holes of one dock; move its verified-to mark; open and close its gap alerts."""
        conn = self.db.conn
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (dock,))
            rows = conn.execute("SELECT seq, received_at FROM custody_chain WHERE dock = %s"
                                " AND seq > %s ORDER BY seq", (dock, contiguous)).fetchall()
            cp = conn.execute("SELECT received_at FROM checkpoints WHERE dock = %s"
                              " ORDER BY seq DESC LIMIT 1", (dock,)).fetchone()
            holes = holes_in([(r[0], r[1]) for r in rows], contiguous, expected,
                             cp[0] if cp else None)
            verified_to = holes[0].lo - 1 if holes else max([contiguous, *[r[0] for r in rows]])
            conn.execute("UPDATE docks SET contiguous_to = greatest(contiguous_to, %s),"
                         " verified_at = %s WHERE dock = %s", (verified_to, now, dock))
            due = [h for h in holes if h.since is None or now - h.since >= self.grace]
            self._close_stale(dock, {h.key for h in holes}, holes, now)
            self.db.write_alerts([Alert(dock, ALERT_GAP, h.key,
                                        notes.GAP(range=range_note(h.lo, h.hi)), h.lo, h.hi)
                                  for h in due], now)
        return holes

    def _close_stale(self, dock: str, current: set[str], holes: list[Hole],
                     now: dt.datetime) -> None:
        conn = self.db.conn
        for alert_id, key, lo, hi in conn.execute(
                "SELECT id, key, seq_from, seq_to FROM alerts WHERE dock = %s AND kind = %s"
                " AND closed_at IS NULL", (dock, ALERT_GAP)).fetchall():
            if key in current:
                continue
            still = [h for h in holes if h.lo <= hi and h.hi >= lo]
            sources = conn.execute("SELECT source, count(*) FROM custody_chain WHERE dock = %s"
                                   " AND seq BETWEEN %s AND %s GROUP BY source ORDER BY source",
                                   (dock, lo, hi)).fetchall()
            filled = [notes.FILLED_FROM(count=n, source=src) for src, n in sources]
            note = (notes.FILLED(filled=filled) if not still else
                    notes.PARTLY_FILLED(filled=filled,
                                        missing=[range_note(h.lo, h.hi) for h in still]))
            conn.execute("UPDATE alerts SET closed_at = %s, resolution = %s, resolution_note = %s"
                         " WHERE id = %s", (now, str(note), note_json(note), alert_id))

    def _fill(self, dock: str, holes: list[Hole], now: dt.datetime) -> bool:
        assert self.filler is not None
        conn = self.db.conn
        tried: dict[str, Any] = {r[0]: r[1] for r in conn.execute(
            "SELECT key, fill_tried_at FROM alerts WHERE dock = %s AND kind = %s"
            " AND closed_at IS NULL", (dock, ALERT_GAP)).fetchall()}
        conn.commit()
        filled = 0
        for hole in holes:
            if hole.key not in tried:
                continue  # not an alert yet (within the grace period)
            last = tried[hole.key]
            if last is not None and now - last < self.retry:
                continue
            filled += self.filler(self.db, dock, hole)
            with conn.transaction():
                conn.execute("UPDATE alerts SET fill_tried_at = %s WHERE dock = %s AND kind = %s"
                             " AND key = %s AND closed_at IS NULL",
                             (now, dock, ALERT_GAP, hole.key))
        return filled > 0
