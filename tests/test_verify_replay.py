"""Verify replays the custody log against the catalog: every way an attacker with write
access to ``catalog.sqlite`` (triggers dropped) can make evidence vanish, appear or change
must be named, with the seq of the record it contradicts."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockd.clock import utc_iso
from dockd.records.cases import annotate_items, tag_items
from dockd.records.holds import HoldRequest, add_hold, release_hold
from dockd.records.retention import RetentionPolicy, prune
from dockd.store.custody import canonical_json, record_hash
from dockd.store.evidence import EvidenceStore
from dockd.store.ingest import Ingestor
from dockd.store.registry import enroll
from dockd.store.verify import Problem, verify_store
from tests.records_support import T0, SettableClock, open_clocked_store

Opener = Callable[..., EvidenceStore]


def _ingest(store: EvidenceStore, root: Path, n: int = 3, recorder: str = "REC-1") -> list[str]:
    src = root / f"src-{uuid.uuid4().hex[:6]}"
    for i in range(n):
        (src / "DCIM").mkdir(parents=True, exist_ok=True)
        (src / "DCIM" / f"{i}.MP4").write_bytes(os.urandom(2000 + i))
    report = Ingestor(store, "test").ingest(src, recorder)
    assert report.result == "completed"
    return [f.sha256 for f in report.files if f.sha256]


def _attacker(store: EvidenceStore) -> sqlite3.Connection:
    """A raw connection with every protective trigger dropped."""
    conn = sqlite3.connect(store.catalog.path, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    return conn


def _problems(store: EvidenceStore) -> list[Problem]:
    return verify_store(store, "test").problems


def _only(problems: list[Problem], *kinds: str) -> list[Problem]:
    """The problems, asserting their kinds are exactly ``kinds`` (as a set)."""
    assert {p.kind for p in problems} == set(kinds), problems
    return problems


def _seq_of(store: EvidenceStore, type_: str, sha: str) -> int:
    row = store.catalog.query_one("SELECT seq FROM custody WHERE type=? AND subject=?"
                                  " ORDER BY seq LIMIT 1", (type_, sha))
    assert row is not None
    return int(row[0])


def _forge_record(store: EvidenceStore, conn: sqlite3.Connection, type_: str, subject: str,
                  payload: dict[str, Any]) -> int:
    """Append a record with a correct chain hash (the chain is unkeyed: anyone can)."""
    last = conn.execute("SELECT seq, hash FROM custody ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = last[0] + 1, last[1]
    event_id, time = str(uuid.uuid4()), utc_iso(dt.datetime.now(dt.UTC))
    h = record_hash("dock-test", seq, event_id, time, type_, "dockd", subject, payload, prev)
    conn.execute("INSERT INTO custody (seq, dock, event_id, time, type, actor, subject, payload,"
                 " prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
                 (seq, "dock-test", event_id, time, type_, "dockd", subject,
                  canonical_json(payload).decode(), prev, h))
    return int(seq)


def test_an_untouched_store_replays_clean(open_test_store: Opener, tmp_path: Path) -> None:
    store = open_test_store()
    _ingest(store, tmp_path)
    _ingest(store, tmp_path, recorder="REC-2")
    assert _problems(store) == []


def test_a_recording_deleted_from_every_table_and_the_disk_is_an_unlogged_removal(
        open_test_store: Opener, tmp_path: Path) -> None:
    # The attack: rows gone from items, sightings and metadata, object unlinked,
    # custody log untouched. Before the replay, verify said "intact".
    store = open_test_store()
    sha = _ingest(store, tmp_path)[1]
    conn = _attacker(store)
    for table in ("sightings", "metadata", "items"):
        conn.execute(f"DELETE FROM {table} WHERE sha256=?", (sha,))
    store.content.object_path(sha).unlink()
    problems = _only(_problems(store), "unlogged_removal")
    seq = _seq_of(store, "file.ingested", sha)
    removals = [p for p in problems if p.kind == "unlogged_removal"]
    assert {p.subject for p in removals} == {f"seq {seq}"}
    assert any(f"item {sha}" in p.detail for p in removals)
    assert any("no sighting" in p.detail for p in removals)


def test_an_item_marked_pruned_without_item_deleted_is_an_unlogged_removal(
        open_test_store: Opener, tmp_path: Path) -> None:
    store = open_test_store()
    sha = _ingest(store, tmp_path)[0]
    _attacker(store).execute("UPDATE items SET deleted_at='2026-01-01T00:00:00.000000Z'"
                             " WHERE sha256=?", (sha,))
    problems = [p for p in _problems(store) if p.kind == "unlogged_removal"]
    assert len(problems) == 1 and "marked pruned" in problems[0].detail
    assert problems[0].subject == f"seq {_seq_of(store, 'file.ingested', sha)}"


def test_a_changed_sighting_source_path_is_a_catalog_mismatch(open_test_store: Opener,
                                                              tmp_path: Path) -> None:
    store = open_test_store()
    sha = _ingest(store, tmp_path)[2]
    _attacker(store).execute("UPDATE sightings SET source_path='DCIM/other.MP4' WHERE sha256=?",
                             (sha,))
    problems = _only(_problems(store), "catalog_mismatch")
    assert problems[0].subject == f"seq {_seq_of(store, 'file.ingested', sha)}"
    assert "DCIM/other.MP4" in problems[0].detail and "DCIM/2.MP4" in problems[0].detail


def test_each_difference_is_worded_from_the_record_it_contradicts(
        open_test_store: Opener, tmp_path: Path) -> None:
    """The replay keeps digests, not the log's texts: a difference reads its record again."""
    store = open_test_store()
    a, b, c = _ingest(store, tmp_path)
    conn = _attacker(store)
    path = store.catalog.query_one("SELECT path FROM items WHERE sha256=?", (a,))[0]
    conn.execute("UPDATE items SET path='objects/sha256/00/elsewhere' WHERE sha256=?", (a,))
    conn.execute("DELETE FROM sightings WHERE sha256=?", (b,))
    # an upper-case SHA-256 is another text, not the logged item
    conn.execute("UPDATE sightings SET sha256=upper(sha256) WHERE sha256=?", (c,))
    conn.execute("UPDATE items SET sha256=upper(sha256) WHERE sha256=?", (c,))
    details = {(p.kind, p.subject, p.detail) for p in _problems(store)
               if p.kind not in ("extra", "missing", "catalog_path", "session_link")}
    seq = {sha: f"seq {_seq_of(store, 'file.ingested', sha)}" for sha in (a, b, c)}
    assert details == {
        ("catalog_mismatch", seq[a], f"item {a}: the catalog stores it at"
                                     f" objects/sha256/00/elsewhere, the log at {path}"),
        ("unlogged_removal", seq[b], f"no sighting of 'DCIM/1.MP4' ({b}) on REC-1"),
        ("unlogged_row", f"items {c.upper()}", "no file.ingested record stored this item"),
        ("unlogged_removal", seq[c], f"item {c} of file.ingested is not in the catalog"),
        ("unlogged_removal", seq[c], f"no sighting of 'DCIM/2.MP4' ({c}) on REC-1"),
        *{("unlogged_row", f"sightings {r[0]}",
           f"no file.ingested record found 'DCIM/2.MP4' ({c.upper()}) on REC-1")
          for r in store.catalog.query("SELECT id FROM sightings WHERE sha256=?", (c.upper(),))},
    }


