"""Replaying the custody log: what the catalog must hold, compared with what it holds.

Verification checks the log against itself (the chain, the signed checkpoints) and the
disk against the catalog; this module closes the third side, the catalog against the log.
:class:`Replay` is fed every record of the chain in seq order (verification already reads
and decodes each one, so the replay costs a dictionary update per record, not a second
pass), then :meth:`Replay.compare` reads the catalog's tables in batches and names every
difference:

``unlogged_removal``
    the log says a thing exists (an ingested item, its sighting, a session, a hold still
    active, a case tag, an annotation, an enrolled recorder), the catalog lost it — or
    marks an item pruned without an ``item.deleted`` record.
``unlogged_row``
    a catalog row no log record created.
``catalog_mismatch``
    both exist but differ (a sighting's source path, an item's size, a hold's target …).
``unsigned_removal``
    an item was removed by an ``item.deleted`` record that no valid signed checkpoint
    covers: anyone who can write the database can append an unkeyed chain record, but
    prune checkpoints every deletion, so a genuine one is always signed.
``unknown_item``
    an export or access record names a recording the log never ingested.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

BATCH_ROWS = 5000
_HEX64 = re.compile("[0-9a-f]{64}")

Report = Callable[[str, str, str], None]  # (kind, subject, detail)

# What the replay keeps per item and per sighting is compact (a replay of a 50,000-item
# store kept 1.6 KB per item in plain tuples and strings): an item is keyed by its SHA-256's
# 32 bytes, a sighting by a 16-byte digest of its key, and a stored path by an 8-byte
# digest. A difference is rare: its wording reads the record again by seq.


def _sha_key(sha: str) -> bytes | str:
    """An item's key: the 32 bytes of a SHA-256 in lower-case hex; any other text (a
    tampered value) stays text, so it never equals a genuine one."""
    return bytes.fromhex(sha) if _HEX64.fullmatch(sha) else sha


def _digest(*parts: object, size: int = 16) -> bytes:
    return hashlib.blake2b(repr(parts).encode("utf-8", "surrogatepass"), digest_size=size).digest()


@dataclass(slots=True)
class _Item:
    size: int
    path_digest: bytes | None  # of the stored_path the log gave (None: none given)
    ingested_seq: int
    deleted_seq: int | None = None  # the item.deleted after the latest ingest, if any
    seen: bool = False  # met in the catalog by the comparison


@dataclass
class _Hold:
    seq: int
    scope: str
    target: str
    range_from: str | None
    range_to: str | None
    reason: str
    by: str
    released_seq: int | None = None
    released_by: str | None = None


@dataclass
class _Session:
    seq: int
    recorder: str
    end_seq: int | None = None
    result: str | None = None
    folder: str | None = None


@dataclass
class Replay:
    """The catalog state the custody log implies, built one record at a time."""

    items: dict[bytes | str, _Item] = field(default_factory=dict)  # by _sha_key
    # digest of (recorder, source_path, size, mtime_ns, sha256), the sighting's key -> seq
    sightings: dict[bytes, int] = field(default_factory=dict)
    # digest of (session_id, sha256) -> the digest of the last new sighting key it had
    by_session: dict[bytes, bytes] = field(default_factory=dict)
    sessions: dict[str, _Session] = field(default_factory=dict)
    holds: dict[int, _Hold] = field(default_factory=dict)
    cases: dict[str, int] = field(default_factory=dict)  # case_no -> seq that created it
    case_places: dict[str, tuple[int, str]] = field(default_factory=dict)
    case_items: dict[tuple[str, str], int] = field(default_factory=dict)
    annotations: Counter[tuple[str, str | None, str | None]] = field(default_factory=Counter)
    annotation_seq: dict[tuple[str, str | None, str | None], int] = field(default_factory=dict)
    field_annotations: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    recorders: dict[str, int] = field(default_factory=dict)
    references: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, type, sha)
    rotations: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # key.rotated
    unreadable: int = 0

    def feed(self, seq: int, type_: str, payload: Any) -> None:
        """Apply one chain record (its payload already decoded)."""
        handler = _HANDLERS.get(type_)
        if handler is None or not isinstance(payload, dict):
            return
        try:
            handler(self, seq, payload)
        except (KeyError, TypeError, ValueError):
            # A record of a known type without its fields: the chain hash vouches for it, so
            # it was written so; it can create nothing the catalog must hold.
            self.unreadable += 1

    def compare(self, conn: sqlite3.Connection, signed_upto: int, report: Report) -> None:
        """Compare the replayed state with the catalog behind ``conn``; ``signed_upto`` is the
        highest seq a valid signed checkpoint covers."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        _compare_items(self, conn, signed_upto, report)
        _compare_sightings(self, conn, report)
        _compare_metadata(self, conn, report)
        _compare_sessions(self, conn, report)
        if self.holds or "holds" in tables:
            _compare_holds(self, _rows(conn, "SELECT * FROM holds", "holds" in tables), report)
        if self.cases or "cases" in tables:
            _compare_cases(self, conn, tables, report)
        if self.annotations or "item_annotations" in tables:
            _compare_annotations(self, _rows(
                conn, "SELECT sha256, place, operator_name FROM item_annotations",
                "item_annotations" in tables), report)
        if self.field_annotations or "item_field_annotations" in tables:
            rows = Counter((str(r[0]), str(r[1]), str(r[2])) for r in _rows(
                conn, "SELECT sha256, field, value FROM item_field_annotations",
                "item_field_annotations" in tables))
            for key, n in (rows - self.field_annotations).items():
                report("unlogged_row", f"item_field_annotations {key[0]}",
                       f"{n} annotation(s) {key[1]}={key[2]!r} without item.annotated")
            for key, n in (self.field_annotations - rows).items():
                report("unlogged_removal", f"item_field_annotations {key[0]}",
                       f"{n} annotation(s) {key[1]}={key[2]!r} are not in the catalog")
        if self.recorders or "recorders" in tables:
            _compare_recorders(self, _rows(conn, "SELECT serial FROM recorders",
                                           "recorders" in tables), report)
        for seq, type_, sha in self.references:
            if _sha_key(sha) not in self.items:
                report("unknown_item", f"seq {seq}",
                       f"{type_} names {sha}, which the log never ingested")


