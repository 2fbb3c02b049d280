"""Cases (rules art. 8): recordings tagged with a case number, and the annotations an
export needs that no file carries (place, recording operator).

Tagging creates the case on first use; tags and annotations are only ever added, each
with a custody event (``case.tagged``, ``item.annotated``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockd.clock import utc_iso
from dockd.errors import UsageError
from dockd.i18n import _
from dockd.records.selection import validate_case_no
from dockd.store.catalog import Catalog
from dockd.store.events import CaseTagged, ItemAnnotated
from dockd.store.evidence import EvidenceStore


@dataclass(frozen=True)
class TagResult:
    """Which items a ``case tag`` added and which already carried the tag."""

    case_no: str
    added: tuple[str, ...]
    already: tuple[str, ...]
    created: bool


@dataclass(frozen=True)
class CaseSummary:
    """One case for ``dockd case list``."""

    case_no: str
    place: str | None
    items: int
    bytes: int
    created_at: str

    def to_json_dict(self) -> dict[str, Any]:
        return {"case": self.case_no, "place": self.place, "items": self.items,
                "bytes": self.bytes, "created_at": self.created_at}


def tag_items(store: EvidenceStore, case_no: str, shas: list[str], stated_by: str | None,
              actor: str, place: str | None = None) -> TagResult:
    """Tag ``shas`` (already resolved) with ``case_no``; creates the case when new. The
    catalog names ``stated_by`` (``--by``) as the tagger, else the actor."""
    by = stated_by or actor
    validate_case_no(case_no)
    if not shas:
        raise UsageError(_("no recordings match: nothing was tagged with case {case}")
                         .format(case=case_no))
    place = _clean(place)
    now = utc_iso(store.clock.now())
    with store.catalog.transaction() as tx:
        row = tx.execute("SELECT place FROM cases WHERE case_no = ?", (case_no,)).fetchone()
        created = row is None
        if created:
            tx.execute("INSERT INTO cases (case_no, place, created_by, created_at)"
                       " VALUES (?,?,?,?)", (case_no, place, by, now))
        elif place is not None and row["place"] not in (None, place):
            raise UsageError(_("case {case} already has the place {place!r}; annotate single"
                               " recordings with 'dockd case annotate' instead")
                             .format(case=case_no, place=row["place"]))
        elif place is not None:
            tx.execute("UPDATE cases SET place = ? WHERE case_no = ?", (place, case_no))
        added: list[str] = []
        already: list[str] = []
        for sha in shas:
            cur = tx.execute("INSERT OR IGNORE INTO case_items (case_no, sha256, tagged_by,"
                             " tagged_at) VALUES (?,?,?,?)", (case_no, sha, by, now))
            (added if cur.rowcount else already).append(sha)
        if added or created or place is not None:
            store.custody.record(tx, CaseTagged(case_no, tuple(added), place, created,
                                                    stated_by or None), actor)
    return TagResult(case_no, tuple(added), tuple(already), created)


def annotate_items(store: EvidenceStore, shas: list[str], by: str, actor: str,
                   place: str | None = None, operator_name: str | None = None,
                   fields: Mapping[str, str] | None = None) -> int:
    """Record the place, the recording operator and/or other art. 12(4) ``fields``
    (already checked by :func:`dockd.records.fields.annotation_values`) of ``shas``; the
    latest of each counts."""
    place, operator_name = _clean(place), _clean(operator_name)
    fields = dict(fields or {})
    if place is None and operator_name is None and not fields:
        raise UsageError(_("give at least one of --place, --operator, --officer, --start,"
                           " --end, --format, --length, --brand, --model to annotate"))
    now = utc_iso(store.clock.now())
    with store.catalog.transaction() as tx:
        for sha in shas:
            if place is not None or operator_name is not None:
                tx.execute("INSERT INTO item_annotations (sha256, place, operator_name,"
                           " annotated_by, annotated_at) VALUES (?,?,?,?,?)",
                           (sha, place, operator_name, by, now))
            for name, value in sorted(fields.items()):
                tx.execute("INSERT INTO item_field_annotations (sha256, field, value,"
                           " annotated_by, annotated_at) VALUES (?,?,?,?,?)",
                           (sha, name, value, by, now))
            store.custody.record(tx, ItemAnnotated(sha, place, operator_name, by, fields), actor)
    return len(shas)


def list_cases(catalog: Catalog) -> list[CaseSummary]:
    """Every case with its count of still-stored recordings."""
    if not catalog.has_table("cases"):
        return []
    rows = catalog.query(
        "SELECT c.case_no, c.place, c.created_at, COUNT(i.sha256) AS n,"
        " COALESCE(SUM(i.size), 0) AS bytes FROM cases c"
        " LEFT JOIN case_items ci ON ci.case_no = c.case_no"
        " LEFT JOIN items i ON i.sha256 = ci.sha256 AND i.deleted_at IS NULL"
        " GROUP BY c.case_no ORDER BY c.created_at, c.case_no")
    return [CaseSummary(r["case_no"], r["place"], r["n"], r["bytes"], r["created_at"])
            for r in rows]


def cases_of_item(catalog: Catalog, sha256: str) -> list[str]:
    """The case numbers ``sha256`` is tagged with."""
    if not catalog.has_table("case_items"):
        return []
    return [str(r[0]) for r in catalog.query(
        "SELECT case_no FROM case_items WHERE sha256 = ? ORDER BY case_no", (sha256,))]


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or len(value) > 200:
        raise UsageError(_("{value!r} is not valid: use up to 200 printable characters")
                         .format(value=value))
    return value
