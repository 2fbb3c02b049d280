"""Naming what a command acts on: an item by its SHA-256, a case by its number, a
recorder's items in a time range. Every unknown name is a UsageError that says so."""

from __future__ import annotations

import datetime as dt
import re

from dockd.clock import utc_iso
from dockd.errors import UsageError
from dockd.i18n import _
from dockd.store.catalog import Catalog

SHA_PREFIX_MIN = 12
_HEX = re.compile(r"^[0-9a-f]+$")
# Case numbers are the bureau's own (e.g. 威自然资罚〔2026〕12号): any printable text.
_CASE_NO = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


def resolve_item(catalog: Catalog, text: str, allow_deleted: bool = False) -> str:
    """The full SHA-256 of the stored item ``text`` names (full hash or a unique prefix of
    at least 12 hex digits)."""
    sha = text.strip().lower()
    if len(sha) < SHA_PREFIX_MIN or len(sha) > 64 or not _HEX.match(sha):
        raise UsageError(_("{value!r} is not an item SHA-256 (64 hex digits, or a unique prefix"
                           " of at least 12)").format(value=text))
    rows = catalog.query("SELECT sha256, deleted_at FROM items WHERE sha256 >= ? AND sha256 < ?"
                         " LIMIT 2", (sha, sha + "g"))
    if not rows:
        raise UsageError(_("no stored item has SHA-256 {sha}").format(sha=sha))
    if len(rows) > 1:
        raise UsageError(_("SHA-256 prefix {sha} names more than one item; give more digits")
                         .format(sha=sha))
    if rows[0]["deleted_at"] is not None and not allow_deleted:
        raise UsageError(_("item {sha} was deleted by prune on {when}")
                         .format(sha=rows[0]["sha256"], when=rows[0]["deleted_at"]))
    return str(rows[0]["sha256"])


def resolve_items(catalog: Catalog, texts: list[str]) -> list[str]:
    """:func:`resolve_item` for each, without duplicates, in the order given."""
    return list(dict.fromkeys(resolve_item(catalog, t) for t in texts))


def validate_case_no(text: str) -> str:
    """A case number: 1-64 printable characters, no leading or trailing space."""
    if not _CASE_NO.match(text) or text != text.strip():
        raise UsageError(_("case number {value!r} is not valid: use 1-64 printable characters")
                         .format(value=text))
    return text


def case_exists(catalog: Catalog, case_no: str) -> bool:
    """True when the case has been created by tagging."""
    if not catalog.has_table("cases"):
        return False
    return catalog.query_one("SELECT 1 FROM cases WHERE case_no = ?", (case_no,)) is not None


def require_case(catalog: Catalog, case_no: str) -> str:
    """``case_no`` when the case exists, else a UsageError naming it."""
    validate_case_no(case_no)
    if not case_exists(catalog, case_no):
        raise UsageError(_("unknown case {case}: tag recordings with it first"
                           " (dockd case tag {case} --items ...)").format(case=case_no))
    return case_no


def case_item_shas(catalog: Catalog, case_no: str) -> list[str]:
    """The case's items that are still stored, oldest first."""
    rows = catalog.query("SELECT c.sha256 FROM case_items c JOIN items i ON i.sha256 = c.sha256"
                         " WHERE c.case_no = ? AND i.deleted_at IS NULL"
                         " ORDER BY i.ingested_at, c.sha256", (case_no,))
    return [str(r[0]) for r in rows]


def require_recorder(catalog: Catalog, serial: str) -> str:
    """``serial`` when the dock has ever seen or enrolled that recorder."""
    seen = catalog.query_one("SELECT 1 FROM sightings WHERE recorder = ? LIMIT 1", (serial,))
    if seen is None and catalog.has_table("recorders"):
        seen = catalog.query_one("SELECT 1 FROM recorders WHERE serial = ?", (serial,))
    if seen is None:
        raise UsageError(_("unknown recorder {serial}: it was never docked or enrolled here")
                         .format(serial=serial))
    return serial


def recorder_item_shas(catalog: Catalog, serial: str, start: dt.datetime | None,
                       end: dt.datetime | None, strict: bool = False) -> list[str]:
    """Stored items found on ``serial`` recorded in [start, end).

    ``strict`` (tagging a case): the recording's start time, or when the file does not
    say, its docking time, lies in the range. Not strict (holds): a recording happened
    before the dock saw it and the recorder's clock may be wrong, so an item counts when
    its start time or its docking time is before ``end`` and it was docked at or after
    ``start`` -- erring towards too much, the safe side for a hold.
    """
    sql = _STRICT_SQL if strict else _RECORDER_ITEMS_SQL
    params: dict[str, object] = {"serial": serial, "start": utc_iso(start) if start else None,
              "end": utc_iso(end) if end else None}
    return [str(r[0]) for r in catalog.query(sql, params)]


_RECORDER_ITEMS_SQL = (
    "SELECT DISTINCT s.sha256 FROM sightings s JOIN items i ON i.sha256 = s.sha256"
    " LEFT JOIN metadata m ON m.sha256 = s.sha256"
    " WHERE s.recorder = :serial AND i.deleted_at IS NULL"
    " AND (:end IS NULL OR m.start_time IS NULL OR m.start_time < :end OR s.seen_at < :end)"
    " AND (:start IS NULL OR s.seen_at >= :start)"
    " ORDER BY s.sha256"
)

_STRICT_SQL = (
    "SELECT DISTINCT s.sha256 FROM sightings s JOIN items i ON i.sha256 = s.sha256"
    " LEFT JOIN metadata m ON m.sha256 = s.sha256"
    " WHERE s.recorder = :serial AND i.deleted_at IS NULL"
    " AND (:end IS NULL OR COALESCE(m.start_time, s.seen_at) < :end)"
    " AND (:start IS NULL OR COALESCE(m.start_time, s.seen_at) >= :start)"
    " ORDER BY s.sha256"
)
