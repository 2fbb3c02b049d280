"""The records' views of ``dockd catalog`` (rules art. 8): by officer and by case, on top
of the core's per-sighting listing. Each row gains ``officer`` and ``cases``."""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator
from typing import Any

from dockd.records.people import Officer, recorder_entry
from dockd.records.selection import require_case
from dockd.store.catalog import Catalog
from dockd.store.events import RecorderDocked


def filter_items(catalog: Catalog, items: Iterable[dict[str, Any]], officer: str | None,
                 case_no: str | None) -> Iterator[dict[str, Any]]:
    """``items`` (from ``iter_catalog_items``) annotated with officer and cases, keeping
    those of ``officer`` (matched by id or name) and of ``case_no`` when given. Streamed:
    the officers' dock events and the case tags are read once, not once per item (they
    grow with docks and tags, not with stored files)."""
    if case_no is not None:
        require_case(catalog, case_no)
    officers = _OfficerLookup(catalog)
    cases = _case_tags(catalog)
    for item in items:
        who = officers.at(item["recorder"], item["ingested_at"])
        item["officer"] = {"id": who.id, "name": who.name} if who else None
        item["cases"] = cases.get(item["sha256"], [])
        if officer is not None and (who is None or officer not in (who.id, who.name)):
            continue
        if case_no is not None and case_no not in item["cases"]:
            continue
        yield item


class _OfficerLookup:
    """:func:`officer_at` for many items: each recorder's ``recorder.docked`` events and its
    registry entry are read once."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._docks: dict[str, tuple[list[str], list[Officer | None]]] = {}
        self._registry: dict[str, Officer | None] = {}
        self._unordered: set[str] = set()
        rows = catalog.conn.execute(
            "SELECT subject, time, payload FROM custody WHERE type = ? ORDER BY seq",
            (RecorderDocked.TYPE,))
        for serial, time, payload in rows:
            times, named = self._docks.setdefault(serial, ([], []))
            data = json.loads(payload)
            who = Officer(_text(data.get("officer_id")), _text(data.get("officer_name")))
            if times and time < times[-1]:
                self._unordered.add(serial)  # the clock went back: no bisecting for it
            times.append(time)  # in seq order
            named.append(who if who.id or who.name else None)

    def at(self, serial: str, moment: str) -> Officer | None:
        """The officer named by the last (by seq) dock event at or before ``moment``, else
        the registry's."""
        times, named = self._docks.get(serial, ([], []))
        if serial in self._unordered:
            i = max((n + 1 for n, t in enumerate(times) if t <= moment), default=0)
        else:
            i = bisect.bisect_right(times, moment)
        if i and named[i - 1] is not None:
            return named[i - 1]
        if serial not in self._registry:
            entry = recorder_entry(self.catalog, serial)
            self._registry[serial] = Officer(entry.officer_id, entry.officer_name) \
                if entry is not None and (entry.officer_id or entry.officer_name) else None
        return self._registry[serial]


def _case_tags(catalog: Catalog) -> dict[str, list[str]]:
    if not catalog.has_table("case_items"):
        return {}
    tags: dict[str, list[str]] = {}
    for sha, case_no in catalog.conn.execute(
            "SELECT sha256, case_no FROM case_items ORDER BY sha256, case_no"):
        tags.setdefault(sha, []).append(str(case_no))
    return tags


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
