"""The PostgreSQL edge of the ledger: connect, migrate, write batches, enrol docks.

One :meth:`LedgerDb.apply_batch` call is one transaction: every message of the batch is
written (kept, counted as duplicate, kept as fork evidence, or rejected) or none is. The
MQTT side acknowledges the batch only after this returns. A dock's rows are written under
a transaction-scoped advisory lock on the dock, so instances sharing a subscription see
each other's committed neighbours and never judge the chain on half the rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from dockd.errors import ConfigError, UsageError
from dockd.i18n import Note, _
from dockd.ledger import notes
from dockd.ledger.errors import LedgerUnavailableError
from dockd.ledger.judge import (
    REPLAYED,
    UNKNOWN_DOCK,
    CheckpointIn,
    Judged,
    RecordIn,
    Rejected,
    StateIn,
    reject,
)
from dockd.ledger.plan import (
    ALERT_KEY,
    ALERT_REJECTED,
    ALERT_REPLAYED,
    ALERT_UNKNOWN_DOCK,
    Alert,
    ChainRow,
    DockPlan,
    DockView,
    plan_dock,
)
from dockd.ledger.schema import (
    DDL,
    MIGRATE_V2,
    PARTITIONED,
    REFUSE_CHANGE_BODY,
    SCHEMA_VERSION,
    append_only_ddl,
    append_only_triggers,
)
from dockd.store.custody_check import HEX64, KEY_SHOWN

log = logging.getLogger(__name__)
_MIGRATE_LOCK = 0x646F636B64  # "dockd": one advisory lock id for schema changes


@dataclass
class BatchResult:
    """Counts of one committed batch."""

    kept: int = 0
    duplicates: int = 0
    forks: int = 0
    rejected: int = 0
    checkpoints: int = 0
    states: int = 0
    by_dock: dict[str, int] = field(default_factory=dict)


def connect(dsn: str, password_file: Path | None = None, *,
            application_name: str = "dockd-ledger",
            read_only: bool = False) -> psycopg.Connection[Any]:
    """A connection (autocommit off); LedgerUnavailableError when PostgreSQL is not there.

    ``read_only`` makes every transaction of the session read-only on the server side
    (the supervision page and the reports cannot write, whatever their code does)."""
    kwargs: dict[str, Any] = {"application_name": application_name, "connect_timeout": 10}
    if read_only:
        kwargs["options"] = "-c default_transaction_read_only=on"
    if password_file is not None:
        kwargs["password"] = _read_password(password_file)
    try:
        return psycopg.connect(dsn, **kwargs)
    except psycopg.OperationalError as exc:
        raise LedgerUnavailableError(_("PostgreSQL {dsn} cannot be used: {reason}").format(
            dsn=_safe(dsn), reason=_first_line(exc))) from None


def migrate(conn: psycopg.Connection[Any], now: dt.datetime) -> None:
    """Create or update the tables, and the partitions of this month and the next.

    A schema already at this version, with every append-only trigger as it was made, is left
    alone: every instance migrates when it starts, and altering a table takes a lock that
    deadlocks with instances already writing it (two tables, taken in opposite order). A
    trigger found changed is put back, with a warning (changing one is how rows would be
    changed)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        version = _schema_version(conn)
        changed = _triggers_not_as_made(conn) if version is not None else []
        if version == str(SCHEMA_VERSION) and changed:
            log.warning("append-only triggers missing, disabled or changed: %s; put back",
                        ", ".join(changed), extra={"triggers": changed})
        if version != str(SCHEMA_VERSION) or changed:
            _create_or_update_schema(conn)
    ensure_partitions(conn, [month_of(now), next_month(month_of(now))], set())


def _schema_version(conn: psycopg.Connection[Any]) -> str | None:
    exists = conn.execute("SELECT to_regclass('ledger_meta') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT value FROM ledger_meta WHERE key = 'schema_version'").fetchone()
    return str(row[0]) if row else None


