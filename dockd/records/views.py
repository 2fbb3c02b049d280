"""The records' views of ``dockd catalog`` (rules art. 8): by officer and by case, on top
of the core's per-sighting listing. Each row gains ``officer`` and ``cases``."""

from __future__ import annotations

from typing import Any

from dockd.records.cases import cases_of_item
from dockd.records.people import officer_at
from dockd.records.selection import require_case
from dockd.store.catalog import Catalog


def filter_items(catalog: Catalog, items: list[dict[str, Any]], officer: str | None,
                 case_no: str | None) -> list[dict[str, Any]]:
    """``items`` (from ``catalog_items``) annotated with officer and cases, keeping those
    of ``officer`` (matched by id or name) and of ``case_no`` when given."""
    if case_no is not None:
        require_case(catalog, case_no)
    out = []
    for item in items:
        who = officer_at(catalog, item["recorder"], item["ingested_at"])
        item["officer"] = {"id": who.id, "name": who.name} if who else None
        item["cases"] = cases_of_item(catalog, item["sha256"])
        if officer is not None and (who is None or officer not in (who.id, who.name)):
            continue
        if case_no is not None and case_no not in item["cases"]:
            continue
        out.append(item)
    return out
