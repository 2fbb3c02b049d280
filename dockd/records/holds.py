"""Holds (rules art. 12(3)): while a hold is active, prune deletes nothing it covers.

A hold covers one item, every item of a case (also those tagged later), or a recorder's
items, optionally only those recorded in a date range (see
:func:`dockd.records.selection.recorder_item_shas` for how a range is matched). Adding and
releasing are custody events (``hold.added``, ``hold.released``).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Any

from dockd.clock import utc_iso
from dockd.errors import UsageError
from dockd.i18n import N_, _
from dockd.records.selection import require_case, require_recorder, resolve_item
from dockd.store.catalog import Catalog, Transaction
from dockd.store.events import HoldAdded, HoldReleased
from dockd.store.evidence import EvidenceStore

SCOPES = ("item", "case", "recorder")
# How a scope reads (translated where shown; the catalog and JSON keep the English key).
SCOPE_WORDS = {"item": N_("item"), "case": N_("case"), "recorder": N_("recorder")}


def scope_text(scope: str) -> str:
    """A hold's scope in the reader's language (文件 / 案件 / 记录仪)."""
    return _(SCOPE_WORDS.get(scope, scope))


@dataclass(frozen=True)
class Hold:
    """One hold as stored."""

    id: int
    scope: str
    target: str
    range_from: str | None
    range_to: str | None
    reason: str
    created_by: str
    created_at: str
    released_by: str | None = None
    released_at: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def to_json_dict(self) -> dict[str, Any]:
        return {"id": self.id, "scope": self.scope, "target": self.target,
                "from": self.range_from, "to": self.range_to, "reason": self.reason,
                "created_by": self.created_by, "created_at": self.created_at,
                "released_by": self.released_by, "released_at": self.released_at,
                "active": self.active}


@dataclass(frozen=True)
class HoldRequest:
    """What ``dockd hold add`` asks for, before validation against the catalog."""

    scope: str
    target: str
    reason: str
    by: str
    range_from: dt.datetime | None = None
    range_to: dt.datetime | None = None


def add_hold(store: EvidenceStore, request: HoldRequest, actor: str) -> Hold:
    """Validate ``request`` against the catalog and store it; custody ``hold.added``."""
    reason, by = _required(request.reason, "--reason"), _required(request.by, "--by")
    target = _resolve_target(store.catalog, request)
    if request.scope != "recorder" and (request.range_from or request.range_to):
        raise UsageError(_("--from and --to apply only to a hold on a recorder"))
    now = utc_iso(store.clock.now())
    range_from = utc_iso(request.range_from) if request.range_from else None
    range_to = utc_iso(request.range_to) if request.range_to else None
    with store.catalog.transaction() as tx:
        cur = tx.execute("INSERT INTO holds (scope, target, range_from, range_to, reason,"
                         " created_by, created_at) VALUES (?,?,?,?,?,?,?)",
                         (request.scope, target, range_from, range_to, reason, by, now))
        hold = Hold(int(cur.lastrowid or 0), request.scope, target, range_from, range_to,
                    reason, by, now)
        store.custody.record(tx, HoldAdded(hold.id, hold.scope, target, range_from, range_to,
                                           reason, by), actor, checkpoint=True)
    return hold


def release_hold(store: EvidenceStore, hold_id: int, by: str, actor: str) -> Hold:
    """Release an active hold; custody ``hold.released``. UsageError when unknown or done."""
    by = _required(by, "--by")
    now = utc_iso(store.clock.now())
    with store.catalog.transaction() as tx:
        row = tx.execute("SELECT * FROM holds WHERE id = ?", (hold_id,)).fetchone()
        if row is None:
            raise UsageError(_("no hold has id {id}").format(id=hold_id))
        if row["released_at"] is not None:
            raise UsageError(_("hold {id} was already released by {by} at {when}")
                             .format(id=hold_id, by=row["released_by"], when=row["released_at"]))
        tx.execute("UPDATE holds SET released_by = ?, released_at = ? WHERE id = ?",
                   (by, now, hold_id))
        store.custody.record(tx, HoldReleased(hold_id, row["scope"], row["target"], by), actor,
                             checkpoint=True)
        released = _hold_from_row(tx.execute("SELECT * FROM holds WHERE id = ?",
                                              (hold_id,)).fetchone())
    return released


def list_holds(catalog: Catalog, include_released: bool = False) -> list[Hold]:
    """Holds, oldest first; only active ones unless ``include_released``."""
    if not catalog.has_table("holds"):
        return []
    where = "" if include_released else " WHERE released_at IS NULL"
    return [_hold_from_row(r) for r in catalog.query(f"SELECT * FROM holds{where} ORDER BY id")]


def holds_on_item(conn: Catalog | Transaction, sha256: str) -> list[int]:
    """Ids of the active holds covering ``sha256`` (call inside the deciding transaction)."""
    rows = conn.conn.execute(_HOLDS_ON_ITEM_SQL, {"sha": sha256}).fetchall()
    return sorted(int(r[0]) for r in rows)


def held_items(catalog: Catalog) -> frozenset[str]:
    """SHA-256 of every stored item an active hold covers now (the archive mirrors these
    onto the bucket's legal hold; matches ``dockd.records.archive.holds.HeldItems``)."""
    if not catalog.has_table("holds"):
        return frozenset()
    rows = catalog.query("SELECT sha256 FROM items WHERE deleted_at IS NULL")
    return frozenset(str(r[0]) for r in rows if holds_on_item(catalog, str(r[0])))


def _resolve_target(catalog: Catalog, request: HoldRequest) -> str:
    if request.scope == "item":
        return resolve_item(catalog, request.target)
    if request.scope == "case":
        return require_case(catalog, request.target)
    if request.scope == "recorder":
        if request.range_from and request.range_to and request.range_to <= request.range_from:
            raise UsageError(_("--to must be after --from"))
        return require_recorder(catalog, request.target)
    raise UsageError(_("hold scope {scope!r} is not one of item, case, recorder")
                     .format(scope=request.scope))


def _required(value: str, option: str) -> str:
    if not value or not value.strip():
        raise UsageError(_("{option} is required and cannot be empty").format(option=option))
    return value.strip()


def _hold_from_row(row: sqlite3.Row) -> Hold:
    return Hold(row["id"], row["scope"], row["target"], row["range_from"], row["range_to"],
                row["reason"], row["created_by"], row["created_at"], row["released_by"],
                row["released_at"])


# Mirrors selection.recorder_item_shas (not strict) for one item, inside SQL so that the
# decision and the deletion share one transaction.
_HOLDS_ON_ITEM_SQL = """
SELECT h.id FROM holds h WHERE h.released_at IS NULL AND (
    (h.scope = 'item' AND h.target = :sha)
 OR (h.scope = 'case' AND EXISTS (SELECT 1 FROM case_items c
                                  WHERE c.case_no = h.target AND c.sha256 = :sha))
 OR (h.scope = 'recorder' AND EXISTS (
        SELECT 1 FROM sightings s LEFT JOIN metadata m ON m.sha256 = s.sha256
        WHERE s.sha256 = :sha AND s.recorder = h.target
          AND (h.range_to IS NULL OR m.start_time IS NULL OR m.start_time < h.range_to
               OR s.seen_at < h.range_to)
          AND (h.range_from IS NULL OR s.seen_at >= h.range_from)))
)
"""
