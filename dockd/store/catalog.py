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
from dockd.store.schema import CATALOG_DDL

SCHEMA_VERSION = 1
CATALOG_FILE = "catalog.sqlite"
CATALOG_MODE = 0o640




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
                for ddl in CATALOG_DDL:
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

    def has_table(self, name: str) -> bool:
        """True when the catalog has table ``name`` (a store opened read-only may predate it)."""
        return self.query_one("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                              (name,)) is not None

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


def catalog_path(store_dir: Path) -> Path:
    return store_dir / CATALOG_FILE