def test_a_changed_item_size_is_a_catalog_mismatch(open_test_store: Opener,
                                                   tmp_path: Path) -> None:
    store = open_test_store()
    sha = _ingest(store, tmp_path)[0]
    conn = _attacker(store)
    conn.execute("UPDATE items SET size=size+1 WHERE sha256=?", (sha,))
    conn.execute("UPDATE sightings SET size=size+1 WHERE sha256=?", (sha,))
    kinds = {p.kind for p in _problems(store)}
    assert "catalog_mismatch" in kinds and "altered" in kinds


def test_a_planted_recording_is_an_unlogged_row(open_test_store: Opener, tmp_path: Path) -> None:
    # Rows copied from a genuine item under a new digest: a recording no log record stored.
    store = open_test_store()
    sha = _ingest(store, tmp_path)[0]
    fake = "f" * 64
    conn = _attacker(store)
    conn.execute("INSERT INTO items SELECT ?, size, sm3, xxh128, c4, path, ingested_at,"
                 " first_session, deleted_at FROM items WHERE sha256=?", (fake, sha))
    conn.execute("INSERT INTO sightings (session_id, recorder, source_path, source_path_raw,"
                 " size, mtime_ns, sha256, seen_at) SELECT session_id, recorder, 'DCIM/x.MP4',"
                 " x'44', size, mtime_ns, ?, seen_at FROM sightings WHERE sha256=?", (fake, sha))
    conn.execute("INSERT INTO sessions (id, recorder, started_at, result) VALUES"
                 " ('planted', 'REC-9', '2026-01-01T00:00:00Z', 'completed')")
    subjects = {p.subject.split()[0] for p in _problems(store) if p.kind == "unlogged_row"}
    assert subjects == {"items", "sightings", "sessions"}


