"""Bureau-wide reports from the ledger: ``dockd ledger report weekly|supervision``.

The same two reports a dock makes of itself (art. 12(2); art. 15-16), across every dock,
from the custody events the ledger keeps:

* ``recorder.docked`` (dock, officer), ``session.completed``/``session.interrupted``
  (files and bytes stored, files failed), ``file.ingested``, ``bay.fault`` and the docks'
  alerts (faults), ``export.created`` and ``access.registered`` (who took or saw evidence),
  ``verify.completed``/``verify.failed`` (the docks' own integrity checks),
  ``recorder.enrolled``/``recorder.retired``, ``hold.added``/``hold.released``;
* and the ledger's own judgement of each dock (verified, gaps, forks, key mismatches).

Hours recorded are not in the custody stream (they come from each file's metadata, which
stays on the dock): the dock's own weekly report has them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from dockd.clock import utc_iso
from dockd.ledger.queries import dock_states, open_alerts
from dockd.records.periods import Period

DOCK_EVENT = "recorder.docked"
FAULT_EVENT = "bay.fault"


@dataclass
class BureauRow:
    """One recorder at one dock over the period."""

    dock: str
    recorder: str
    officer: str | None = None
    docks: int = 0
    sessions: int = 0
    files: int = 0
    bytes: int = 0
    failed_files: int = 0
    faults: int = 0


@dataclass(frozen=True)
class Overdue:
    """A recorder last docked (anywhere) longer ago than the threshold."""

    recorder: str
    officer: str | None
    dock: str
    last_docked: str
    hours_since: float


@dataclass(frozen=True)
class DayTotals:
    """One local day, for the chart."""

    day: str
    files: int
    docks: int
    problems: int


@dataclass
class BureauReport:
    """Both reports share this shape; ``kind`` says which one it is."""

    kind: str  # weekly | supervision
    period: Period
    generated_at: str
    alert_hours: int
    rows: list[BureauRow] = field(default_factory=list)
    overdue: list[Overdue] = field(default_factory=list)
    days: list[DayTotals] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)
    access: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    offload_failures: list[dict[str, Any]] = field(default_factory=list)
    integrity: list[dict[str, Any]] = field(default_factory=list)
    never_docked: list[dict[str, Any]] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)
    verification: list[dict[str, Any]] = field(default_factory=list)
    ledger_alerts: list[dict[str, Any]] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "report": f"bureau-{self.kind}", "week": self.period.label,
            "from": self.period.start_utc, "to": self.period.end_utc,
            "generated_at": self.generated_at, "undocked_alert_hours": self.alert_hours,
            "rows": [asdict(r) for r in self.rows], "overdue": [asdict(o) for o in self.overdue],
            "days": [asdict(d) for d in self.days], "exports": self.exports,
            "access": self.access, "faults": self.faults,
            "verification": self.verification}
        if self.kind == "supervision":
            out.update({"offload_failures": self.offload_failures,
                        "integrity": self.integrity, "never_docked": self.never_docked,
                        "holds": self.holds, "ledger_alerts": self.ledger_alerts})
        return out


def bureau_report(conn: psycopg.Connection[Any], kind: str, period: Period, now: dt.datetime,
                  alert_hours: int) -> BureauReport:
    """The ``kind`` report of ``period`` across every dock in the ledger."""
    report = BureauReport(kind, period, utc_iso(now), alert_hours)
    events = _events(conn, period)
    rows: dict[tuple[str, str], BureauRow] = {}
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])

    def row(dock: str, recorder: str) -> BureauRow:
        return rows.setdefault((dock, recorder), BureauRow(dock, recorder))

    for e in events:
        p, day = e["payload"], _local_day(e["at"], period)
        if e["type"] == DOCK_EVENT:
            r = row(e["dock"], e["subject"])
            r.docks += 1
            r.officer = p.get("officer_name") or p.get("officer_id") or r.officer
            per_day[day][1] += 1
        elif e["type"] in ("session.completed", "session.interrupted"):
            r = row(e["dock"], e["subject"])
            r.sessions += 1
            r.files += int(p.get("stored") or 0) + int(p.get("deduplicated") or 0)
            r.bytes += int(p.get("bytes_stored") or 0)
            r.failed_files += int(p.get("failed") or 0)
            per_day[day][0] += int(p.get("stored") or 0) + int(p.get("deduplicated") or 0)
            if e["type"] == "session.interrupted" or p.get("failed"):
                report.offload_failures.append(
                    {"time": e["time"], "dock": e["dock"], "recorder": e["subject"],
                     "result": p.get("result"), "reason": p.get("reason"),
                     "files_failed": p.get("failed")})
                per_day[day][2] += 1
        elif e["type"] == FAULT_EVENT:
            row(e["dock"], e["subject"]).faults += 1
            report.faults.append({"time": e["time"], "dock": e["dock"], "recorder": e["subject"],
                                  "reason": p.get("reason"), "detail": p.get("detail")})
            per_day[day][2] += 1
        elif e["type"] == "export.created":
            report.exports.append({"time": e["time"], "dock": e["dock"], "actor": e["actor"],
                                   "export_id": p.get("export_id"), "case": p.get("case"),
                                   "requester": p.get("requester"),
                                   "requester_unit": p.get("requester_unit"),
                                   "reason": p.get("reason"), "approved_by": p.get("approved_by"),
                                   "public_use": p.get("public_use"),
                                   "recordings": p.get("recordings")})
        elif e["type"] == "access.registered":
            report.access.append({"time": e["time"], "dock": e["dock"], "actor": e["actor"],
                                  "case": p.get("case"), "items": len(p.get("items") or []),
                                  "requester": p.get("requester"),
                                  "requester_unit": p.get("requester_unit"),
                                  "reason": p.get("reason"), "approved_by": p.get("approved_by")})
        elif e["type"].startswith("verify."):
            report.integrity.append({"time": e["time"], "dock": e["dock"],
                                     "ok": e["type"] == "verify.completed",
                                     "items_checked": p.get("items_checked"),
                                     "problem_count": p.get("problem_count",
                                                            len(p.get("problems") or []))})
    for a in _dock_alerts(conn, period):
        report.faults.append(a)
    report.faults.sort(key=lambda f: (f["time"], f["dock"]))
    report.rows = sorted(rows.values(), key=lambda r: (r.dock, r.recorder))
    report.overdue = overdue_recorders(conn, min(now, period.end), alert_hours)
    report.days = [DayTotals(d.isoformat(), *per_day.get(d.isoformat(), [0, 0, 0]))
                   for d in period.days()]
    report.verification = [{k: d[k] for k in ("dock", "site", "verification", "records",
                                              "max_seq", "contiguous_to", "open_alerts",
                                              "last_checkpoint_seq", "checkpoint_time",
                                              "online")} for d in dock_states(conn, now)]
    if kind == "supervision":
        report.never_docked = never_docked(conn)
        report.holds = holds_in_force(conn)
        report.ledger_alerts = open_alerts(conn)
    return report


def overdue_recorders(conn: psycopg.Connection[Any], at: dt.datetime,
                      alert_hours: int) -> list[Overdue]:
    """Recorders whose last ``recorder.docked`` at any dock is older than ``alert_hours``
    before ``at`` (recorders retired since are left out)."""
    rows = conn.execute("""
        SELECT DISTINCT ON (subject) subject, dock, time, at, payload FROM custody
        WHERE type = %s AND at < %s ORDER BY subject, at DESC""", (DOCK_EVENT, at)).fetchall()
    retired = _retired(conn)
    conn.commit()
    out = []
    for serial, dock, time, when, payload in rows:
        hours = (at - when).total_seconds() / 3600
        if serial not in retired and hours > alert_hours:
            p = json.loads(payload)
            out.append(Overdue(serial, p.get("officer_name") or p.get("officer_id"), dock, time,
                               round(hours, 1)))
    return out


def never_docked(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Recorders enrolled at a dock (``recorder.enrolled``), not retired, never docked."""
    rows = conn.execute("""
        SELECT e.subject, e.dock, min(e.time) FROM custody e
        WHERE e.type = 'recorder.enrolled'
          AND NOT EXISTS (SELECT 1 FROM custody d WHERE d.type = %s AND d.subject = e.subject)
        GROUP BY e.subject, e.dock ORDER BY e.subject""", (DOCK_EVENT,)).fetchall()
    retired = _retired(conn)
    conn.commit()
    return [{"recorder": r[0], "dock": r[1], "enrolled": r[2]} for r in rows
            if r[0] not in retired]


