"""The catalog rows of an offload session: its ``sessions`` row, and per file its
``items``, ``sightings`` and ``metadata`` rows. Every statement the ingest runs against
the catalog is here; :mod:`dockd.store.ingest` decides what to write, this module how.

Lookups take many files at once (a chunk of the volume's walk, a durability batch): one
statement for hundreds of files, never one per file, and never the whole volume at once
(memory stays flat in the number of files).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from dockd.clock import utc_iso
from dockd.errors import StoreFullError, StoreUnavailableError
from dockd.store.catalog import Catalog, Transaction
from dockd.store.metadata import RecordingMetadata

DatabaseError = sqlite3.Error  # what a catalog write raises besides the two below
_CHUNK = 500  # well under SQLite's bound-parameter limit (32,766; 999 before 3.32)
_CHUNK_ROWS = 300  # (path, size, mtime) rows: 900 parameters
# The sighting's item is not pruned. Through the pruned items' own small index, not a join
# with items: on a re-dock the join's random reads of the items table and its index were
# half the time on a cold cache (the sightings' index alone covers the rest).
_LIVE = ("NOT EXISTS (SELECT 1 FROM items p INDEXED BY items_pruned"
         " WHERE p.sha256 = s.sha256 AND p.deleted_at IS NOT NULL)")


@dataclass(frozen=True, slots=True)
class FileRow:
    """What the catalog records about one stored file of a session."""

    sha256: str
    size: int
    digests: dict[str, str]
    relpath: str  # the object's path in the store
    source_path: str  # printable
    source_path_raw: bytes
    mtime_ns: int
    session_path: str | None  # the link in the session folder, if one was made
    metadata: RecordingMetadata | None
    restored: bool  # pruned earlier, stored again: the item lives again


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """The ``sessions`` row's closing fields."""

    ended_at: str
    result: str
    reason: str | None
    files: int
    bytes: int
    failed: int
    skipped: int
    folder: str | None
    mhl_c4: str | None


@contextlib.contextmanager
def transaction(catalog: Catalog) -> Iterator[Transaction]:
    """A write transaction in which a full disk under SQLite is StoreFullError and a failed
    or read-only one StoreUnavailableError (the errors the session stops on)."""
    try:
        with catalog.transaction() as tx:
            yield tx
    except sqlite3.OperationalError as exc:
        raise _db_error(exc) from exc


def _db_error(exc: sqlite3.OperationalError) -> Exception:
    if "full" in str(exc):
        return StoreFullError("the evidence store is full: the catalog cannot be written")
    if "disk I/O error" in str(exc) or "readonly" in str(exc):
        return StoreUnavailableError(
            f"the evidence store's catalog cannot be written ({exc}): check the disk and "
            "the kernel log (dmesg), repair it (fsck), then dock again")
    return exc


def start_session(tx: Transaction, session_id: str, recorder: str, started_at: str) -> None:
    tx.execute("INSERT INTO sessions (id, recorder, started_at, result) VALUES (?,?,?,?)",
               (session_id, recorder, started_at, "running"))


def finish_session(tx: Transaction, session_id: str, end: SessionEnd) -> None:
    tx.execute("UPDATE sessions SET ended_at=?, result=?, reason=?, files=?, bytes=?,"
               " failed=?, skipped=?, folder=?, mhl_c4=? WHERE id=?",
               (end.ended_at, end.result, end.reason, end.files, end.bytes, end.failed,
                end.skipped, end.folder, end.mhl_c4, session_id))


def known_files(catalog: Catalog, recorder: str,
                files: Iterable[tuple[bytes, int, int]]) -> dict[tuple[bytes, int, int], str]:
    """Of ``files`` (recorder path, size, mtime), those this recorder already gave us and
    the store still holds (not pruned), with their sha256."""
    wanted = set(files)
    paths = sorted({path for path, _size, _mtime in wanted})
    found: dict[tuple[bytes, int, int], str] = {}
    for start in range(0, len(paths), _CHUNK):
        part = paths[start:start + _CHUNK]
        rows = catalog.conn.execute(
            "SELECT s.source_path_raw, s.size, s.mtime_ns, s.sha256 FROM sightings s"
            f" WHERE s.recorder = ? AND s.source_path_raw IN ({','.join('?' * len(part))})"
            f" AND {_LIVE}", (recorder, *part))
        for raw, size, mtime_ns, sha in rows:
            key = (bytes(raw), size, mtime_ns)
            if key in wanted:
                found[key] = sha
    return found


