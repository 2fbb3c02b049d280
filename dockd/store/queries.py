"""Read-only views of the catalog for the CLI and reports: each one query, streamed (rows
are read as they are written out, so memory does not grow with the store)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from dockd.errors import IntegrityError, UsageError
from dockd.i18n import _
from dockd.store.catalog import Catalog, Transaction, catalog_path
from dockd.store.guard import permission_denied


def open_catalog_read_only(store_dir: Path) -> Catalog:
    """The catalog of ``store_dir`` opened read-only; a clear error when there is none."""
    require_existing_store(store_dir)
    return Catalog(catalog_path(store_dir), read_only=True)


def require_existing_store(store_dir: Path) -> None:
    """UsageError (exit 2) when ``store_dir`` holds no catalog: reading or verifying a store
    must never create an empty one and then report it intact."""
    path = catalog_path(store_dir)
    try:
        exists = path.exists()
    except PermissionError:
        raise permission_denied(path) from None
    if not exists:
        raise UsageError(_("no evidence store at {store_dir} (no {name}); check --store or"
                           " dock.store_dir").format(store_dir=store_dir, name=path.name))


def catalog_items(catalog: Catalog, recorder: str | None = None,
                  since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
    """One entry per sighting: a stored file as it was found on a recorder; ``until``
    (exclusive, UTC text) bounds the ingest time from above."""
    return list(iter_catalog_items(catalog, recorder, since, until))


def iter_catalog_items(catalog: Catalog, recorder: str | None = None, since: str | None = None,
                       until: str | None = None) -> Iterator[dict[str, Any]]:
    """:func:`catalog_items` as a stream: one query, rows read as they are used."""
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
    cursor = catalog.conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    for values in cursor:
        row = dict(zip(names, values, strict=True))
        raw = row.pop("source_path_raw")
        if raw != row["source_path"].encode("utf-8"):
            import base64  # here: only a path that is not UTF-8 needs it

            row["source_path_b64"] = base64.b64encode(raw).decode()
        yield row


def custody_records(catalog: Catalog, after_seq: int = 0,
                    type_: str | None = None) -> list[dict[str, Any]]:
    """Custody records in seq order, payload decoded."""
    out = []
    for row in _custody_rows(catalog, after_seq, type_):
        record = dict(row)
        try:
            record["payload"] = json.loads(record.pop("payload"))
        except ValueError:
            raise _altered_payload(record["seq"]) from None
        out.append(record)
    return out


def custody_records_json(catalog: Catalog, after_seq: int = 0,
                         type_: str | None = None) -> Iterator[str]:
    """Custody records in seq order, each as one line of JSON text (the stored canonical
    payload spliced in as it is: it was hashed as that text, and re-encoding 50,000
    payloads in Python cost more than the query). One query, streamed; SQLite writes each
    line (``json_quote``): building it in Python from the row's columns had cost three
    quarters of a listing's time (50,000 records: 4× ``sqlite3 -json``). One ``printf``
    per line: a chain of 20 ``||`` copied the growing line at each step (a fifth of the
    query's time)."""
    for seq, payload_ok, text in catalog.conn.execute(
            f"SELECT seq, json_valid(payload), {_CUSTODY_LINE} FROM custody"
            f"{_custody_where(type_)}", {"after": after_seq, "type": type_}):
        if not payload_ok:
            raise _altered_payload(seq)
        yield text


def _altered_payload(seq: int) -> IntegrityError:
    return IntegrityError(_("custody record seq {seq} has a payload that is not JSON:"
                            " the log was altered; run dockd verify").format(seq=seq))


_CUSTODY_COLUMNS = ("seq", "dock", "event_id", "time", "type", "actor", "subject", "payload",
                    "prev_hash", "hash")
# printf('{"seq": %s, "dock": %s, …}', json_quote(seq), json_quote(dock), …, payload, …)
_CUSTODY_LINE = ("printf('{" + ", ".join(f'"{name}": %s' for name in _CUSTODY_COLUMNS) + "}', "
                 + ", ".join("payload" if name == "payload" else f"json_quote({name})"
                             for name in _CUSTODY_COLUMNS) + ")")


def _custody_where(type_: str | None) -> str:
    return " WHERE seq > :after" + (" AND type = :type" if type_ else "") + " ORDER BY seq"


def _custody_rows(catalog: Catalog, after_seq: int, type_: str | None) -> Iterator[sqlite3.Row]:
    yield from catalog.conn.execute(
        f"SELECT {', '.join(_CUSTODY_COLUMNS)} FROM custody{_custody_where(type_)}",
        {"after": after_seq, "type": type_})


def write_json_lines_array(out: TextIO, items: Iterable[str]) -> None:
    """A JSON array of already-encoded ``items``, one per line, written as they come (so
    a listing of 500,000 entries never sits in memory)."""
    out.write("[")
    first = True
    for item in items:
        out.write("\n" if first else ",\n")
        out.write(item)
        first = False
    out.write("\n]\n" if not first else "]\n")


def _check_date(text: str) -> None:
    import datetime as dt

    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(_("--since {value!r} is not a date (use YYYY-MM-DD)")
                         .format(value=text)) from None


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


def last_verification(catalog: Catalog) -> tuple[str, bool] | None:
    """The time (RFC 3339 UTC) of the newest ``dockd verify`` in the custody log and whether it
    found the store intact; None when verify never ran."""
    from dockd.store.events import VerifyCompleted, VerifyFailed

    row = catalog.query_one("SELECT time, type FROM custody WHERE type IN (?, ?) "
                            "ORDER BY seq DESC LIMIT 1", (VerifyCompleted.TYPE, VerifyFailed.TYPE))
    return None if row is None else (str(row[0]), row[1] == VerifyCompleted.TYPE)
