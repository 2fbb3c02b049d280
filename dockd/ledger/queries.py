"""Read-only questions to the ledger, shared by the CLI, the reports and the web page.

Every function takes a psycopg connection, returns plain JSON-able dicts, and ends its
read transaction (the web page and the CLI keep connections open between questions).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dockd.clock import utc_iso


def _rows(conn: psycopg.Connection[Any], sql: str,
          params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, params).fetchall()
    conn.commit()
    return [{k: _plain(v) for k, v in r.items()} for r in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return utc_iso(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


def dock_rows(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Enrolled docks as enrolled."""
    return _rows(conn, "SELECT dock, site, public_key, archive_prefix, enrolled_at,"
                       " enrolled_by, note FROM docks ORDER BY dock")


def dock_states(conn: psycopg.Connection[Any], now: dt.datetime) -> list[dict[str, Any]]:
    """Per dock: online state, counts, the verified-to mark, the last signed checkpoint and
    a one-word verification state (``verified``, ``gaps``, ``alerts``, ``pending``, ``no_records``)."""
    rows = _rows(conn, """
        SELECT d.dock, coalesce(s.site, d.site) AS site, d.public_key, d.records, d.max_seq,
               d.contiguous_to, d.duplicates, d.last_record_at, d.last_checkpoint_seq,
               d.verified_at, s.state AS status_state, s.time AS status_time,
               s.received_at AS status_received_at, s.public_key AS status_key,
               (SELECT count(*) FROM alerts a WHERE a.dock = d.dock AND a.closed_at IS NULL)
                   AS open_alerts,
               (SELECT count(*) FROM alerts a WHERE a.dock = d.dock AND a.closed_at IS NULL
                   AND a.kind = 'gap') AS open_gaps,
               c.time AS checkpoint_time, c.hash AS checkpoint_hash,
               c.signature AS checkpoint_signature
        FROM docks d
        LEFT JOIN dock_status s ON s.dock = d.dock
        LEFT JOIN checkpoints c ON c.dock = d.dock AND c.seq = d.last_checkpoint_seq
        ORDER BY d.dock""")
    for r in rows:
        r["online"] = _online(r)
        if r["open_gaps"]:
            r["verification"] = "gaps"
        elif r["open_alerts"]:
            r["verification"] = "alerts"
        elif not r["records"]:
            r["verification"] = "no_records"
        elif r["contiguous_to"] < r["max_seq"]:
            r["verification"] = "pending"
        else:
            r["verification"] = "verified"
    return rows


def _online(row: dict[str, Any]) -> str:
    # The retained status is the dock's own word: "online" at every connect, "offline" as
    # its Last Will or at a clean stop. A dock never heard from is "unknown".
    if row["status_state"] is None:
        return "unknown"
    if row["status_state"] != "online":
        return "offline"
    return "online"


def open_alerts(conn: psycopg.Connection[Any], dock: str | None = None,
                limit: int = 500) -> list[dict[str, Any]]:
    """Open alerts, newest first (``dock`` = of that dock only). ``detail`` is the English
    text, ``detail_note`` the same as data (None in rows from before schema version 2)."""
    return _rows(conn, "SELECT id, dock, kind, key, detail, detail_note, seq_from, seq_to, count,"
                       " first_seen, last_seen FROM alerts WHERE closed_at IS NULL"
                       " AND (%(dock)s::text IS NULL OR dock = %(dock)s)"
                       " ORDER BY last_seen DESC, id DESC LIMIT %(limit)s",
                 {"dock": dock, "limit": limit})


def closed_alerts(conn: psycopg.Connection[Any], dock: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    """Recently closed alerts with their resolution."""
    return _rows(conn, "SELECT id, dock, kind, key, detail, detail_note, seq_from, seq_to, count,"
                       " first_seen, closed_at, resolution, resolution_note FROM alerts"
                       " WHERE closed_at IS NOT NULL"
                       " AND (%(dock)s::text IS NULL OR dock = %(dock)s)"
                       " ORDER BY closed_at DESC LIMIT %(limit)s", {"dock": dock, "limit": limit})


def bays(conn: psycopg.Connection[Any], dock: str | None = None) -> list[dict[str, Any]]:
    """Every bay's last state."""
    return _rows(conn, "SELECT dock, bay, state, fault, recorder, officer, updated_at,"
                       " message->>'label' AS label, message->'fault_scope' AS fault_scope,"
                       " received_at FROM bay_states"
                       " WHERE (%(dock)s::text IS NULL OR dock = %(dock)s) ORDER BY dock, bay",
                 {"dock": dock})


def chain_head(conn: psycopg.Connection[Any], dock: str) -> dict[str, Any] | None:
    """What the ledger holds of ``dock``'s chain: the highest seq, the contiguous mark, the
    hash there, and the last signed checkpoint (for ``dockd verify --against-ledger``)."""
    found = _rows(conn, """
        SELECT d.dock, d.max_seq, d.contiguous_to, d.records, h.hash AS max_seq_hash,
               c.seq AS checkpoint_seq, c.hash AS checkpoint_hash, c.time AS checkpoint_time,
               c.public_key AS checkpoint_public_key, c.signature AS checkpoint_signature
        FROM docks d
        LEFT JOIN custody_chain h ON h.dock = d.dock AND h.seq = d.max_seq
        LEFT JOIN checkpoints c ON c.dock = d.dock AND c.seq = d.last_checkpoint_seq
        WHERE d.dock = %s""", (dock,))
    return found[0] if found else None


def chain_hashes(conn: psycopg.Connection[Any], dock: str, first: int,
                 last: int) -> list[dict[str, Any]]:
    """``seq``/``hash`` of the kept records of ``dock`` in ``first``..``last``."""
    return _rows(conn, "SELECT seq, hash FROM custody_chain WHERE dock = %s AND seq BETWEEN %s"
                       " AND %s ORDER BY seq", (dock, first, last))


def recorder_history(conn: psycopg.Connection[Any], serial: str,
                     limit: int = 500) -> list[dict[str, Any]]:
    """Custody events about a recorder at any dock, newest first."""
    return _rows(conn, "SELECT dock, seq, time, type, actor, payload FROM custody"
                       " WHERE subject = %s ORDER BY at DESC, dock, seq DESC LIMIT %s",
                 (serial, limit))


def recorder_health(conn: psycopg.Connection[Any], serial: str) -> list[dict[str, Any]]:
    """A recorder's last health at each dock that reported it."""
    return _rows(conn, "SELECT dock, last_docked, message, received_at FROM recorder_health"
                       " WHERE recorder = %s ORDER BY received_at DESC", (serial,))


def rejected(conn: psycopg.Connection[Any], limit: int = 100) -> list[dict[str, Any]]:
    """The latest rejected messages (without their payloads)."""
    return _rows(conn, "SELECT id, received_at, topic, dock, seq, code, reason, reason_note,"
                       " payload_bytes, payload_sha256 FROM rejected"
                       " ORDER BY received_at DESC, id DESC"
                       " LIMIT %s", (limit,))
