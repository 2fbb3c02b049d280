"""Who had a recorder: the officer named when it was docked, else the registry's current
assignment. Tolerates stores without a registry and recorders never enrolled (None)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from dockd.store.catalog import Catalog
from dockd.store.events import RecorderDocked
from dockd.store.registry import Recorder, lookup


@dataclass(frozen=True)
class Officer:
    """An officer as the dock knows them; either part may be unknown."""

    id: str | None
    name: str | None

    @property
    def label(self) -> str:
        return self.name or self.id or "?"


def recorder_entry(catalog: Catalog, serial: str) -> Recorder | None:
    """The registry entry of ``serial``; None when not enrolled or there is no registry."""
    if not catalog.has_table("recorders"):
        return None
    return lookup(catalog, serial)


def officer_at(catalog: Catalog, serial: str, moment: str) -> Officer | None:
    """The officer of ``serial`` at ``moment`` (UTC text): the ``recorder.docked`` event at or
    before it names who docked it; without one, the registry's assignment; else None."""
    row = catalog.query_one(
        "SELECT payload FROM custody WHERE type = ? AND subject = ?"
        " AND time <= ? ORDER BY seq DESC LIMIT 1", (RecorderDocked.TYPE, serial, moment))
    if row is not None:
        payload = json.loads(row[0])
        officer = Officer(_text(payload.get("officer_id")), _text(payload.get("officer_name")))
        if officer.id or officer.name:
            return officer
    entry = recorder_entry(catalog, serial)
    if entry is not None and (entry.officer_id or entry.officer_name):
        return Officer(entry.officer_id, entry.officer_name)
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