def _triggers_not_as_made(conn: psycopg.Connection[Any]) -> list[str]:
    """The append-only triggers that are missing, disabled, fire on less than they should or
    do not run the refusing function as made."""
    as_made = conn.execute(
        "SELECT t.tgrelid::regclass::text, t.tgname, t.tgtype FROM pg_trigger t"
        " JOIN pg_proc p ON p.oid = t.tgfoid"
        " WHERE t.tgparentid = 0 AND NOT t.tgisinternal AND t.tgenabled <> 'D'"
        " AND p.proname = 'ledger_refuse_change' AND p.prosrc = %s",
        (REFUSE_CHANGE_BODY,)).fetchall()
    found = {(row[0], row[1], row[2]) for row in as_made}
    return [name for table, name, tgtype in append_only_triggers()
            if (table, name, tgtype) not in found]


def _create_or_update_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(DDL)
    conn.execute(MIGRATE_V2)
    conn.execute(append_only_ddl())
    conn.execute("INSERT INTO ledger_meta (key, value) VALUES ('schema_version', %s)"
                 " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                 (str(SCHEMA_VERSION),))


def month_of(moment: dt.datetime) -> dt.date:
    """The first day of ``moment``'s UTC month."""
    moment = moment.astimezone(dt.UTC)
    return dt.date(moment.year, moment.month, 1)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def ensure_partitions(conn: psycopg.Connection[Any], months: Iterable[dt.date],
                      known: set[dt.date]) -> None:
    """Create the monthly partitions of every partitioned table that are missing.

    Each partition in a transaction of its own: creating one locks its parent table
    exclusively, and an instance doing that for two tables at once while another
    instance's batch writes both would deadlock. Existing partitions take no lock at all.
    """
    missing = sorted(set(months) - known)
    for month in missing:
        end = next_month(month)
        for table in PARTITIONED:
            name = f"{table}_y{month.year:04d}m{month.month:02d}"
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
            conn.commit()
            if exists and exists[0]:
                continue
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
                conn.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} FOR VALUES"
                             f" FROM ('{month.isoformat()} 00:00:00+00') TO"
                             f" ('{end.isoformat()} 00:00:00+00')")
        known.add(month)


