"""The art. 12(4) description of a recording, from what the dock actually knows.

For evidence burned to disc the rules ask for: officer name, recording operator name,
start and end time, place, device brand and model, format and length. Each field comes
from one named source; a field no source knows is None (null in JSON), never guessed:

* officer name -- the officer named when the recorder was docked (``recorder.docked``),
  else the registry's assignment (:mod:`dockd.records.people`);
* operator name, place -- annotations (``dockd case annotate``); place also from the case;
  the operator falls back to the officer when ``[records] operator_defaults_to_officer``;
* start, end, format, length -- the file's own metadata, as read at ingest;
* brand, model -- the recorder registry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from dockd.clock import utc_iso
from dockd.errors import UsageError
from dockd.i18n import N_, _
from dockd.records.people import officer_at, recorder_entry
from dockd.store.catalog import Catalog

# The keys of one recording in manifest.json, in order (tests and docs use this list).
ART_12_4_FIELDS = ("officer_name", "operator_name", "start_time", "end_time", "place",
                   "device_brand", "device_model", "format", "length_s")
# What a person may enter by hand (place and operator have their own annotations).
HAND_FIELDS = ("officer_name", "start_time", "end_time", "format", "length_s", "device_brand",
               "device_model")
FIELD_LABELS = {
    "officer_name": N_("Officer name"), "operator_name": N_("Recording operator name"),
    "start_time": N_("Start time"), "end_time": N_("End time"), "place": N_("Place"),
    "device_brand": N_("Device brand"), "device_model": N_("Device model"),
    "format": N_("Format"), "length_s": N_("Length"),
}


@dataclass(frozen=True)
class RecordingFields:
    """One recording's art. 12(4) fields plus what identifies the file."""

    sha256: str
    size: int
    sm3: str | None
    recorder: str
    source_name: str
    officer_name: str | None
    operator_name: str | None
    start_time: str | None
    end_time: str | None
    place: str | None
    device_brand: str | None
    device_model: str | None
    format: str | None
    length_s: float | None
    seen_at: str = ""  # when the dock first stored it (UTC text)
    annotated: tuple[str, ...] = ()  # fields entered by hand (dockd case annotate)

    def art_12_4(self) -> dict[str, Any]:
        """The art. 12(4) fields as a dict, keys in :data:`ART_12_4_FIELDS` order."""
        return {k: getattr(self, k) for k in ART_12_4_FIELDS}

    def missing(self) -> tuple[str, ...]:
        """The art. 12(4) fields no source knows, in :data:`ART_12_4_FIELDS` order."""
        return tuple(k for k in ART_12_4_FIELDS if getattr(self, k) in (None, ""))

    def chronological_key(self) -> tuple[str, str, str]:
        """Sorts recordings by when they were made (their start time; when unknown, when
        the dock stored them), so a sheet reads in the order events happened."""
        return (self.start_time or self.seen_at, self.seen_at, self.sha256)


def recording_fields(catalog: Catalog, sha256: str, case_no: str | None = None,
                     operator_defaults_to_officer: bool = False) -> RecordingFields:
    """The fields of stored item ``sha256``; ``case_no`` gives the case's place as fallback;
    with ``operator_defaults_to_officer`` an operator nobody annotated is the officer."""
    item = catalog.query_one("SELECT size, sm3 FROM items WHERE sha256 = ?", (sha256,))
    if item is None:
        raise KeyError(sha256)
    sighting = catalog.query_one(
        "SELECT recorder, source_path, seen_at FROM sightings WHERE sha256 = ?"
        " ORDER BY seen_at, id LIMIT 1", (sha256,))
    meta = catalog.query_one("SELECT format, start_time, end_time, duration_s FROM metadata"
                             " WHERE sha256 = ?", (sha256,))
    recorder = str(sighting["recorder"]) if sighting else ""
    officer = officer_at(catalog, recorder, sighting["seen_at"]) if sighting else None
    entry = recorder_entry(catalog, recorder) if recorder else None
    place, operator = _annotations(catalog, sha256)
    if operator is None and operator_defaults_to_officer and officer is not None:
        operator = officer.name
    known = RecordingFields(
        sha256=sha256, size=int(item["size"]), sm3=item["sm3"], recorder=recorder,
        source_name=str(sighting["source_path"]) if sighting else sha256,
        officer_name=officer.name if officer else None,
        operator_name=operator,
        start_time=meta["start_time"] if meta else None,
        end_time=meta["end_time"] if meta else None,
        place=place or _case_place(catalog, sha256, case_no),
        device_brand=entry.brand if entry else None,
        device_model=entry.model if entry else None,
        format=meta["format"] if meta else None,
        length_s=meta["duration_s"] if meta else None,
        seen_at=str(sighting["seen_at"]) if sighting else "",
    )
    return _with_hand_entries(known, _field_annotations(catalog, sha256))