# -- feeding ---------------------------------------------------------------------------------

def _file_ingested(r: Replay, seq: int, p: dict[str, Any]) -> None:
    sha, size = str(p["sha256"]), int(p["size"])
    key = _digest(str(p["recorder"]), str(p["source_path"]), size, int(p["mtime_ns"]), sha)
    session = _digest(str(p["session_id"]), sha)
    sha_key = _sha_key(sha)
    item = r.items.get(sha_key)
    if item is None:
        path = str(p.get("stored_path", ""))
        r.items[sha_key] = _Item(size, _digest(path, size=8) if path else None, seq)
    else:
        item.deleted_seq = None  # ingested again (restored after prune, or a duplicate)
    if key not in r.sightings:
        r.sightings[key] = seq
        r.by_session[session] = key


def _item_deleted(r: Replay, seq: int, p: dict[str, Any]) -> None:
    item = r.items.get(_sha_key(str(p["sha256"])))
    if item is not None:
        item.deleted_seq = seq


def _session_started(r: Replay, seq: int, p: dict[str, Any]) -> None:
    r.sessions.setdefault(str(p["session_id"]), _Session(seq, str(p.get("recorder", ""))))


def _session_ended(r: Replay, seq: int, p: dict[str, Any]) -> None:
    session = r.sessions.get(str(p["session_id"]))
    if session is None:
        return
    session.end_seq = seq
    session.result = str(p.get("result") or "interrupted")
    folder = p.get("folder")
    session.folder = str(folder) if folder is not None else None


def _session_interrupted(r: Replay, seq: int, p: dict[str, Any]) -> None:
    _session_ended(r, seq, {**p, "result": "interrupted"})