def holds_in_force(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """``hold.added`` events with no ``hold.released`` of the same hold at that dock."""
    rows = conn.execute("""
        SELECT a.dock, a.subject, a.time, a.actor, a.payload FROM custody a
        WHERE a.type = 'hold.added' AND NOT EXISTS (
            SELECT 1 FROM custody r WHERE r.type = 'hold.released' AND r.dock = a.dock
              AND r.payload::jsonb->'hold_id' = a.payload::jsonb->'hold_id')
        ORDER BY a.at""").fetchall()
    conn.commit()
    out = []
    for dock, subject, time, actor, payload in rows:
        p = json.loads(payload)
        stated = p.get("stated_by") or p.get("by")  # "by" before issue 14
        out.append({"dock": dock, "hold_id": p.get("hold_id"), "time": time,
                    "by": stated or actor, "scope": p.get("scope"), "target": subject,
                    "reason": p.get("reason")})
    return out


def _retired(conn: psycopg.Connection[Any]) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT DISTINCT subject FROM custody WHERE type = 'recorder.retired'").fetchall()}


def _events(conn: psycopg.Connection[Any], period: Period) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT dock, seq, time, at, type, actor, subject, payload FROM custody"
        " WHERE at >= %s AND at < %s AND (type = ANY(%s) OR type LIKE 'verify.%%')"
        " ORDER BY at, dock, seq",
        (period.start, period.end, [DOCK_EVENT, FAULT_EVENT, "session.completed",
                                    "session.interrupted", "export.created",
                                    "access.registered"])).fetchall()
    conn.commit()
    return [{"dock": r[0], "seq": r[1], "time": r[2], "at": r[3], "type": r[4], "actor": r[5],
             "subject": r[6], "payload": json.loads(r[7])} for r in rows]


def _dock_alerts(conn: psycopg.Connection[Any], period: Period) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT time, dock, recorder, reason, detail FROM dock_alerts"
                        " WHERE at >= %s AND at < %s ORDER BY at", (period.start, period.end))
    out = [{"time": r[0], "dock": r[1], "recorder": r[2], "reason": r[3], "detail": r[4]}
           for r in rows.fetchall()]
    conn.commit()
    return out


def _local_day(moment: dt.datetime, period: Period) -> str:
    return moment.astimezone(period.start.tzinfo).date().isoformat()