class LedgerDb:
    """The ledger's writes, on one connection."""

    def __init__(self, conn: psycopg.Connection[Any],
                 replay_after: dt.timedelta = dt.timedelta(hours=1)) -> None:
        self.conn = conn
        self.partitions: set[dt.date] = set()
        self.replay_after = replay_after

    def close(self) -> None:
        self.conn.close()

    # -- batches ---------------------------------------------------------------------

    def apply_batch(self, items: Sequence[Judged], received_at: dt.datetime,
                    source: str = "mqtt") -> BatchResult:
        """Write one batch in one transaction (psycopg.Error propagates: nothing written)."""
        records: dict[str, list[RecordIn]] = defaultdict(list)
        checkpoints: dict[str, list[CheckpointIn]] = defaultdict(list)
        states: list[StateIn] = []
        rejected: list[Rejected] = []
        for item in items:
            if isinstance(item, RecordIn):
                records[item.dock].append(item)
            elif isinstance(item, CheckpointIn):
                checkpoints[item.dock].append(item)
            elif isinstance(item, StateIn):
                states.append(item)
            else:
                rejected.append(item)
        months = {month_of(r.at) for rs in records.values() for r in rs}
        ensure_partitions(self.conn, months | {month_of(received_at)}, self.partitions)
        result = BatchResult()
        with self.conn.transaction():
            chained = sorted(set(records) | set(checkpoints))
            # Sorted: two instances never wait on each other in a cycle. One statement for
            # every dock of the batch (round trips, not rows, are what a batch costs).
            self.conn.execute("SELECT count(pg_advisory_xact_lock(hashtextextended(d, 0)))"
                              " FROM (SELECT d FROM unnest(%s::text[]) d ORDER BY d) s",
                              (chained,))
            docks = self._docks(sorted(set(chained) | {s.dock for s in states}))
            views = self._views(docks, records, checkpoints)
            alerts: list[Alert] = []
            plans = {}
            for dock in chained:
                plans[dock] = plan_dock(views[dock], records[dock], checkpoints[dock],
                                        received_at, self.replay_after)
                rejected += plans[dock].rejected
                alerts += plans[dock].alerts
            self._write_plans(plans, docks, received_at, source, result)
            for state in states:
                key = docks[state.dock][0] if state.dock in docks else None
                self._state(state, key, received_at, rejected, alerts, result)
            self._write_rejected(rejected, received_at, alerts)
            result.rejected = len(rejected)
            self.write_alerts(alerts, received_at)
        return result

    def _docks(self, docks: list[str]) -> dict[str, tuple[str, int]]:
        """Enrolled docks among ``docks``: public key and verified-to mark."""
        if not docks:
            return {}
        rows = self.conn.execute("SELECT dock, public_key, contiguous_to FROM docks"
                                 " WHERE dock = ANY(%s)", (docks,)).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def _views(self, docks: dict[str, tuple[str, int]], records: dict[str, list[RecordIn]],
               checkpoints: dict[str, list[CheckpointIn]]) -> dict[str, DockView]:
        """What is kept around the batch's seqs, for every dock, in three queries."""
        views = {d: DockView(d, docks[d][0] if d in docks else None)
                 for d in set(records) | set(checkpoints)}
        near: set[tuple[str, int]] = set()
        pins: set[tuple[str, int]] = set()
        ids: list[tuple[str, str]] = []
        for dock, view in views.items():
            if view.enrolled_key is None:
                continue
            for r in records.get(dock, []):
                near |= {(dock, r.seq - 1), (dock, r.seq), (dock, r.seq + 1)}
                pins |= {(dock, r.seq - 1), (dock, r.seq)}
                ids.append((dock, r.event_id))
            for c in checkpoints.get(dock, []):
                near |= {(dock, c.checkpoint.seq), (dock, c.checkpoint.seq + 1)}
                pins.add((dock, c.checkpoint.seq))
        if near:
            for dock, seq, event_id, prev_hash, hash_, kept_at in self.conn.execute(
                    "SELECT c.dock, c.seq, c.event_id::text, c.prev_hash, c.hash, c.received_at"
                    " FROM unnest(%s::text[], %s::bigint[]) AS k(dock, seq)"
                    " JOIN custody_chain c ON c.dock = k.dock AND c.seq = k.seq",
                    ([d for d, _ in near], [q for _, q in near])):
                views[dock].rows[seq] = ChainRow(seq, event_id, bytes(prev_hash).hex(),
                                                 bytes(hash_).hex(), kept_at)
        if ids:
            for dock, event_id, seq in self.conn.execute(
                    "SELECT c.dock, c.event_id::text, c.seq"
                    " FROM unnest(%s::text[], %s::uuid[]) AS k(dock, event_id)"
                    " JOIN custody_chain c ON c.dock = k.dock AND c.event_id = k.event_id",
                    ([d for d, _ in ids], [e for _, e in ids])):
                views[dock].event_ids[event_id] = seq
        if pins:
            for dock, seq, hash_ in self.conn.execute(
                    "SELECT c.dock, c.seq, c.hash FROM unnest(%s::text[], %s::bigint[])"
                    " AS k(dock, seq) JOIN checkpoints c ON c.dock = k.dock AND c.seq = k.seq",
                    ([d for d, _ in pins], [q for _, q in pins])):
                views[dock].checkpoints[seq] = bytes(hash_).hex()
        return views

    def _write_plans(self, plans: dict[str, DockPlan], docks: dict[str, tuple[str, int]],
                     received_at: dt.datetime, source: str, result: BatchResult) -> None:
        """Every dock's writes: one COPY per table, one statement per other kind of row."""
        inserts = [r for plan in plans.values() for r in plan.inserts]
        if inserts:
            with self.conn.cursor().copy(
                    "COPY custody_chain (dock, seq, event_id, prev_hash, hash, at, received_at,"
                    " source) FROM STDIN") as copy:
                for r in inserts:
                    copy.write_row((r.dock, r.seq, r.event_id, bytes.fromhex(r.prev_hash),
                                    bytes.fromhex(r.hash), r.at, received_at, source))
            with self.conn.cursor().copy(
                    "COPY custody (dock, seq, at, time, type, actor, subject, payload)"
                    " FROM STDIN") as copy:
                for r in inserts:
                    copy.write_row((r.dock, r.seq, r.at, r.time, r.type, r.actor, r.subject,
                                    r.payload_json))
        cps = [c for plan in plans.values() for c in plan.checkpoints]
        if cps:
            self.conn.cursor().executemany(
                "INSERT INTO checkpoints (dock, seq, hash, time, public_key, signature,"
                " received_at, source) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (dock, seq) DO NOTHING",
                [(c.dock, c.checkpoint.seq, bytes.fromhex(c.checkpoint.hash), c.checkpoint.time,
                  c.checkpoint.public_key, c.checkpoint.signature, received_at, source)
                 for c in cps])
        forks = [f for plan in plans.values() for f in plan.forks]
        if forks:
            self.conn.cursor().executemany(
                "INSERT INTO forks (dock, seq, kind, reason, reason_note, body, topic,"
                " received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(f.dock, f.seq, f.kind, str(f.reason), note_json(f.reason), f.body, f.topic,
                  received_at) for f in forks])
        counters = []
        for dock, plan in plans.items():
            if not (plan.inserts or plan.checkpoints or plan.duplicates):
                continue
            inserted = {r.seq for r in plan.inserts}
            contiguous = docks[dock][1] if dock in docks else 0
            while contiguous + 1 in inserted:
                contiguous += 1
            counters.append((dock, max(inserted, default=0), len(plan.inserts), plan.duplicates,
                             contiguous, bool(plan.inserts),
                             max((c.checkpoint.seq for c in plan.checkpoints), default=None)))
            result.kept += len(plan.inserts)
            result.duplicates += plan.duplicates
            result.checkpoints += len(plan.checkpoints)
            if plan.inserts:
                result.by_dock[dock] = result.by_dock.get(dock, 0) + len(plan.inserts)
        result.forks += len(forks)
        if counters:
            self.conn.execute(
                "UPDATE docks SET max_seq = greatest(docks.max_seq, u.max_seq),"
                " records = docks.records + u.kept, duplicates = docks.duplicates + u.dups,"
                " contiguous_to = greatest(docks.contiguous_to, u.contiguous),"
                " last_record_at = CASE WHEN u.any_kept THEN %s ELSE docks.last_record_at END,"
                " last_checkpoint_seq = greatest(docks.last_checkpoint_seq, u.cp)"
                " FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[],"
                " %s::bigint[], %s::boolean[], %s::bigint[])"
                " AS u(dock, max_seq, kept, dups, contiguous, any_kept, cp)"
                " WHERE docks.dock = u.dock",
                (received_at, *[list(col) for col in zip(*counters, strict=True)]))

    # -- status, bays, health, the docks' own alerts ----------------------------------

    def _state(self, s: StateIn, key: str | None, received_at: dt.datetime,
               rejected: list[Rejected], alerts: list[Alert], result: BatchResult) -> None:
        if key is None:
            rejected.append(reject(UNKNOWN_DOCK, notes.NOT_ENROLLED(dock=s.dock), s.topic,
                                   s.dock, None, s.raw))
            alerts.append(Alert(s.dock, ALERT_UNKNOWN_DOCK, "",
                                notes.FROM_UNENROLLED(dock=s.dock)))
            return
        m = s.message
        stale = self._stale(s)
        if stale is not None:
            rejected.append(reject(REPLAYED, stale, s.topic, s.dock, None, s.raw))
            alerts.append(Alert(s.dock, ALERT_REPLAYED, s.kind, stale))
            return
        result.states += 1
        if s.kind == "status":
            if m["public_key"] != key:
                alerts.append(Alert(s.dock, ALERT_KEY, m["public_key"],
                                    notes.STATUS_KEY(key=m["public_key"][:KEY_SHOWN],
                                                     expected=key[:KEY_SHOWN])))
            self.conn.execute(
                "INSERT INTO dock_status (dock, site, state, time, public_key, message,"
                " received_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (dock) DO UPDATE"
                " SET site = EXCLUDED.site, state = EXCLUDED.state, time = EXCLUDED.time,"
                " public_key = EXCLUDED.public_key, message = EXCLUDED.message,"
                " received_at = EXCLUDED.received_at",
                (s.dock, s.site, m["state"], m["time"], m["public_key"], Jsonb(m), received_at))
            self.conn.execute("UPDATE docks SET site = %s WHERE dock = %s", (s.site, s.dock))
        elif s.kind == "bay":
            self.conn.execute(
                "INSERT INTO bay_states (dock, bay, state, fault, recorder, officer, updated_at,"
                " message, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (dock, bay) DO UPDATE SET state = EXCLUDED.state,"
                " fault = EXCLUDED.fault, recorder = EXCLUDED.recorder,"
                " officer = EXCLUDED.officer, updated_at = EXCLUDED.updated_at,"
                " message = EXCLUDED.message, received_at = EXCLUDED.received_at",
                (s.dock, m["bay"], m["state"], m["fault"], m["recorder"], m["officer"],
                 m["updated_at"], Jsonb(m), received_at))
        elif s.kind == "health":
            self.conn.execute(
                "INSERT INTO recorder_health (dock, recorder, last_docked, message, received_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (dock, recorder) DO UPDATE SET"
                " last_docked = EXCLUDED.last_docked, message = EXCLUDED.message,"
                " received_at = EXCLUDED.received_at",
                (s.dock, m["recorder"], m["last_docked"], Jsonb(m), received_at))
        else:
            from dockd.ledger.judge import parse_record_time

            at = parse_record_time(m["time"]) or received_at
            self.conn.execute(
                "INSERT INTO dock_alerts (dock, body_sha256, time, at, reason, bay, recorder,"
                " detail, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (s.dock, hashlib.sha256(s.raw).digest(), m["time"], at, m["reason"], m["bay"],
                 m["recorder"], m.get("detail") or "", received_at))

    def _stale(self, s: StateIn) -> Note | None:
        """Why a state message is an old one replayed (older than the one kept)."""
        if s.kind == "status":
            row = self.conn.execute("SELECT time FROM dock_status WHERE dock = %s",
                                    (s.dock,)).fetchone()
            new = s.message["time"]
        elif s.kind == "bay":
            row = self.conn.execute("SELECT updated_at FROM bay_states WHERE dock = %s AND"
                                    " bay = %s", (s.dock, s.message["bay"])).fetchone()
            new = s.message["updated_at"]
        elif s.kind == "health":
            row = self.conn.execute("SELECT last_docked FROM recorder_health WHERE dock = %s"
                                    " AND recorder = %s", (s.dock, s.key)).fetchone()
            new = s.message["last_docked"]
        else:
            return None
        old = row[0] if row else None
        if old is None or new is None or _instant(new) is None or _instant(old) is None:
            return None
        if _instant(new) < _instant(old):  # type: ignore[operator]
            if s.kind == "status":
                return notes.STALE_STATUS(new=new, old=old)
            if s.kind == "bay":
                return notes.STALE_BAY(bay=s.message["bay"], new=new, old=old)
            return notes.STALE_HEALTH(recorder=s.key, new=new, old=old)
        return None

    # -- rejected messages and alerts -----------------------------------------------------

    def _write_rejected(self, rejected: list[Rejected], received_at: dt.datetime,
                        alerts: list[Alert]) -> None:
        if not rejected:
            return
        self.conn.cursor().executemany(
            "INSERT INTO rejected (received_at, topic, dock, seq, code, reason, reason_note,"
            " payload, payload_bytes, payload_sha256)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(received_at, _clean(r.topic), r.dock, r.seq, r.code, _clean(str(r.reason)),
              note_json(r.reason), r.payload, r.payload_bytes, r.payload_sha256)
             for r in rejected])
        for r in rejected:
            if r.code in (UNKNOWN_DOCK, REPLAYED) or r.code.startswith(("key_", "bad_")):
                continue  # these already raised their own kind of alert
            alerts.append(Alert(r.dock, ALERT_REJECTED, r.code,
                                notes.REJECTED(code=notes.code_word(r.code), reason=r.reason,
                                               topic=_clean(r.topic)[:120]), r.seq, r.seq))

    def write_alerts(self, alerts: list[Alert], now: dt.datetime) -> None:
        """Open each alert, or count it again when the same one is open."""
        if not alerts:
            return
        self.conn.cursor().executemany(
            "INSERT INTO alerts (dock, kind, key, detail, detail_note, seq_from, seq_to,"
            " first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (coalesce(dock, ''), kind, key) WHERE closed_at IS NULL"
            # A gap is re-asserted by every pass; it counts once (the others count arrivals).
            " DO UPDATE SET count = alerts.count + (alerts.kind <> 'gap')::int,"
            " last_seen = EXCLUDED.last_seen,"
            " detail = EXCLUDED.detail, detail_note = EXCLUDED.detail_note",
            [(a.dock, a.kind, a.key, _clean(str(a.detail))[:2000], note_json(a.detail),
              a.seq_from, a.seq_to, now, now) for a in alerts])

    # -- enrolment -------------------------------------------------------------------

    def add_dock(self, dock: str, public_key: str, by: str, *, site: str | None = None,
                 archive_prefix: str | None = None, note: str = "",
                 replace: bool = False) -> bool:
        """Enrol ``dock`` with ``public_key``; True when the key is new or changed.

        A dock already enrolled with another key is refused unless ``replace``: a new key
        is a security event an administrator decides, never something the ledger learns.
        """
        if not HEX64.match(public_key):
            raise UsageError(_("--public-key: expected 64 lower-case hex digits (the dock's "
                               "`dockd key show`)"))
        with self.conn.transaction():
            row = self.conn.execute("SELECT public_key FROM docks WHERE dock = %s FOR UPDATE",
                                    (dock,)).fetchone()
            if row is not None and row[0] == public_key:
                self.conn.execute("UPDATE docks SET site = coalesce(%s, site), archive_prefix ="
                                  " coalesce(%s, archive_prefix), note = %s WHERE dock = %s",
                                  (site, archive_prefix, note, dock))
                return False
            if row is not None and not replace:
                raise UsageError(_("dock {dock} is enrolled with another key ({key}…); give "
                                   "--replace to enrol the new one").format(
                                       dock=dock, key=row[0][:16]))
            if row is None:
                self.conn.execute("INSERT INTO docks (dock, public_key, site, archive_prefix,"
                                  " enrolled_by, note) VALUES (%s, %s, %s, %s, %s, %s)",
                                  (dock, public_key, site, archive_prefix, by, note))
            else:
                self.conn.execute("UPDATE dock_keys SET replaced_at = now() WHERE dock = %s"
                                  " AND replaced_at IS NULL", (dock,))
                self.conn.execute("UPDATE docks SET public_key = %s, enrolled_at = now(),"
                                  " enrolled_by = %s WHERE dock = %s", (public_key, by, dock))
            self.conn.execute("INSERT INTO dock_keys (dock, public_key, enrolled_by)"
                              " VALUES (%s, %s, %s)", (dock, public_key, by))
        return True

    def rejected_for_replay(self, dock: str) -> list[tuple[str, bytes]]:
        """Messages of ``dock`` rejected because it was not enrolled, oldest first."""
        rows = self.conn.execute(
            "SELECT topic, payload FROM rejected WHERE dock = %s AND code = %s"
            " AND payload_bytes = length(payload) ORDER BY received_at, id",
            (dock, UNKNOWN_DOCK)).fetchall()
        self.conn.commit()
        return [(r[0], bytes(r[1])) for r in rows]

    def close_alerts(self, dock: str, kind: str, resolution: str, now: dt.datetime) -> None:
        with self.conn.transaction():
            self.conn.execute("UPDATE alerts SET closed_at = %s, resolution = %s WHERE dock = %s"
                              " AND kind = %s AND closed_at IS NULL", (now, resolution, dock, kind))


def note_json(note: Note) -> Jsonb:
    """A Note as its JSON column (NUL, which PostgreSQL text cannot hold, escaped)."""
    return Jsonb(_cleaned(note.to_json()))


def _cleaned(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {_clean(str(k)): _cleaned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cleaned(v) for v in value]
    return value


def _instant(text: object) -> dt.datetime | None:
    from dockd.ledger.judge import parse_record_time

    return parse_record_time(text) if isinstance(text, str) else None


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL, nor UTF-8 a lone surrogate; a hostile topic or value
    # must still be stored.
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _read_password(path: Path) -> str:
    try:
        return path.read_text("utf-8").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        raise ConfigError(_("ledger.database_password_file: {path} cannot be read or is "
                            "empty").format(path=path)) from None


def _safe(dsn: str) -> str:
    """The DSN without any password, for messages."""
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        user, host = rest.split("@", 1)
        return f"{scheme}://{user.split(':')[0]}@{host}"
    return dsn


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
