"""What the archive holds, read from the catalog alone (no call to the bucket).

A catalog opened read-only that never had an archive run has no archive tables; that
reads as "nothing archived", which is the truth. Whether one item is archived (what prune
and clearing ask before a local copy may go) is :func:`dockd.store.queries.is_archived`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dockd.store.catalog import Catalog, Transaction

_TABLES = ("archive_objects", "archive_files", "archive_uploads")
_ENDED_SESSIONS = ("SELECT COUNT(*) FROM sessions WHERE folder IS NOT NULL AND mhl_c4 IS NOT NULL"
                   " AND result != 'running'")


@dataclass(frozen=True)
class ArchiveStatus:
    """Counts for ``dockd archive status``."""

    items_stored: int  # items in the store (not pruned)
    items_archived: int
    items_pending: int
    bytes_pending: int
    uploads_in_flight: int
    legal_holds: int  # archived versions (items, manifests, MHL files) under legal hold
    sessions_pending: int  # ended sessions with an ASC MHL not yet archived
    last_archived_at: str | None

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


def archive_status(catalog: Catalog) -> ArchiveStatus:
    """The archive's state as the catalog records it."""
    stored = _one(catalog, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items"
                           " WHERE deleted_at IS NULL")
    if not _has_tables(catalog):
        return ArchiveStatus(stored[0], 0, stored[0], stored[1], 0, 0,
                             _one(catalog, _ENDED_SESSIONS)[0], None)
    pending = _one(catalog, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items i"
                            " WHERE deleted_at IS NULL AND NOT EXISTS"
                            " (SELECT 1 FROM archive_objects a WHERE a.sha256 = i.sha256)")
    archived = _one(catalog, "SELECT COUNT(*), MAX(archived_at) FROM archive_objects")
    holds = _one(catalog, "SELECT (SELECT COUNT(*) FROM archive_objects WHERE legal_hold)"
                          " + (SELECT COUNT(*) FROM archive_files WHERE legal_hold)")
    uploads = _one(catalog, "SELECT COUNT(*) FROM archive_uploads")
    sessions = _one(catalog, _ENDED_SESSIONS + " AND NOT EXISTS (SELECT 1 FROM archive_files f"
                                               " WHERE f.session_id = sessions.id)")
    return ArchiveStatus(stored[0], archived[0], pending[0], pending[1], uploads[0], holds[0],
                         sessions[0], archived[1])


def _one(catalog: Catalog, sql: str) -> tuple[Any, ...]:
    return tuple(catalog.conn.execute(sql).fetchone())


def _has_tables(catalog: Catalog | Transaction) -> bool:
    rows = catalog.conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name IN"
                                " (?,?,?)", _TABLES).fetchall()
    return len(rows) == len(_TABLES)
