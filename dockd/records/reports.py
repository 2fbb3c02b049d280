"""The reports for supervisors, as data (tables: :mod:`dockd.records.reports_tables`;
text, CSV, PDF: :mod:`dockd.records.render`).

* weekly (art. 12(2)): per officer and recorder -- docks, offload sessions, files, hours
  recorded, bytes, faults; and the recorders not docked for longer than
  ``[records] undocked_alert_hours``;
* supervision (art. 13-16): integrity checks, offload failures, faults, recorders marked
  faulty or in repair, never docked or overdue, the holds in force, and the exports and
  access-register entries of the period.

Sources: sessions and sightings (the core), ``recorder.docked`` and ``bay.fault`` custody
events (the dock runtime), ``export.created`` and ``access.registered`` (records), the
recorder registry, holds. Hours come from the files' own
durations; a file whose length is unknown adds nothing and is counted as such.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from dockd.clock import parse_utc_iso, utc_iso
from dockd.records.holds import Hold, list_holds
from dockd.records.people import officer_at
from dockd.records.periods import Period
from dockd.store.catalog import Catalog
from dockd.store.events import (
    AccessRegistered,
    BayFault,
    ExportCreated,
    FileFailed,
    RecorderDocked,
    RecorderStateChanged,
    VerifyCompleted,
)

DOCK_EVENT = RecorderDocked.TYPE
FAULT_EVENT = BayFault.TYPE
OFFLOAD_FAILED_RESULTS = ("incomplete", "interrupted")


@dataclass
class WeeklyRow:
    """One officer with one recorder over the period."""

    officer: str | None
    recorder: str
    docks: int = 0
    sessions: int = 0
    files: int = 0
    files_without_length: int = 0
    seconds: float = 0.0
    bytes: int = 0
    faults: int = 0

    @property
    def hours(self) -> float:
        return round(self.seconds / 3600, 2)

    def to_json_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["seconds"]
        out["hours"] = self.hours
        return out


@dataclass(frozen=True)
class Overdue:
    """A recorder whose last dock is longer ago than the alert threshold (or never)."""

    recorder: str
    officer: str | None
    last_docked: str | None
    hours_since: float | None


@dataclass(frozen=True)
class DayTotals:
    """One local day of the period, for the chart."""

    day: str
    files: int
    hours: float
    problems: int


@dataclass
class WeeklyReport:
    """Everything ``dockd report weekly`` shows."""

    period: Period
    generated_at: str
    alert_hours: int
    rows: list[WeeklyRow] = field(default_factory=list)
    overdue: list[Overdue] = field(default_factory=list)
    days: list[DayTotals] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {"report": "weekly", "week": self.period.label, "from": self.period.start_utc,
                "to": self.period.end_utc, "generated_at": self.generated_at,
                "undocked_alert_hours": self.alert_hours,
                "rows": [r.to_json_dict() for r in self.rows],
                "overdue": [asdict(o) for o in self.overdue],
                "days": [asdict(d) for d in self.days]}


@dataclass
class SupervisionReport:
    """Everything ``dockd report supervision`` shows."""

    period: Period
    generated_at: str
    alert_hours: int
    integrity: list[dict[str, Any]] = field(default_factory=list)
    offload_failures: list[dict[str, Any]] = field(default_factory=list)
    file_failures: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    never_docked: list[str] = field(default_factory=list)
    overdue: list[Overdue] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    out_of_service: list[dict[str, Any]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)
    access: list[dict[str, Any]] = field(default_factory=list)
    days: list[DayTotals] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {"report": "supervision", "week": self.period.label,
                "from": self.period.start_utc, "to": self.period.end_utc,
                "generated_at": self.generated_at, "undocked_alert_hours": self.alert_hours,
                "integrity": self.integrity, "offload_failures": self.offload_failures,
                "file_failures": self.file_failures, "faults": self.faults,
                "never_docked": self.never_docked,
                "overdue": [asdict(o) for o in self.overdue],
                "holds": [h.to_json_dict() for h in self.holds],
                "out_of_service": self.out_of_service, "exports": self.exports,
                "access": self.access, "days": [asdict(d) for d in self.days]}


def weekly_report(catalog: Catalog, period: Period, now: dt.datetime,
                  alert_hours: int) -> WeeklyReport:
    """The art. 12(2) weekly report of ``period``."""
    report = WeeklyReport(period, utc_iso(now), alert_hours)
    rows: dict[tuple[str | None, str], WeeklyRow] = {}

    def row(recorder: str, moment: str) -> WeeklyRow:
        officer = officer_at(catalog, recorder, moment)
        key = (officer.label if officer else None, recorder)
        return rows.setdefault(key, WeeklyRow(key[0], recorder))

    span: dict[str, object] = {"start": period.start_utc, "end": period.end_utc}
    for e in _events(catalog, DOCK_EVENT, span):
        row(e["subject"], e["time"]).docks += 1
    for e in _events(catalog, FAULT_EVENT, span):
        row(e["subject"], e["time"]).faults += 1
    for s in catalog.query("SELECT recorder, started_at FROM sessions"
                           " WHERE started_at >= :start AND started_at < :end", span):
        row(s["recorder"], s["started_at"]).sessions += 1
    per_day: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for s in _sightings(catalog, span):
        r = row(s["recorder"], s["seen_at"])
        r.files += 1
        r.bytes += s["size"]
        day = _local_day(s["seen_at"], period)
        per_day[day][0] += 1
        if s["duration_s"] is None:
            r.files_without_length += 1
        else:
            r.seconds += s["duration_s"]
            per_day[day][1] += s["duration_s"] / 3600
    for e in _events(catalog, FAULT_EVENT, span):
        per_day[_local_day(e["time"], period)][2] += 1
    report.rows = sorted(rows.values(), key=lambda r: (r.officer or "", r.recorder))
    report.overdue = overdue_recorders(catalog, min(now, period.end), alert_hours)
    report.days = _days(period, per_day)
    return report


def supervision_report(catalog: Catalog, period: Period, now: dt.datetime,
                       alert_hours: int) -> SupervisionReport:
    """The art. 15-16 supervision report of ``period``."""
    report = SupervisionReport(period, utc_iso(now), alert_hours)
    span: dict[str, object] = {"start": period.start_utc, "end": period.end_utc}
    per_day: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for e in _events(catalog, "verify.%", span):
        p = e["payload"]
        per_day[_local_day(e["time"], period)][2] += e["type"] != VerifyCompleted.TYPE
        report.integrity.append({"time": e["time"], "ok": e["type"] == VerifyCompleted.TYPE,
                                 "items_checked": p.get("items_checked"),
                                 "problem_count": p.get("problem_count",
                                                        len(p.get("problems", [])))})
    for s in catalog.query("SELECT id, recorder, started_at, result, reason, failed FROM sessions"
                           " WHERE started_at >= :start AND started_at < :end"
                           " AND result IN ('incomplete', 'interrupted') ORDER BY started_at",
                           span):
        report.offload_failures.append({"session": s["id"], "recorder": s["recorder"],
                                        "time": s["started_at"], "result": s["result"],
                                        "reason": s["reason"], "files_failed": s["failed"]})
        per_day[_local_day(s["started_at"], period)][2] += 1
    for e in _events(catalog, FileFailed.TYPE, span):
        p = e["payload"]
        report.file_failures.append({"time": e["time"], "recorder": e["subject"],
                                     "path": p.get("source_path"), "reason": p.get("reason")})
    for e in _events(catalog, FAULT_EVENT, span):
        p = e["payload"]
        report.faults.append({"time": e["time"], "recorder": e["subject"],
                              "reason": p.get("reason"), "detail": p.get("detail")})
        per_day[_local_day(e["time"], period)][2] += 1
    report.never_docked = never_docked(catalog)
    report.overdue = overdue_recorders(catalog, min(now, period.end), alert_hours)
    report.holds = list_holds(catalog)
    report.out_of_service = out_of_service(catalog)
    for e in _events(catalog, ExportCreated.TYPE, span):
        p = e["payload"]
        report.exports.append({"time": e["time"], "export_id": p.get("export_id"),
                               "case": p.get("case"), "recordings": p.get("recordings"),
                               "bytes": p.get("bytes"), "requester": p.get("requester"),
                               "requester_unit": p.get("requester_unit"),
                               "reason": p.get("reason"), "approved_by": p.get("approved_by"),
                               "public_use": p.get("public_use")})
    for e in _events(catalog, AccessRegistered.TYPE, span):
        p = e["payload"]
        report.access.append({"time": e["time"], "case": p.get("case"),
                              "items": len(p.get("items", [])),
                              "requester": p.get("requester"),
                              "requester_unit": p.get("requester_unit"),
                              "reason": p.get("reason"), "approved_by": p.get("approved_by")})
    report.days = _days(period, per_day)
    return report


def out_of_service(catalog: Catalog) -> list[dict[str, Any]]:
    """Enrolled recorders marked faulty or in repair now, with when and by whom that was
    recorded (the latest ``recorder.state_changed``)."""
    if not catalog.has_table("recorders"):
        return []
    out = []
    for r in catalog.query("SELECT serial, state, officer_id, officer_name FROM recorders"
                           " WHERE state IN ('faulty', 'in_repair') ORDER BY serial"):
        change = catalog.query_one(
            "SELECT time, actor FROM custody WHERE type = ? AND subject = ?"
            " ORDER BY seq DESC LIMIT 1", (RecorderStateChanged.TYPE, r["serial"]))
        out.append({"recorder": r["serial"], "state": r["state"],
                    "officer": r["officer_name"] or r["officer_id"],
                    "since": change["time"] if change else None,
                    "by": change["actor"] if change else None})
    return out


def never_docked(catalog: Catalog) -> list[str]:
    """Enrolled, unretired recorders with no offload session and no dock event ever."""
    if not catalog.has_table("recorders"):
        return []
    rows = catalog.query(
        "SELECT serial FROM recorders r WHERE retired_at IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.recorder = r.serial)"
        " AND NOT EXISTS (SELECT 1 FROM custody c WHERE c.type = ? AND c.subject = r.serial)"
        " ORDER BY serial", (DOCK_EVENT,))
    return [str(r[0]) for r in rows]


def overdue_recorders(catalog: Catalog, at: dt.datetime, alert_hours: int) -> list[Overdue]:
    """Recorders last docked more than ``alert_hours`` before ``at`` (retired ones excluded)."""
    last: dict[str, str] = {}
    for r in catalog.query("SELECT recorder, MAX(started_at) FROM sessions GROUP BY recorder"):
        last[r[0]] = r[1]
    for r in catalog.query("SELECT subject, MAX(time) FROM custody WHERE type = ?"
                           " GROUP BY subject", (DOCK_EVENT,)):
        last[r[0]] = max(last.get(r[0], ""), r[1])
    retired: set[str] = set()
    if catalog.has_table("recorders"):
        retired = {str(r[0]) for r in catalog.query(
            "SELECT serial FROM recorders WHERE retired_at IS NOT NULL")}
    out = []
    for serial, when in sorted(last.items()):
        hours = (at - parse_utc_iso(when)).total_seconds() / 3600
        if serial not in retired and hours > alert_hours:
            officer = officer_at(catalog, serial, when)
            out.append(Overdue(serial, officer.label if officer else None, when,
                               round(hours, 1)))
    return out


def _events(catalog: Catalog, type_pattern: str, span: dict[str, object]) -> list[dict[str, Any]]:
    rows = catalog.query("SELECT time, type, subject, payload FROM custody WHERE type LIKE :t"
                         " AND time >= :start AND time < :end ORDER BY seq",
                         {"t": type_pattern, **span})
    return [{"time": r["time"], "type": r["type"], "subject": r["subject"],
             "payload": json.loads(r["payload"])} for r in rows]


def _sightings(catalog: Catalog, span: dict[str, object]) -> list[Any]:
    return catalog.query(
        "SELECT s.recorder, s.seen_at, i.size, m.duration_s FROM sightings s"
        " JOIN items i ON i.sha256 = s.sha256 LEFT JOIN metadata m ON m.sha256 = s.sha256"
        " WHERE s.seen_at >= :start AND s.seen_at < :end ORDER BY s.seen_at, s.id", span)


def _local_day(moment: str, period: Period) -> str:
    return parse_utc_iso(moment).astimezone(period.start.tzinfo).date().isoformat()


def _days(period: Period, per_day: dict[str, list[float]]) -> list[DayTotals]:
    out = []
    for day in period.days():
        files, hours, problems = per_day.get(day.isoformat(), [0, 0.0, 0])
        out.append(DayTotals(day.isoformat(), int(files), round(hours, 2), int(problems)))
    return out
