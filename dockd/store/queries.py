"""Read-only views of the catalog for the CLI and reports (through sqlite-utils)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from dockd.errors import UsageError
from dockd.store.catalog import Catalog, Transaction, catalog_path


def open_catalog_read_only(store_dir: Path) -> Catalog:
    """The catalog of ``store_dir`` opened read-only; a clear error when there is none."""
    require_existing_store(store_dir)
    return Catalog(catalog_path(store_dir), read_only=True)


def require_existing_store(store_dir: Path) -> None:
    """UsageError (exit 2) when ``store_dir`` holds no catalog: reading or verifying a store
    must never create an empty one and then report it intact."""
    path = catalog_path(store_dir)
    if not path.exists():
        raise UsageError(f"no evidence store at {store_dir} (no {path.name}); "
                         "check --store or dock.store_dir")


def catalog_items(catalog: Catalog, recorder: str | None = None,
                  since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
    """One entry per sighting: a stored file as it was found on a recorder; ``until``
    (exclusive, UTC text) bounds the ingest time from above."""
    where, params = ["i.deleted_at IS NULL"], {}
    if recorder:
        where.append("s.recorder = :recorder")
        params["recorder"] = recorder
    if since:
        _check_date(since)
        where.append("s.seen_at >= :since")
        params["since"] = since
    if until:
        where.append("s.seen_at < :until")
        params["until"] = until
    sql = (
        "SELECT s.sha256, i.size, i.sm3, s.recorder, s.source_path, s.source_path_raw,"
        " i.path, s.seen_at AS ingested_at, s.mtime_ns, s.session_id, ses.folder AS session_folder,"
        " s.session_path, m.format, m.start_time, m.end_time, m.duration_s"
        " FROM sightings s JOIN items i ON i.sha256 = s.sha256"
        " JOIN sessions ses ON ses.id = s.session_id"
        " LEFT JOIN metadata m ON m.sha256 = s.sha256"
        f" WHERE {' AND '.join(where)} ORDER BY s.seen_at, s.id"
    )
    out = []
    for row in catalog.db.query(sql, params):
        raw = row.pop("source_path_raw")
        if raw != row["source_path"].encode("utf-8"):
            row["source_path_b64"] = base64.b64encode(raw).decode()
        out.append(row)
    return out


def custody_records(catalog: Catalog, after_seq: int = 0,
                    type_: str | None = None) -> list[dict[str, Any]]:
    """Custody records in seq order, payload decoded."""
    sql = "SELECT * FROM custody WHERE seq > :after"
    params: dict[str, Any] = {"after": after_seq}
    if type_:
        sql += " AND type = :type"
        params["type"] = type_
    out = []
    for row in catalog.db.query(sql + " ORDER BY seq", params):
        row["payload"] = json.loads(row["payload"])
        out.append(row)
    return out


def _check_date(text: str) -> None:
    import datetime as dt

    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r} is not a date (use YYYY-MM-DD)") from None


def is_archived(source: Catalog | Transaction, sha256: str) -> bool:
    """True when item ``sha256`` is held in the WORM archive (its ``file.archived`` custody
    event was recorded). Works inside a transaction, so a decision to prune and the
    deletion can share one; a catalog that never had an archive run says False."""
    conn = source.conn
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='archive_objects'"
                    ).fetchone() is None:
        return False
    return conn.execute("SELECT 1 FROM archive_objects WHERE sha256=?", (sha256,)).fetchone() \
        is not None