def test_a_forged_item_deleted_without_a_checkpoint_is_an_unsigned_removal(
        open_test_store: Opener, tmp_path: Path) -> None:
    # The attacker appends a well-chained item.deleted (no key needed) and removes the item;
    # no signed checkpoint covers the forged record.
    store = open_test_store()
    sha = _ingest(store, tmp_path)[0]
    conn = _attacker(store)
    seq = _forge_record(store, conn, "item.deleted", sha, {"sha256": sha, "size": 2000})
    conn.execute("UPDATE items SET deleted_at='2026-01-01T00:00:00.000000Z' WHERE sha256=?",
                 (sha,))
    store.content.object_path(sha).unlink()
    problems = [p for p in _problems(store) if p.kind == "unsigned_removal"]
    assert [p.subject for p in problems] == [f"seq {seq}"]


def test_a_genuine_prune_replays_clean(tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store = open_clocked_store(tmp_path / "store", clock)
    try:
        shas = _ingest(store, tmp_path)
        clock.t = T0 + dt.timedelta(days=200)
        report = prune(store, RetentionPolicy(90, 90), False, "test")
        assert len(report.deleted) == len(shas)
        assert verify_store(store, "test").problems == []
        # ... and the same file docked again after the prune is restored, still clean
        _ingest(store, tmp_path, n=1)
        assert verify_store(store, "test").problems == []
    finally:
        store.close()


def test_an_item_kept_after_its_item_deleted_is_a_catalog_mismatch(tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store = open_clocked_store(tmp_path / "store", clock)
    try:
        sha = _ingest(store, tmp_path, n=1)[0]
        clock.t = T0 + dt.timedelta(days=200)
        prune(store, RetentionPolicy(90, 90), False, "test")
        _attacker(store).execute("UPDATE items SET deleted_at=NULL WHERE sha256=?", (sha,))
        kinds = {p.kind for p in verify_store(store, "test").problems}
        assert "catalog_mismatch" in kinds
    finally:
        store.close()


def test_holds_released_planted_or_changed_behind_the_log(open_test_store: Opener,
                                                         tmp_path: Path) -> None:
    store = open_test_store()
    shas = _ingest(store, tmp_path)
    h1 = add_hold(store, HoldRequest("item", shas[0], "complaint", "Li"), "test")
    h2 = add_hold(store, HoldRequest("item", shas[1], "petition", "Li"), "test")
    h3 = add_hold(store, HoldRequest("item", shas[2], "court", "Li"), "test")
    release_hold(store, h3.id, "Wang", "test")
    assert _problems(store) == []
    conn = _attacker(store)
    conn.execute("UPDATE holds SET released_at='2026-01-01T00:00:00Z', released_by='x'"
                 " WHERE id=?", (h1.id,))
    conn.execute("UPDATE holds SET target=? WHERE id=?", (shas[0], h2.id))
    conn.execute("UPDATE holds SET released_by='Zhao' WHERE id=?", (h3.id,))
    conn.execute("INSERT INTO holds (scope, target, reason, created_by, created_at)"
                 " VALUES ('item', ?, 'planted', 'x', '2026-01-01T00:00:00Z')", (shas[0],))
    problems = _problems(store)
    details = {(p.kind, p.detail.split(":")[0].split(" is ")[0]) for p in problems}
    assert ("unlogged_removal", f"hold {h1.id}") in details
    assert ("catalog_mismatch", f"hold {h2.id}") in details
    assert ("catalog_mismatch", f"hold {h3.id}") in details
    assert any(p.kind == "unlogged_row" and p.subject.startswith("holds ") for p in problems)


def test_case_tags_and_annotations_behind_the_log(open_test_store: Opener,
                                                  tmp_path: Path) -> None:
    store = open_test_store()
    shas = _ingest(store, tmp_path)
    tag_items(store, "A2026-001", shas[:2], "Li", "test", place="Main St")
    annotate_items(store, [shas[0]], "Li", "test", operator_name="Zhang")
    assert _problems(store) == []
    conn = _attacker(store)
    conn.execute("DELETE FROM case_items WHERE sha256=?", (shas[0],))
    conn.execute("INSERT INTO case_items VALUES ('A2026-001', ?, 'x', '2026-01-01')", (shas[2],))
    conn.execute("UPDATE cases SET place='Elsewhere'")
    conn.execute("UPDATE item_annotations SET operator_name='Nobody'")
    by_kind: dict[str, list[str]] = {}
    for p in _problems(store):
        by_kind.setdefault(p.kind, []).append(p.subject)
    assert sorted(by_kind) == ["catalog_mismatch", "unlogged_removal", "unlogged_row"]
    tag_seq = store.catalog.query_one("SELECT seq FROM custody WHERE type='case.tagged'")[0]
    assert f"seq {tag_seq}" in by_kind["unlogged_removal"]  # the tag and the annotation
    assert f"case_items A2026-001 {shas[2]}" in by_kind["unlogged_row"]
    assert any(s.startswith("item_annotations ") for s in by_kind["unlogged_row"])


def test_sessions_and_registry_behind_the_log(open_test_store: Opener, tmp_path: Path) -> None:
    store = open_test_store()
    _ingest(store, tmp_path)
    enroll(store, "test", "REC-7", "Brand", "M1", "0001", "Li", "Unit 1")
    conn = _attacker(store)
    conn.execute("UPDATE sessions SET result='interrupted'")
    conn.execute("DELETE FROM recorders")
    conn.execute("INSERT INTO recorders (serial, state, enrolled_at) VALUES ('REC-X',"
                 " 'in_service', '2026-01-01')")
    problems = {(p.kind, p.subject.split()[0]) for p in _problems(store)}
    assert problems == {("catalog_mismatch", "seq"), ("unlogged_removal", "seq"),
                        ("unlogged_row", "recorders")}


def test_an_export_naming_an_item_never_ingested_is_an_unknown_item(
        open_test_store: Opener, tmp_path: Path) -> None:
    store = open_test_store()
    _ingest(store, tmp_path, n=1)
    conn = _attacker(store)
    seq = _forge_record(store, conn, "export.created", "e1", {"export_id": "e1",
                                                              "items": ["e" * 64]})
    problems = [p for p in _problems(store) if p.kind == "unknown_item"]
    assert [p.subject for p in problems] == [f"seq {seq}"]


@pytest.mark.parametrize("table", ["items", "sightings", "sessions"])
def test_a_whole_table_emptied_is_named_per_record(open_test_store: Opener, tmp_path: Path,
                                                   table: str) -> None:
    store = open_test_store()
    _ingest(store, tmp_path, n=4)
    conn = _attacker(store)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute(f"DELETE FROM {table}")
    removals = [p for p in _problems(store) if p.kind == "unlogged_removal"]
    expected = 1 if table == "sessions" else 4
    assert len(removals) == expected
    logged = {f"seq {r[0]}" for r in store.catalog.query("SELECT seq FROM custody")}
    assert {p.subject for p in removals} <= logged


def test_the_verify_event_counts_replay_problems(open_test_store: Opener, tmp_path: Path) -> None:
    store = open_test_store()
    sha = _ingest(store, tmp_path)[0]
    _attacker(store).execute("UPDATE sightings SET source_path='moved' WHERE sha256=?", (sha,))
    verify_store(store, "test")
    row = store.catalog.query_one("SELECT type, payload FROM custody ORDER BY seq DESC LIMIT 1")
    assert row[0] == "verify.failed"
    assert [p["kind"] for p in json.loads(row[1])["problems"]] == ["catalog_mismatch"]