def _hold_added(r: Replay, seq: int, p: dict[str, Any]) -> None:
    r.holds[int(p["hold_id"])] = _Hold(seq, str(p["scope"]), str(p["target"]), p.get("from"),
                                       p.get("to"), str(p["reason"]), _stated_by(p))


def _hold_released(r: Replay, seq: int, p: dict[str, Any]) -> None:
    hold = r.holds.get(int(p["hold_id"]))
    if hold is not None:
        hold.released_seq, hold.released_by = seq, _stated_by(p)


def _stated_by(p: dict[str, Any]) -> str:
    # "by" in records written before the actor came from the OS (issue 14).
    return str(p.get("stated_by", p.get("by", "")))


def _case_tagged(r: Replay, seq: int, p: dict[str, Any]) -> None:
    case = str(p["case"])
    r.cases.setdefault(case, seq)
    if p.get("place") is not None:
        r.case_places[case] = (seq, str(p["place"]))
    for sha in p.get("items") or []:
        r.case_items.setdefault((case, str(sha)), seq)


def _item_annotated(r: Replay, seq: int, p: dict[str, Any]) -> None:
    key = (str(p["sha256"]), p.get("place"), p.get("operator_name"))
    if key[1] is not None or key[2] is not None:  # a record of other fields only has no row
        r.annotations[key] += 1
        r.annotation_seq.setdefault(key, seq)
    for name, value in dict(p.get("fields") or {}).items():
        r.field_annotations[(key[0], str(name), str(value))] += 1


def _recorder_enrolled(r: Replay, seq: int, p: dict[str, Any]) -> None:
    r.recorders.setdefault(str(p["serial"]), seq)


def _names_items(r: Replay, seq: int, p: dict[str, Any], type_: str) -> None:
    for sha in p.get("items") or []:
        r.references.append((seq, type_, str(sha)))


def _key_rotated(r: Replay, seq: int, p: dict[str, Any]) -> None:
    r.rotations.append((seq, p))


_HANDLERS: dict[str, Callable[[Replay, int, dict[str, Any]], None]] = {
    "key.rotated": _key_rotated,
    "file.ingested": _file_ingested,
    "item.deleted": _item_deleted,
    "session.started": _session_started,
    "session.completed": _session_ended,
    "session.interrupted": _session_interrupted,
    "hold.added": _hold_added,
    "hold.released": _hold_released,
    "case.tagged": _case_tagged,
    "item.annotated": _item_annotated,
    "recorder.enrolled": _recorder_enrolled,
    "export.created": lambda r, s, p: _names_items(r, s, p, "export.created"),
    "access.registered": lambda r, s, p: _names_items(r, s, p, "access.registered"),
}


# -- comparing ---------------------------------------------------------------------------------

def _rows(conn: sqlite3.Connection, sql: str, exists: bool = True) -> Iterator[sqlite3.Row]:
    """Rows of ``sql`` fetched in batches (none when the table does not exist)."""
    if not exists:
        return
    cursor = conn.execute(sql)
    while batch := cursor.fetchmany(BATCH_ROWS):
        yield from batch