def count_known(catalog: Catalog, recorder: str, files: Sequence[tuple[bytes, int, int]]) -> int:
    """How many of ``files`` (recorder path, size, mtime; no path twice) :func:`known_files`
    would find, counted by SQLite: a re-dock's first walk only asks whether all of them are
    known (a third of the CPU of building every key in Python)."""
    known = 0
    for start in range(0, len(files), _CHUNK_ROWS):
        part = files[start:start + _CHUNK_ROWS]
        known += catalog.conn.execute(
            f"SELECT count(*) FROM (VALUES {','.join(['(?,?,?)'] * len(part))}) v"
            f" WHERE EXISTS (SELECT 1 FROM sightings s WHERE s.recorder = ?{3 * len(part) + 1}"
            " AND s.source_path_raw = v.column1 AND s.size = v.column2"
            f" AND s.mtime_ns = v.column3 AND {_LIVE})",
            [*(value for file in part for value in file), recorder]).fetchone()[0]
    return int(known)


def catalogued(catalog: Catalog, shas: Sequence[str]) -> dict[str, str | None]:
    """Which of ``shas`` the catalog has, with their ``deleted_at`` (None if live)."""
    found: dict[str, str | None] = {}
    for start in range(0, len(shas), _CHUNK):
        part = shas[start:start + _CHUNK]
        rows = catalog.conn.execute(
            f"SELECT sha256, deleted_at FROM items WHERE sha256 IN ({','.join('?' * len(part))})",
            tuple(part))
        found.update({row[0]: row[1] for row in rows})
    return found


def earlier_session_links(catalog: Catalog, sha256: str) -> list[tuple[str, str]]:
    """(session folder, path in it) of every earlier sighting of ``sha256`` that was linked."""
    rows = catalog.conn.execute(
        "SELECT ses.folder, s.session_path FROM sightings s JOIN sessions ses"
        " ON ses.id = s.session_id WHERE s.sha256=? AND s.session_path IS NOT NULL"
        " AND ses.folder IS NOT NULL", (sha256,))
    return [(row[0], row[1]) for row in rows]


def record_files(tx: Transaction, session_id: str, recorder: str, now: str,
                 files: Sequence[FileRow]) -> None:
    """Items (new ones), sightings and metadata of a batch, in ``tx``."""
    restored = [(f.sha256,) for f in files if f.restored]
    if restored:
        tx.conn.executemany("UPDATE items SET deleted_at=NULL WHERE sha256=?", restored)
    tx.conn.executemany(
        "INSERT OR IGNORE INTO items (sha256, size, sm3, xxh128, c4, path, ingested_at,"
        " first_session) VALUES (?,?,?,?,?,?,?,?)",
        [(f.sha256, f.size, f.digests.get("sm3"), f.digests.get("xxh128"), f.digests.get("c4"),
          f.relpath, now, session_id) for f in files])
    tx.conn.executemany(
        "INSERT OR IGNORE INTO sightings (session_id, recorder, source_path, source_path_raw,"
        " size, mtime_ns, sha256, seen_at, session_path) VALUES (?,?,?,?,?,?,?,?,?)",
        [(session_id, recorder, f.source_path, f.source_path_raw, f.size, f.mtime_ns, f.sha256,
          now, f.session_path) for f in files])
    media = [f for f in files if f.metadata is not None and f.metadata.extractor != "none"]
    if media:
        tx.conn.executemany(
            "INSERT OR IGNORE INTO metadata (sha256, format, start_time, end_time, duration_s,"
            " extractor) VALUES (?,?,?,?,?,?)",
            [(f.sha256, m.format, utc_iso(m.start_time) if m.start_time else None,
              utc_iso(m.end_time) if m.end_time else None, m.duration_s, m.extractor)
             for f in media if (m := f.metadata) is not None])
