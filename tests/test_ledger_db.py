"""The ledger's core against a real PostgreSQL: idempotent keeping, forks kept as evidence,
the enrolled key, rejected input, gaps, append-only tables. Records come from the real
evidence core (real chain, real Ed25519 signatures)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.clock import SystemClock
from dockd.errors import UsageError
from dockd.ledger.db import LedgerDb, migrate
from dockd.ledger.gaps import GapKeeper, holes_in
from dockd.ledger.judge import EVIDENCE_BYTES, RecordIn, judge
from dockd.ledger.notes import shown
from dockd.ledger.queries import open_alerts
from dockd.ledger.schema import DDL
from dockd.ledger.words import words
from dockd.store.canonical import canonical_json
from tests.ledger_support import PREFIX, DockStream, make_stream, open_db, rehashed
from tests.postgres_server import PostgresServer, ledger_dsn, postgres  # noqa: F401

MAX = 256 << 10


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> DockStream:
    return make_stream(tmp_path_factory.mktemp("dock"), "dock-01", 12, checkpoint_every=5)


@pytest.fixture
def db(ledger_dsn: str) -> LedgerDb:  # noqa: F811
    return open_db(ledger_dsn)


def feed(db: LedgerDb, messages: list[tuple[str, bytes]]) -> None:
    db.apply_batch([judge(PREFIX, t, p, MAX) for t, p in messages], SystemClock().now())


def one(db: LedgerDb, sql: str, *params: object) -> object:
    row = db.conn.execute(sql, params).fetchone()
    db.conn.commit()
    return row[0] if row else None


def alerts(db: LedgerDb) -> list[tuple[str, str, str]]:
    rows = db.conn.execute("SELECT kind, key, detail FROM alerts WHERE closed_at IS NULL"
                           " ORDER BY id").fetchall()
    db.conn.commit()
    return [(r[0], r[1], r[2]) for r in rows]


def enrol(db: LedgerDb, s: DockStream) -> None:
    db.add_dock(s.dock, s.key, "test", site=s.site)


def test_every_record_is_kept_once_whatever_the_order_and_repeats(db: LedgerDb,
                                                                   stream: DockStream) -> None:
    enrol(db, stream)
    messages = stream.messages() * 2
    random.Random(7).shuffle(messages)
    for i in range(0, len(messages), 5):  # several batches, out of order, each twice
        feed(db, messages[i:i + 5])
    assert one(db, "SELECT count(*) FROM custody_chain") == 12
    assert one(db, "SELECT count(*) FROM custody") == 12
    assert one(db, "SELECT count(*) FROM checkpoints") == 2
    assert one(db, "SELECT duplicates FROM docks") == 14
    GapKeeper(db, grace_s=0).run(SystemClock().now())
    assert one(db, "SELECT contiguous_to FROM docks") == 12
    assert alerts(db) == []
    # What is kept hashes back to what the dock sent, byte for byte.
    row = db.conn.execute("SELECT c.time, c.type, c.actor, c.subject, c.payload, k.event_id::text,"
                          " k.prev_hash, k.hash FROM custody c JOIN custody_chain k USING (dock,"
                          " seq) WHERE seq = 7").fetchone()
    original = stream.record(7)
    assert (row[0], row[1], row[2], row[3]) == (original["time"], original["type"],
                                                original["actor"], original["subject"])
    assert json.loads(row[4]) == original["payload"] and row[5] == original["event_id"]
    assert bytes(row[7]).hex() == original["hash"]


def test_a_second_record_for_a_seq_is_a_fork_kept_as_evidence(db: LedgerDb,
                                                               stream: DockStream) -> None:
    enrol(db, stream)
    feed(db, [(stream.topic("custody"), r) for r in stream.records[:6]])
    forged = rehashed(stream.record(4), subject="SN-FORGED")
    feed(db, [(stream.topic("custody"), forged)])
    assert one(db, "SELECT subject FROM custody WHERE seq = 4") == "SN0003"
    fork = db.conn.execute("SELECT seq, kind, reason, body FROM forks").fetchone()
    assert fork[0] == 4 and fork[1] == "record" and "two different records claim seq 4" in fork[2]
    assert bytes(fork[3]) == canonical_json(json.loads(forged))
    assert [a[0] for a in alerts(db)] == ["fork"]


def test_a_record_that_does_not_chain_is_refused_and_alerted(db: LedgerDb,
                                                             stream: DockStream) -> None:
    enrol(db, stream)
    feed(db, [(stream.topic("custody"), r) for r in stream.records[:3]])
    # A self-consistent record at a new seq that does not chain onto seq 3.
    bad = rehashed(stream.record(4), prev_hash="ab" * 32)
    feed(db, [(stream.topic("custody"), bad)])
    assert one(db, "SELECT count(*) FROM custody_chain") == 3
    assert [a[0] for a in alerts(db)] == ["chain_break"]
    assert "does not chain onto seq 3" in alerts(db)[0][2]
    feed(db, [(stream.topic("custody"), stream.records[3])])  # the genuine one still fits
    assert one(db, "SELECT count(*) FROM custody_chain") == 4


def test_records_of_a_dock_not_enrolled_are_rejected_then_replayed_on_enrolment(
        db: LedgerDb, stream: DockStream) -> None:
    feed(db, stream.messages()[:4])
    assert one(db, "SELECT count(*) FROM custody_chain") == 0
    assert one(db, "SELECT count(*) FROM rejected WHERE code = 'unknown_dock'") == 4
    assert [a[0] for a in alerts(db)] == ["unknown_dock"]
    enrol(db, stream)
    held = db.rejected_for_replay(stream.dock)
    db.apply_batch([judge(PREFIX, t, p, MAX) for t, p in held], SystemClock().now(), "replay")
    assert one(db, "SELECT count(*) FROM custody_chain WHERE source = 'replay'") == 4


def test_enrolment_never_trusts_a_new_key_silently(db: LedgerDb, stream: DockStream) -> None:
    enrol(db, stream)
    with pytest.raises(UsageError, match="enrolled with another key"):
        db.add_dock(stream.dock, "cd" * 32, "test")
    with pytest.raises(UsageError, match="64 lower-case hex"):
        db.add_dock("dock-02", "XYZ", "test")
    assert db.add_dock(stream.dock, "cd" * 32, "test", replace=True) is True
    assert one(db, "SELECT count(*) FROM dock_keys WHERE replaced_at IS NOT NULL") == 1


def test_checkpoints_are_checked_against_the_enrolled_key(db: LedgerDb, stream: DockStream,
                                                          tmp_path: Path) -> None:
    other = make_stream(tmp_path / "impostor", stream.dock, 5, checkpoint_every=5)
    enrol(db, stream)
    feed(db, [(stream.topic("checkpoint"), other.checkpoints[0])])
    assert one(db, "SELECT count(*) FROM checkpoints") == 0
    assert one(db, "SELECT code FROM rejected") == "key_mismatch"
    # Right key, signature of other bytes.
    cp = json.loads(stream.checkpoints[0])
    cp["signature"] = json.loads(stream.checkpoints[1])["signature"]
    feed(db, [(stream.topic("checkpoint"), canonical_json(cp))])
    assert sorted(a[0] for a in alerts(db)) == ["bad_signature", "key_mismatch"]
    # A status publishing another key is shown as a key mismatch too.
    feed(db, [(stream.topic("status"), stream.status(key=other.key))])
    assert any(a[0] == "key_mismatch" and a[1] == other.key for a in alerts(db))


def test_a_record_contradicting_a_signed_checkpoint_is_refused(db: LedgerDb,
                                                               stream: DockStream) -> None:
    enrol(db, stream)
    feed(db, [(stream.topic("checkpoint"), stream.checkpoints[0])])  # pins seq 5
    forged = rehashed(stream.record(5), subject="SN-FORGED")
    feed(db, [(stream.topic("custody"), forged)])
    assert one(db, "SELECT count(*) FROM custody_chain") == 0
    assert "signed checkpoint" in alerts(db)[0][2]


def test_gaps_open_alerts_and_close_when_filled(db: LedgerDb, stream: DockStream) -> None:
    enrol(db, stream)
    keep = [r for i, r in enumerate(stream.records, 1) if i not in (6, 7)]
    feed(db, [(stream.topic("custody"), r) for r in keep[:9]])
    now = SystemClock().now()
    keeper = GapKeeper(db, grace_s=3600)
    assert [h.key for h in keeper.run(now)["dock-01"]] == ["6-7"]
    assert alerts(db) == []  # within the grace period: another instance may be committing it
    keeper = GapKeeper(db, grace_s=0)
    keeper.run(now)
    assert alerts(db) == [("gap", "6-7", "seq 6-7 missing (not received, not filled from the "
                                         "archive)")]
    assert one(db, "SELECT contiguous_to FROM docks") == 5
    feed(db, [(stream.topic("custody"), stream.records[5])])
    keeper.run(now)
    assert [a[1] for a in alerts(db)] == ["7-7"]
    feed(db, [(stream.topic("custody"), stream.records[6])])
    assert keeper.run(now) == {}
    assert alerts(db) == []
    assert one(db, "SELECT contiguous_to FROM docks") == 11
    resolutions = [r[0] for r in db.conn.execute(
        "SELECT resolution FROM alerts WHERE kind = 'gap' ORDER BY id").fetchall()]
    assert resolutions[0].startswith("partly filled (1 from mqtt)")
    assert resolutions[1] == "filled (1 from mqtt)"


def test_a_signed_checkpoint_beyond_the_last_record_is_a_tail_gap(db: LedgerDb,
                                                                  stream: DockStream) -> None:
    enrol(db, stream)
    feed(db, [(stream.topic("custody"), r) for r in stream.records[:3]])
    feed(db, [(stream.topic("checkpoint"), stream.checkpoints[1])])  # seq 10
    GapKeeper(db, grace_s=0).run(SystemClock().now())
    assert [a[1] for a in alerts(db)] == ["4-10"]


def test_hostile_payloads_are_rejected_with_a_reason_and_nothing_breaks(
        db: LedgerDb, stream: DockStream) -> None:
    enrol(db, stream)
    good = stream.record(1)
    cases = {
        "not_json": (stream.topic("custody"), b"\xff\xfe{"),
        "schema": (stream.topic("custody"), canonical_json({**good, "seq": "1"})),
        "forged_hash": (stream.topic("custody"), canonical_json({**good, "subject": "X"})),
        "wrong_dock": (stream.topic("custody"), rehashed(good, dock="dock-99")),
        "too_large": (stream.topic("custody"), b"{" + b" " * MAX + b"}"),
        "unknown_topic": ("dockd/site-01/dock-01/evil/topic", b"{}"),
    }
    nul = json.dumps({**good, "subject": "a\u0000b"}).encode()
    deep = b"[" * 5000 + b"]" * 5000
    feed(db, [*cases.values(), (stream.topic("custody"), nul), (stream.topic("bay/1/state"), deep),
              (stream.topic("status"), b'{"v": 1}')])
    codes = [r[0] for r in db.conn.execute("SELECT code FROM rejected ORDER BY id").fetchall()]
    assert codes == [*cases, "schema", "not_json", "schema"]
    kept = one(db, "SELECT length(payload) FROM rejected WHERE code = 'too_large'")
    assert kept == EVIDENCE_BYTES
    assert one(db, "SELECT payload_bytes FROM rejected WHERE code = 'too_large'") == MAX + 2
    assert {a[1] for a in alerts(db) if a[0] == "rejected"} == {"not_json", "schema",
                                                                "forged_hash", "wrong_dock",
                                                                "too_large", "unknown_topic"}
    feed(db, [(stream.topic("custody"), stream.records[0])])
    assert one(db, "SELECT count(*) FROM custody_chain") == 1


def test_an_older_status_or_bay_state_is_a_replay(db: LedgerDb, stream: DockStream) -> None:
    enrol(db, stream)
    feed(db, [(stream.topic("status"), stream.status(time="2026-12-01T10:00:00.000000Z"))])
    feed(db, [(stream.topic("status"), stream.status(time="2026-12-01T09:00:00.000000Z"))])
    assert one(db, "SELECT time FROM dock_status") == "2026-12-01T10:00:00.000000Z"
    assert one(db, "SELECT code FROM rejected") == "replayed"
    assert [a[0] for a in alerts(db)] == ["replayed"]


def test_evidence_tables_are_append_only(db: LedgerDb, stream: DockStream) -> None:
    enrol(db, stream)
    feed(db, stream.messages())
    for sql in ("UPDATE custody SET subject = 'x'", "DELETE FROM custody_chain",
                "UPDATE checkpoints SET signature = ''", "TRUNCATE forks",
                "TRUNCATE custody"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            db.conn.execute(sql)
        db.conn.rollback()


def test_an_instance_starting_beside_one_that_writes_takes_no_table_lock(
        db: LedgerDb, stream: DockStream, ledger_dsn: str) -> None:  # noqa: F811
    """Every instance migrates when it starts. On a current schema that must not alter a
    table: the ALTER waited for the lock an open batch holds (and, with a second table taken
    in the other order, deadlocked: CI saw it). The lock timeout turns a wait into a failure."""
    enrol(db, stream)
    db.conn.execute("INSERT INTO alerts (dock, kind, key, detail) VALUES ('dock-01', 'gap',"
                    " 'open-batch', 'a batch not yet committed')")
    db.conn.execute("INSERT INTO rejected (topic, code, reason, payload, payload_bytes,"
                    " payload_sha256) VALUES ('t', 'schema', 'r', '\\x00', 1, '\\x00')")
    starting = psycopg.connect(ledger_dsn)
    starting.execute("SET lock_timeout = '2s'")
    starting.commit()
    migrate(starting, SystemClock().now())
    starting.close()
    db.conn.rollback()


@pytest.mark.parametrize("tampering", [
    "DROP TRIGGER custody_append_only ON custody",
    "ALTER TABLE forks DISABLE TRIGGER forks_no_truncate",
    # the same name, firing on DELETE only: an UPDATE would go through
    "DROP TRIGGER checkpoints_append_only ON checkpoints;"
    " CREATE TRIGGER checkpoints_append_only BEFORE DELETE ON checkpoints"
    " FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
    # the refusing function made to let every change through
    "CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN IF TG_OP = 'TRUNCATE' THEN RETURN NULL; END IF; RETURN NEW; END $$",
    # a trigger of that name running another function
    "CREATE FUNCTION let_through() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW;"
    " END $$; DROP TRIGGER custody_chain_append_only ON custody_chain;"
    " CREATE TRIGGER custody_chain_append_only BEFORE UPDATE OR DELETE ON custody_chain"
    " FOR EACH ROW EXECUTE FUNCTION let_through()",
], ids=["dropped", "disabled", "narrowed", "function-replaced", "other-function"])
def test_an_append_only_trigger_changed_is_put_back_by_migrate(
        db: LedgerDb, stream: DockStream, tampering: str,
        caplog: pytest.LogCaptureFixture) -> None:
    db.conn.execute(tampering)
    db.conn.commit()
    with caplog.at_level(logging.WARNING, logger="dockd.ledger.db"):
        migrate(db.conn, SystemClock().now())
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("append-only triggers missing, disabled or changed: ")
    migrate(db.conn, SystemClock().now())  # put back: nothing more to say
    assert len(caplog.records) == 1
    enrol(db, stream)
    feed(db, stream.messages())
    for sql in ("UPDATE custody SET subject = 'x'", "TRUNCATE forks",
                "UPDATE checkpoints SET signature = ''", "UPDATE custody_chain SET at = now()"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            db.conn.execute(sql)
        db.conn.rollback()


def test_custody_is_partitioned_by_month_of_the_record(db: LedgerDb, stream: DockStream) -> None:
    enrol(db, stream)
    old = rehashed(stream.record(1), time="2024-02-29T23:59:59.000000Z")
    feed(db, [(stream.topic("custody"), old)])
    names = {r[0] for r in db.conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'custody'").fetchall()}
    month = dt.datetime.now(dt.UTC)
    assert {"custody_y2024m02", f"custody_y{month.year:04d}m{month.month:02d}"} <= names
    assert one(db, "SELECT count(*) FROM custody_y2024m02") == 1


def test_holes_in() -> None:
    assert holes_in([(1, None), (2, None), (5, None)], 0, 7, None) == \
        [*holes_in([(5, None)], 2, 5, None), *holes_in([], 5, 7, None)]
    assert [(h.lo, h.hi) for h in holes_in([(3, None), (4, None), (9, None)], 0, 9, None)] == \
        [(1, 2), (5, 8)]
    assert holes_in([], 4, 4, None) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                      max_size=4),
                 max_leaves=20).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"v": st.integers(), "dock": st.text(max_size=10),
                           "seq": st.integers(), "hash": st.text(max_size=70)}).map(
        lambda v: json.dumps(v).encode())),
    kind=st.sampled_from(["custody", "checkpoint", "status", "alert", "bay/1/state",
                          "recorder/SN1/health"]))
def test_any_payload_on_any_topic_is_judged_and_stored_without_error(
        db: LedgerDb, stream: DockStream, payload: bytes, kind: str) -> None:
    if one(db, "SELECT count(*) FROM docks") == 0:
        enrol(db, stream)
    before = one(db, "SELECT count(*) FROM rejected")
    feed(db, [(stream.topic(kind), payload)])
    # None of these can be a genuine message: each is rejected, with a code and a reason.
    assert one(db, "SELECT count(*) FROM rejected") == before + 1
    assert one(db, "SELECT count(*) FROM rejected WHERE reason = '' OR code = ''") == 0
    assert one(db, "SELECT count(*) FROM custody_chain") == 0


def test_an_old_record_published_afresh_is_a_replay_a_redelivery_is_not(
        db: LedgerDb, stream: DockStream) -> None:
    import dataclasses

    enrol(db, stream)
    feed(db, [(stream.topic("custody"), r) for r in stream.records[:3]])
    later = SystemClock().now() + dt.timedelta(hours=2)
    again = judge(PREFIX, stream.topic("custody"), stream.records[1], MAX)
    assert isinstance(again, RecordIn)
    db.apply_batch([dataclasses.replace(again, redelivered=True)], later)  # broker re-send
    assert one(db, "SELECT duplicates FROM docks") == 1 and alerts(db) == []
    db.apply_batch([again], later)  # a fresh publish of a record kept two hours ago
    assert one(db, "SELECT code FROM rejected") == "replayed"
    assert [a[0] for a in alerts(db)] == ["replayed"]
    feed(db, [(stream.topic("custody"), stream.records[2])])  # a recent repeat: a duplicate
    assert one(db, "SELECT duplicates FROM docks") == 2
    assert one(db, "SELECT count(*) FROM custody_chain") == 3


def test_alert_texts_are_kept_as_code_and_values_and_read_in_either_language(
        db: LedgerDb, stream: DockStream) -> None:
    enrol(db, stream)
    feed(db, [(stream.topic("custody"), r) for r in stream.records[:3]])
    feed(db, [(stream.topic("custody"), rehashed(stream.record(4), prev_hash="ab" * 32))])
    feed(db, [(stream.topic("custody"), b'{"v": 1, "seq": "three"}')])
    rows = db.conn.execute("SELECT kind, detail, detail_note FROM alerts ORDER BY id").fetchall()
    reason = db.conn.execute("SELECT reason, reason_note FROM rejected").fetchone()
    db.conn.commit()
    (_k, chain_text, chain_note), (_r, rejected_text, rejected_note) = rows
    # Stored: the code and the values, the same whatever the language; and the English text.
    assert chain_note == {"code": "link.not_onto", "args": {"seq": 3}}
    assert chain_text == "does not chain onto seq 3"
    assert rejected_note["code"] == "rejected"
    assert rejected_note["args"]["reason"]["code"] == "record.fields"
    assert reason is not None and reason[1] == rejected_note["args"]["reason"]
    zh, en = words("zh_CN"), words("en")
    assert shown(en, chain_note, chain_text) == chain_text
    assert shown(zh, chain_note, chain_text) == "未链接到序号 3"
    assert shown(en, rejected_note, rejected_text) == rejected_text == (
        "schema: custody record fields wrong (missing: actor, dock, event_id, hash, payload, "
        "prev_hash, subject, time, type; unexpected: —) (topic dockd/site-01/dock-01/custody)")
    assert shown(zh, rejected_note, rejected_text) == (
        "格式不符：监管链记录字段有误（缺少：actor, dock, event_id, hash, payload, prev_hash, "
        "subject, time, type；多余：—）（主题 dockd/site-01/dock-01/custody）")


def test_rows_from_before_notes_are_migrated_and_show_their_text(ledger_dsn: str) -> None:  # noqa: F811
    conn = psycopg.connect(ledger_dsn)
    conn.execute(DDL)  # a ledger of schema version 1: no note columns
    conn.execute("INSERT INTO alerts (dock, kind, key, detail) VALUES ('dock-01', 'fork',"
                 " 'seq-3', 'two different records claim seq 3 (an old row)')")
    conn.commit()
    migrate(conn, SystemClock().now())
    [alert] = open_alerts(conn)
    assert alert["detail_note"] is None
    assert shown(words("zh_CN"), alert["detail_note"], alert["detail"]) == \
        "two different records claim seq 3 (an old row)"
    # A note of a code this version does not know shows the stored text too.
    assert shown(words("zh_CN"), {"code": "from.the.future", "args": {}}, "kept text") == \
        "kept text"
    assert shown(words("zh_CN"), {"code": "link.not_onto", "args": {"wrong": 1}}, "kept") == \
        "kept"
    conn.close()
