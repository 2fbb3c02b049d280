"""The catalog: one SQLite database (WAL) holding items, sightings, sessions, metadata,
the custody log, its checkpoints and the MQTT outbox.

Everything that must change together changes in one transaction: a stored item, the
sighting that found it, its custody record and that record's outbox row.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlite_utils

from dockd.errors import StoreUnavailableError

SCHEMA_VERSION = 1
CATALOG_FILE = "catalog.sqlite"
CATALOG_MODE = 0o640

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    sm3 TEXT,
    xxh128 TEXT,
    c4 TEXT,
    path TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    first_session TEXT NOT NULL,
    deleted_at TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    recorder TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    result TEXT NOT NULL,
    reason TEXT,
    files INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    folder TEXT,
    mhl_c4 TEXT
);
CREATE TABLE IF NOT EXISTS sightings (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    recorder TEXT NOT NULL,
    source_path TEXT NOT NULL,
    source_path_raw BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL REFERENCES items(sha256),
    seen_at TEXT NOT NULL,
    session_path TEXT,
    UNIQUE (recorder, source_path_raw, size, mtime_ns, sha256)
);
CREATE INDEX IF NOT EXISTS sightings_by_recorder ON sightings (recorder, seen_at);
CREATE INDEX IF NOT EXISTS sightings_by_sha ON sightings (sha256);
CREATE TABLE IF NOT EXISTS metadata (
    sha256 TEXT PRIMARY KEY REFERENCES items(sha256),
    format TEXT,
    start_time TEXT,
    end_time TEXT,
    duration_s REAL,
    width INTEGER,
    height INTEGER,
    extractor TEXT
);
CREATE TABLE IF NOT EXISTS custody (
    seq INTEGER PRIMARY KEY,
    dock TEXT NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    time TEXT NOT NULL,
    type TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS custody_by_type ON custody (type, time);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    time TEXT NOT NULL,
    dock TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ref_seq INTEGER,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE sent_at IS NULL;

CREATE TRIGGER IF NOT EXISTS custody_no_update BEFORE UPDATE ON custody
BEGIN SELECT RAISE(ABORT, 'custody log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS custody_no_delete BEFORE DELETE ON custody
BEGIN SELECT RAISE(ABORT, 'custody log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS items_no_delete BEFORE DELETE ON items
BEGIN SELECT RAISE(ABORT, 'items are never deleted; prune marks deleted_at'); END;
CREATE TRIGGER IF NOT EXISTS items_immutable BEFORE UPDATE OF sha256, size, sm3, xxh128, c4, path,
    ingested_at, first_session ON items
BEGIN SELECT RAISE(ABORT, 'stored items are immutable'); END;
CREATE TRIGGER IF NOT EXISTS sightings_no_update BEFORE UPDATE ON sightings
BEGIN SELECT RAISE(ABORT, 'sightings are append-only'); END;
CREATE TRIGGER IF NOT EXISTS sightings_no_delete BEFORE DELETE ON sightings
BEGIN SELECT RAISE(ABORT, 'sightings are append-only'); END;
"""


# Tables owned by other modules (records, registry, archive): each registers its
# idempotent DDL here at import time; it runs with the core schema on every open.
EXTRA_SCHEMAS: dict[str, str] = {}
# Modules that call register_schema() at import time (imported on first open).
SCHEMA_OWNER_MODULES: list[str] = [
    "dockd.dock.registry",
    "dockd.records.schema",
    "dockd.records.archive.schema",
]


def register_schema(owner: str, ddl: str) -> None:
    """Add ``CREATE … IF NOT EXISTS`` statements run whenever a catalog is opened."""
    EXTRA_SCHEMAS[owner] = ddl


class Transaction:
    """An open write transaction; ``after_commit`` callbacks run once it is durable."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._after_commit: list[Callable[[], None]] = []

    def execute(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)


class Catalog:
    """A connection to the catalog database. One per thread."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        try:
            if read_only:
                conn = sqlite3.connect(f"file:{path}?mode=ro{_immutable_if_read_only_fs(path)}",
                                       uri=True, isolation_level=None, timeout=30,
                                       check_same_thread=False)
            else:
                _create_private(path)
                conn = sqlite3.connect(path, isolation_level=None, timeout=30,
                                       check_same_thread=False)
            conn.row_factory = sqlite3.Row
            if not read_only:
                conn.execute("PRAGMA journal_mode=WAL")
                # FULL: a committed custody record survives a power cut, not just a crash.
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
                _import_schema_owners()
                for ddl in EXTRA_SCHEMAS.values():
                    conn.executescript(ddl)
                self._init_meta(conn)
            conn.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            raise StoreUnavailableError(f"catalog {path} cannot be opened: {exc}") from None
        except OSError as exc:
            raise StoreUnavailableError(f"catalog {path} cannot be created: {exc.strerror}") \
                from None
        self.conn = conn
        self.db = sqlite_utils.Database(conn)

    def _init_meta(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if int(row[0]) > SCHEMA_VERSION:
            raise StoreUnavailableError(
                f"catalog {self.path} has schema {row[0]}, newer than this dockd ({SCHEMA_VERSION})"
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """BEGIN IMMEDIATE … COMMIT; rolls back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        tx = Transaction(self.conn)
        try:
            yield tx
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        for callback in tx._after_commit:
            callback()

    def query(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def close(self) -> None:
        self.conn.close()


def _immutable_if_read_only_fs(path: Path) -> str:
    # A WAL database cannot create its -shm index on a read-only file system; nobody can
    # write there either, so SQLite may treat the file as immutable (no locks, no WAL).
    try:
        read_only_fs = bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return ""
    return "&immutable=1" if read_only_fs else ""


def _create_private(path: Path) -> None:
    # The catalog names every recording: readable by the service only (rule art. 3).
    # SQLite gives its -wal and -shm files the database file's mode.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, CATALOG_MODE))


def _import_schema_owners() -> None:
    import importlib

    for module in SCHEMA_OWNER_MODULES:
        importlib.import_module(module)


def catalog_path(store_dir: Path) -> Path:
    return store_dir / CATALOG_FILE
