"""The catalog: one SQLite database (WAL) holding items, sightings, sessions, metadata,
the custody log, its checkpoints and the MQTT outbox.

Everything that must change together changes in one transaction: a stored item, the
sighting that found it, its custody record and that record's outbox row.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dockd.errors import CatalogDamagedError, StoreFullError, StoreUnavailableError
from dockd.i18n import N_, _
from dockd.store.guard import DENIED, permission_denied
from dockd.store.schema import CATALOG_DDL

if TYPE_CHECKING:
    import sqlite_utils

SCHEMA_VERSION = 1
CATALOG_FILE = "catalog.sqlite"
CATALOG_MODE = 0o640
_DAMAGED = N_("the catalog {path} is damaged ({detail}); restore it from the store's backup "
              "(the archive keeps the objects and the custody log: docs/archive.md)")
# SQLITE_ERROR: dockd's statements are fixed, so "no such table", "malformed schema" and
# the like mean the schema's bytes changed.
_DAMAGE_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_ERROR)
_DENIED_CODES = (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY,
                 sqlite3.SQLITE_AUTH)


class Transaction:
    """An open write transaction; ``after_commit`` callbacks run once it is durable."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._after_commit: list[Callable[[], None]] = []

    def execute(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)


def _create_tables(conn: sqlite3.Connection) -> None:
    """The schema's statements (each ``IF NOT EXISTS``). A new catalog gets them in one
    transaction: run one by one they were 55 commits, each a WAL sync (90 ms on the first
    dock, and on every test's new store); a failure among them leaves no table behind. An
    existing catalog runs them one by one as before: they change nothing there."""
    fresh = conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is None
    if not fresh:
        for ddl in CATALOG_DDL:
            conn.executescript(ddl)
        return
    try:
        conn.executescript("BEGIN IMMEDIATE;\n" + "".join(CATALOG_DDL) + "\nCOMMIT;")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Catalog:
    """A connection to the catalog database. One per thread."""

    @functools.cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the connection, made when first used: importing sqlite-utils
        (with click and pluggy) was a tenth of every CLI call's start-up, and dockd's own
        queries do not use it."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

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
                _create_tables(conn)
                self._init_meta(conn)
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.ProgrammingError:
            raise
        except sqlite3.DatabaseError as exc:
            raise catalog_error(path, exc, write=not read_only) from None
        except UnicodeDecodeError as exc:
            raise _undecodable(path, exc) from None
        except OSError as exc:
            if exc.errno in DENIED:
                raise permission_denied(path, write=not read_only) from None
            raise StoreUnavailableError(_("catalog {path} cannot be created: {strerror}").format(
                                          path=path, strerror=exc.strerror)) \
                from None
        self.conn = conn

    def _init_meta(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise damaged(self.path, f"its schema version is {row[0] if row else 'gone'!r}")
        if int(row[0]) > SCHEMA_VERSION:
            raise StoreUnavailableError(
                _("catalog {path} has schema {value}, newer than this dockd ({schema_version})").format(
                  path=self.path, value=row[0], schema_version=SCHEMA_VERSION)
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


def catalog_error(path: Path, exc: sqlite3.DatabaseError,
                  write: bool = False) -> StoreUnavailableError | StoreFullError:
    """The administrator's error for an SQLite error met on the catalog at ``path``: damage
    (:class:`CatalogDamagedError`), a full or failing disk, a permission, a lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in _DAMAGE_CODES or primary is None:
        # No code: the sqlite3 module's own complaint about what it read (text that is not
        # UTF-8): the bytes of a row changed under SQLite's checks.
        return damaged(path, str(exc))
    if primary == sqlite3.SQLITE_FULL:
        return StoreFullError(_("the evidence store is full while writing the catalog {path}").format(
                                path=path))
    if primary == sqlite3.SQLITE_IOERR:
        return StoreUnavailableError(
            _("the evidence store's disk failed while using the catalog {path} ({exc}); check the disk "
              "and the kernel log (dmesg), repair it (fsck), then try again").format(path=path, exc=exc))
    if primary in _DENIED_CODES:
        if not os.access(path, os.R_OK | (os.W_OK if write else 0)):
            return permission_denied(path, write)
        if not os.access(path.parent, os.W_OK):
            # Reading a WAL database takes its -shm index, made beside it when missing.
            return permission_denied(path.parent, write=True)
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreUnavailableError(_("the catalog {path} is locked by another process ({exc}); try "
                                       "again").format(path=path, exc=exc))
    return StoreUnavailableError(_("the catalog {path} cannot be used: {exc}").format(path=path, exc=exc))


@contextlib.contextmanager
def catalog_errors(path: Path, write: bool = False) -> Iterator[None]:
    """Turn the SQLite errors of the block into :func:`catalog_error`'s; a ProgrammingError
    (dockd misusing the API: a bug) is left as it is."""
    try:
        yield
    except sqlite3.ProgrammingError:
        raise
    except sqlite3.DatabaseError as exc:
        raise catalog_error(path, exc, write) from None
    except UnicodeDecodeError as exc:
        raise _undecodable(path, exc) from None


def _undecodable(path: Path, exc: UnicodeDecodeError) -> CatalogDamagedError:
    # SQLite's message quotes the damaged bytes (a name in a mangled schema), which the
    # sqlite3 module then fails to decode.
    return damaged(path, f"SQLite reported bytes that are not text: {exc.object[:40]!r}")


def damaged(path: Path, detail: str) -> CatalogDamagedError:
    """The error for a damaged catalog: what SQLite said (``detail``) and how to recover."""
    return CatalogDamagedError(_(_DAMAGED).format(path=path, detail=detail))


def _immutable_if_read_only_fs(path: Path) -> str:
    # A WAL database cannot create its -shm index on a read-only file system; nobody can
    # write there either, so SQLite may treat the file as immutable (no locks, no WAL) —
    # unless a -wal file holds transactions: immutable would silently read the catalog
    # without them. With its -shm beside it SQLite reads them (nothing written); without
    # it they cannot be read in place.
    try:
        if not os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return ""
        wal_bytes = os.stat(f"{path}-wal").st_size
    except FileNotFoundError:
        wal_bytes = 0
    except OSError:
        return ""
    if not wal_bytes:
        return "&immutable=1"
    if os.path.exists(f"{path}-shm"):
        return ""
    raise StoreUnavailableError(
        _("the catalog {path} is on a read-only file system and its write-ahead log ({path}-wal, "
          "{wal_bytes} bytes) holds transactions that cannot be read there without its -shm file; copy "
          "the store (cp -a) to writable media and verify the copy").format(path=path, wal_bytes=wal_bytes))


def _create_private(path: Path) -> None:
    # The catalog names every recording: readable by the service only (rule art. 3).
    # SQLite gives its -wal and -shm files the database file's mode.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, CATALOG_MODE))


def catalog_path(store_dir: Path) -> Path:
    return store_dir / CATALOG_FILE