def _logged(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
    """The payload of the record at ``seq`` (for the wording of a difference)."""
    row = conn.execute("SELECT payload FROM custody WHERE seq = ?", (seq,)).fetchone()
    payload = json.loads(row[0]) if row is not None else {}
    return payload if isinstance(payload, dict) else {}


def _compare_items(r: Replay, conn: sqlite3.Connection, signed_upto: int, report: Report) -> None:
    for sha, size, path, deleted_at in _rows(conn, "SELECT sha256, size, path, deleted_at"
                                                   " FROM items"):
        item = r.items.get(_sha_key(sha))
        if item is None:
            report("unlogged_row", f"items {sha}", "no file.ingested record stored this item")
            continue
        item.seen = True
        subject = f"seq {item.ingested_seq}"
        if size != item.size:
            report("catalog_mismatch", subject,
                   f"item {sha}: the catalog says {size} bytes, the log {item.size}")
        if item.path_digest is not None and _digest(path, size=8) != item.path_digest:
            logged = _logged(conn, item.ingested_seq).get("stored_path")
            report("catalog_mismatch", subject,
                   f"item {sha}: the catalog stores it at {path}, the log at {logged}")
        if item.deleted_seq is None and deleted_at is not None:
            report("unlogged_removal", subject,
                   f"item {sha} is marked pruned ({deleted_at}) without an item.deleted record")
        elif item.deleted_seq is not None and deleted_at is None:
            report("catalog_mismatch", f"seq {item.deleted_seq}",
                   f"item {sha} was deleted by item.deleted but the catalog lists it as stored")
        if item.deleted_seq is not None and item.deleted_seq > signed_upto:
            report("unsigned_removal", f"seq {item.deleted_seq}",
                   f"item {sha} was removed by an item.deleted record no signed checkpoint"
                   " covers")
    for item in r.items.values():
        if not item.seen:
            sha = _logged(conn, item.ingested_seq).get("sha256")
            report("unlogged_removal", f"seq {item.ingested_seq}",
                   f"item {sha} of file.ingested is not in the catalog")


def _compare_sightings(r: Replay, conn: sqlite3.Connection, report: Report) -> None:
    matched: set[bytes] = set()
    for row in _rows(conn, "SELECT id, session_id, recorder, source_path, size, mtime_ns, sha256"
                           " FROM sightings"):
        key = _digest(row[2], row[3], row[4], row[5], row[6])
        if key in r.sightings:
            matched.add(key)
            continue
        logged_key = r.by_session.get(_digest(row[1], row[6]))
        if logged_key is None:
            report("unlogged_row", f"sightings {row[0]}",
                   f"no file.ingested record found {row[3]!r} ({row[6]}) on {row[2]}")
            continue
        matched.add(logged_key)
        seq = r.sightings[logged_key]
        logged = _logged(conn, seq)
        report("catalog_mismatch", f"seq {seq}",
               f"sighting {row[0]} of {row[6]}: the catalog says {row[2]}:{row[3]!r}"
               f" {row[4]} bytes mtime {row[5]}, the log {logged.get('recorder')}:"
               f"{logged.get('source_path')!r} {logged.get('size')} bytes mtime"
               f" {logged.get('mtime_ns')}")
    for key, seq in r.sightings.items():
        if key not in matched:
            logged = _logged(conn, seq)
            report("unlogged_removal", f"seq {seq}",
                   f"no sighting of {logged.get('source_path')!r} ({logged.get('sha256')}) on"
                   f" {logged.get('recorder')}")


def _compare_metadata(r: Replay, conn: sqlite3.Connection, report: Report) -> None:
    for (sha,) in _rows(conn, "SELECT sha256 FROM metadata"):
        if _sha_key(sha) not in r.items:
            report("unlogged_row", f"metadata {sha}", "metadata of an item the log never ingested")


def _compare_sessions(r: Replay, conn: sqlite3.Connection, report: Report) -> None:
    seen: set[str] = set()
    for sid, recorder, result, folder in _rows(conn, "SELECT id, recorder, result, folder"
                                                     " FROM sessions"):
        seen.add(sid)
        session = r.sessions.get(sid)
        if session is None:
            report("unlogged_row", f"sessions {sid}", "no session.started record opened it")
            continue
        if session.recorder and recorder != session.recorder:
            report("catalog_mismatch", f"seq {session.seq}",
                   f"session {sid}: the catalog says recorder {recorder}, the log"
                   f" {session.recorder}")
        logged = session.result or "running"
        if result != logged:
            report("catalog_mismatch", f"seq {session.end_seq or session.seq}",
                   f"session {sid}: the catalog says {result}, the log {logged}")
        elif session.end_seq is not None and (folder or None) != session.folder:
            report("catalog_mismatch", f"seq {session.end_seq}",
                   f"session {sid}: the catalog's folder is {folder}, the log's {session.folder}")
    for sid, session in r.sessions.items():
        if sid not in seen:
            report("unlogged_removal", f"seq {session.seq}", f"session {sid} is not in the catalog")


def _compare_holds(r: Replay, rows: Iterator[sqlite3.Row], report: Report) -> None:
    seen: set[int] = set()
    for row in rows:
        hid = int(row["id"])
        seen.add(hid)
        hold = r.holds.get(hid)
        if hold is None:
            report("unlogged_row", f"holds {hid}", "no hold.added record created this hold")
            continue
        catalog = (row["scope"], row["target"], row["range_from"], row["range_to"],
                   row["reason"], row["created_by"])
        logged = (hold.scope, hold.target, hold.range_from, hold.range_to, hold.reason, hold.by)
        if catalog != logged:
            report("catalog_mismatch", f"seq {hold.seq}",
                   f"hold {hid}: the catalog says {catalog}, the log {logged}")
        if row["released_at"] is not None and hold.released_seq is None:
            report("unlogged_removal", f"seq {hold.seq}",
                   f"hold {hid} is released in the catalog without a hold.released record")
        elif row["released_at"] is None and hold.released_seq is not None:
            report("catalog_mismatch", f"seq {hold.released_seq}",
                   f"hold {hid} was released but the catalog lists it as active")
        elif hold.released_seq is not None and row["released_by"] != hold.released_by:
            report("catalog_mismatch", f"seq {hold.released_seq}",
                   f"hold {hid}: released by {row['released_by']!r} in the catalog,"
                   f" {hold.released_by!r} in the log")
    for hid, hold in r.holds.items():
        if hid not in seen:
            report("unlogged_removal", f"seq {hold.seq}", f"hold {hid} is not in the catalog")


def _compare_cases(r: Replay, conn: sqlite3.Connection, tables: set[str],
                   report: Report) -> None:
    seen: set[str] = set()
    for case_no, place in _rows(conn, "SELECT case_no, place FROM cases", "cases" in tables):
        seen.add(case_no)
        if case_no not in r.cases:
            report("unlogged_row", f"cases {case_no}", "no case.tagged record created this case")
            continue
        logged = r.case_places.get(case_no)
        if (logged[1] if logged else None) != place:
            report("catalog_mismatch", f"seq {logged[0] if logged else r.cases[case_no]}",
                   f"case {case_no}: the catalog's place is {place!r}, the log's"
                   f" {logged[1] if logged else None!r}")
    for case_no, seq in r.cases.items():
        if case_no not in seen:
            report("unlogged_removal", f"seq {seq}", f"case {case_no} is not in the catalog")
    tagged: set[tuple[str, str]] = set()
    for case_no, sha in _rows(conn, "SELECT case_no, sha256 FROM case_items",
                              "case_items" in tables):
        tagged.add((case_no, sha))
        if (case_no, sha) not in r.case_items:
            report("unlogged_row", f"case_items {case_no} {sha}",
                   "no case.tagged record tagged this item")
    for (case_no, sha), seq in r.case_items.items():
        if (case_no, sha) not in tagged:
            report("unlogged_removal", f"seq {seq}", f"{sha} is no longer tagged {case_no}")


def _compare_annotations(r: Replay, rows: Iterator[sqlite3.Row], report: Report) -> None:
    catalog: Counter[tuple[str, str | None, str | None]] = Counter(
        (row[0], row[1], row[2]) for row in rows)
    for key, n in (catalog - r.annotations).items():
        report("unlogged_row", f"item_annotations {key[0]}",
               f"{n} annotation(s) place={key[1]!r} operator={key[2]!r} without item.annotated")
    for key, n in (r.annotations - catalog).items():
        report("unlogged_removal", f"seq {r.annotation_seq[key]}",
               f"{n} annotation(s) of {key[0]} place={key[1]!r} operator={key[2]!r}"
               " are not in the catalog")


def _compare_recorders(r: Replay, rows: Iterator[sqlite3.Row], report: Report) -> None:
    seen: set[str] = set()
    for (serial,) in rows:
        seen.add(serial)
        if serial not in r.recorders:
            report("unlogged_row", f"recorders {serial}",
                   "no recorder.enrolled record enrolled it")
    for serial, seq in r.recorders.items():
        if serial not in seen:
            report("unlogged_removal", f"seq {seq}", f"recorder {serial} is not in the registry")