def _with_hand_entries(known: RecordingFields, entered: dict[str, str]) -> RecordingFields:
    """Fill what no source knows with what a person entered; a source always wins."""
    filled: dict[str, Any] = {}
    for name, value in entered.items():
        if name in HAND_FIELDS and getattr(known, name) is None:
            filled[name] = float(value) if name == "length_s" else value
    if not filled:
        return known
    return dataclasses.replace(known, annotated=tuple(k for k in ART_12_4_FIELDS if k in filled),
                               **filled)


def _field_annotations(catalog: Catalog, sha256: str) -> dict[str, str]:
    """The latest hand-entered value of each field of ``sha256``."""
    if not catalog.has_table("item_field_annotations"):
        return {}
    rows = catalog.query("SELECT field, value FROM item_field_annotations WHERE sha256 = ?"
                         " ORDER BY id", (sha256,))
    return {str(r[0]): str(r[1]) for r in rows}


def annotation_values(tz: dt.tzinfo, officer: str | None = None, start: str | None = None,
                      end: str | None = None, format_: str | None = None,
                      length: str | None = None, brand: str | None = None,
                      model: str | None = None) -> dict[str, str]:
    """The art. 12(4) fields a person gives ``dockd case annotate``, checked and in the
    catalog's form: times as UTC text (typed as local ``YYYY-MM-DD HH:MM[:SS]`` in ``tz``,
    or with an offset), length in seconds (typed ``H:MM:SS``, ``M:SS`` or seconds).
    UsageError naming the option on a bad value."""
    out: dict[str, str] = {}
    for option, name, value in (("--officer", "officer_name", officer),
                                ("--format", "format", format_),
                                ("--brand", "device_brand", brand),
                                ("--model", "device_model", model)):
        text = _text(option, value)
        if text is not None:
            out[name] = text
    for option, name, value in (("--start", "start_time", start), ("--end", "end_time", end)):
        if value is not None:
            out[name] = utc_iso(_moment(option, value, tz))
    if "start_time" in out and "end_time" in out and out["end_time"] < out["start_time"]:
        raise UsageError(_("--end is before --start"))
    if length is not None:
        out["length_s"] = repr(_seconds(length))
    return out


def _text(option: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise UsageError(_("{option} {value!r} is not valid: use up to 200 printable characters")
                         .format(option=option, value=value))
    return value


def _moment(option: str, text: str, tz: dt.tzinfo) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or not 1970 <= moment.year <= 2100:
        raise UsageError(_("{option} {value!r} is not a time: use YYYY-MM-DD HH:MM:SS (local"
                           " time, [dock] timezone)").format(option=option, value=text))
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _seconds(text: str) -> float:
    parts = text.strip().split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    ok = 1 <= len(numbers) <= 3 and all(n >= 0 and n == n and n < 1e7 for n in numbers) \
        and all(n < 60 for n in numbers[1:])
    if not ok:
        raise UsageError(_("--length {value!r} is not a length: use H:MM:SS (时:分:秒) or"
                           " seconds").format(value=text))
    seconds = 0.0
    for n in numbers:
        seconds = seconds * 60 + n
    return seconds


def _annotations(catalog: Catalog, sha256: str) -> tuple[str | None, str | None]:
    """The latest place and latest operator annotated for ``sha256``."""
    if not catalog.has_table("item_annotations"):
        return None, None
    place = catalog.query_one("SELECT place FROM item_annotations WHERE sha256 = ?"
                              " AND place IS NOT NULL ORDER BY id DESC LIMIT 1", (sha256,))
    operator = catalog.query_one("SELECT operator_name FROM item_annotations WHERE sha256 = ?"
                                 " AND operator_name IS NOT NULL ORDER BY id DESC LIMIT 1",
                                 (sha256,))
    return (place[0] if place else None), (operator[0] if operator else None)


def _case_place(catalog: Catalog, sha256: str, case_no: str | None) -> str | None:
    """The place of ``case_no``; without one, of the item's only case that has a place."""
    if not catalog.has_table("cases"):
        return None
    if case_no is not None:
        row = catalog.query_one("SELECT place FROM cases WHERE case_no = ?", (case_no,))
        return row[0] if row else None
    rows = catalog.query("SELECT DISTINCT c.place FROM cases c JOIN case_items ci"
                         " ON ci.case_no = c.case_no WHERE ci.sha256 = ? AND c.place IS NOT NULL",
                         (sha256,))
    return rows[0][0] if len(rows) == 1 else None
