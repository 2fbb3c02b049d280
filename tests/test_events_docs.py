"""The custody event tables in docs/ and the event classes of dockd/store/events.py agree."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from dockd.store import events
from dockd.store.events import CustodyEvent, event_types

DOCS = Path(__file__).resolve().parent.parent / "docs"
EVENT_DOCS = ("store.md", "runtime.md", "records.md", "archive.md")
_ROW = re.compile(r"^\|\s*`([a-z_]+\.[a-z_]+)`[^|]*\|[^|]*\|(.*)\|\s*$")
_AS = re.compile(r"^as `([a-z_]+\.[a-z_]+)`")


def documented() -> dict[str, tuple[set[str], set[str]]]:
    """type → (required keys, optional keys) from every event table of the docs."""
    rows: dict[str, str] = {}
    for name in EVENT_DOCS:
        for line in (DOCS / name).read_text().splitlines():
            match = _ROW.match(line)
            if match:
                assert match[1] not in rows, f"{match[1]} is documented twice"
                rows[match[1]] = match[2].strip()
    found: dict[str, tuple[set[str], set[str]]] = {}
    for type_, cell in rows.items():
        base: set[str] = set()
        same_as = _AS.match(cell)
        if same_as:
            base = _keys(rows[same_as[1]])[0]
            cell = cell[same_as.end():]
        required, optional = _keys(cell)
        found[type_] = (base | required, optional)
    return found


def _keys(cell: str) -> tuple[set[str], set[str]]:
    cell = re.sub(r"\([^)]*\)", "", cell)  # explanations and value lists are not keys
    optional = set(re.findall(r"\[`([a-z_0-9]+)`\]", cell))
    every = set(re.findall(r"`([a-z_0-9]+)`", cell))
    return every - optional, optional


def code_types() -> dict[str, type[CustodyEvent]]:
    return {t: cls for t, cls in event_types().items() if cls.__module__ == events.__name__}


def payload_keys(cls: type[CustodyEvent]) -> tuple[set[str], set[str], bool]:
    required: set[str] = set()
    optional: set[str] = set()
    merged = False
    for f in dataclasses.fields(cls):
        if f.metadata.get("subject_only"):
            continue
        if f.metadata.get("merged"):
            merged = True
            continue
        (optional if f.metadata.get("optional") else required).add(f.metadata.get("key", f.name))
    return required, optional, merged


def test_every_event_type_is_documented_once_and_exists() -> None:
    assert set(documented()) == set(code_types())


@pytest.mark.parametrize("type_", sorted(code_types()))
def test_documented_payload_keys_match_the_event_class(type_: str) -> None:
    required, optional, merged = payload_keys(code_types()[type_])
    doc_required, doc_optional = documented()[type_]
    assert doc_optional == optional, f"{type_}: optional keys"
    if merged:  # a summary from its domain object: at least the event's own keys
        assert required <= doc_required, f"{type_}: keys missing from the docs"
    else:
        assert doc_required == required, f"{type_}: documented {sorted(doc_required)}"


def test_payload_is_what_the_class_declares() -> None:
    event = events.FileIngested("s1", "ab" * 32, 5, "CAM1", "DCIM/A.MP4", 7, True, "objects/ab",
                                sm3="cd" * 32)
    assert event.subject == "ab" * 32
    assert event.to_payload() == {
        "session_id": "s1", "sha256": "ab" * 32, "size": 5, "recorder": "CAM1",
        "source_path": "DCIM/A.MP4", "mtime_ns": 7, "new_item": True, "stored_path": "objects/ab",
        "sm3": "cd" * 32}
    hold = events.HoldAdded(3, "recorder", "CAM1", "2026-01-01", None, "complaint", "chief")
    assert hold.to_payload()["from"] == "2026-01-01" and "range_from" not in hold.to_payload()
    skipped = events.FileSkipped("CAM1", "s1", "DCIM/x", "fifo")
    assert skipped.subject == "CAM1" and "recorder" not in skipped.to_payload()
    archived = events.SessionArchived("s1", "CAM1", None, "b", "2027-01-01", "OFF",
                                      (events.ArchivedFile("k", "v", "s", "c"),))
    assert archived.to_payload()["files"] == [
        {"key": "k", "version_id": "v", "sha256": "s", "checksum_sha256": "c"}]


@pytest.mark.parametrize("type_", sorted(code_types()))
def test_the_subject_is_a_field_or_the_class_says_what_it_is(type_: str) -> None:
    cls = code_types()[type_]
    if cls.subject is CustodyEvent.subject:  # not overridden: SUBJECT names the field
        assert cls.SUBJECT in {f.name for f in dataclasses.fields(cls)}, type_
