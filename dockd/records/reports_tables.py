"""The reports as tables with headers, in the language the environment asks for: what the
text, CSV and PDF outputs (:mod:`dockd.records.render`) all show.

Each table has a stable English ``key`` (the CSV file name) and translated title and column
headers. Cells are text: local times and human sizes for a person (``Style.PERSON``), or
``YYYY-MM-DD HH:MM:SS`` local times and byte counts a spreadsheet can sort and sum
(``Style.SHEET``).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.filesize import decimal

from dockd.clock import parse_utc_iso
from dockd.i18n import _, length_text, local_date
from dockd.i18n import local_time as local_moment
from dockd.records.holds import scope_text
from dockd.records.pdf import shown
from dockd.records.reports import SupervisionReport, WeeklyReport
from dockd.store.registry import state_text

Report = WeeklyReport | SupervisionReport



class Style(enum.Enum):
    """Who reads the cells: a person (PDF, terminal) or a spreadsheet (CSV)."""

    PERSON = "person"
    SHEET = "sheet"


@dataclass(frozen=True)
class ReportTable:
    """One table of a report: stable key, translated title and headers, text cells."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    # Columns holding numbers: right-aligned in the PDF.
    numeric: frozenset[int] = frozenset()


def title(report: Report) -> str:
    """The report's title with its week and articles."""
    if isinstance(report, WeeklyReport):
        return _("Weekly report {week} (art. 12(2))").format(week=report.period.label)
    return _("Supervision report {week} (art. 13-16)").format(week=report.period.label)


def period_line(report: Report) -> str:
    """The period (local days) and when the report was made (local time)."""
    tz = _tz(report)
    last_day = (report.period.end - dt.timedelta(days=1)).date()
    return _("period {start} – {end} ({zone}); generated {now}").format(
        start=local_date(report.period.start.date()), end=local_date(last_day), zone=_zone(tz),
        now=local_time(report.generated_at, tz))


def tables(report: Report, style: Style = Style.PERSON) -> list[ReportTable]:
    """Every table of ``report``, in the order the PDF prints them."""
    if isinstance(report, WeeklyReport):
        return _weekly_tables(report, style)
    return _supervision_tables(report, style)


def local_time(utc_text: str | None, tz: dt.tzinfo, style: Style = Style.PERSON) -> str:
    """A catalog time (UTC text) as the bureau's local time, to the second."""
    if not utc_text:
        return shown(None)
    moment = parse_utc_iso(utc_text)
    if style is Style.SHEET:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    return local_moment(moment, tz)


def human_size(size: int | None) -> str:
    """``1.2 GB`` (decimal units, as disc and disk sizes are sold)."""
    return shown(None) if size is None else decimal(size)


def _weekly_tables(report: WeeklyReport, style: Style) -> list[ReportTable]:
    size: Callable[[int], str] = str if style is Style.SHEET else human_size
    activity = ReportTable(
        "activity", _("Activity per officer and recorder"),
        [_("officer"), _("recorder"), _("docks"), _("sessions"), _("files"),
         _("hours") if style is Style.SHEET else _("recorded (h:mm:ss)"),
         _("bytes") if style is Style.SHEET else _("size"), _("faults"),
         _("files without length")],
        [[shown(r.officer), r.recorder, str(r.docks), str(r.sessions), str(r.files),
          f"{r.hours:.2f}" if style is Style.SHEET else length_text(r.seconds),
          size(r.bytes), str(r.faults), str(r.files_without_length)]
         for r in report.rows],
        frozenset(range(2, 9)))
    return [activity, _overdue_table(report, style)]


def _overdue_table(report: Report, style: Style) -> ReportTable:
    tz = _tz(report)
    return ReportTable(
        "overdue", _("Recorders not docked for more than {h} hours").format(h=report.alert_hours),
        [_("recorder"), _("officer"), _("last docked"), _("hours since")],
        [[o.recorder, shown(o.officer), local_time(o.last_docked, tz, style),
          shown(o.hours_since)] for o in report.overdue],
        frozenset({3}))


def _supervision_tables(report: SupervisionReport, style: Style) -> list[ReportTable]:
    tz = _tz(report)

    def when(utc_text: str | None) -> str:
        return local_time(utc_text, tz, style)

    size: Callable[[int | None], str] = (lambda n: shown(n)) if style is Style.SHEET \
        else human_size
    return [
        ReportTable("integrity", _("Integrity checks"),
                    [_("time"), _("result"), _("items checked"), _("problems")],
                    [[when(i["time"]), _("intact") if i["ok"] else _("FAILED"),
                      shown(i["items_checked"]), shown(i["problem_count"])]
                     for i in report.integrity], frozenset({2, 3})),
        ReportTable("offload_failures", _("Offload failures"),
                    [_("time"), _("recorder"), _("result"), _("reason"), _("files failed")],
                    [[when(f["time"]), f["recorder"], _(f["result"]), shown(f["reason"]),
                      shown(f["files_failed"])] for f in report.offload_failures],
                    frozenset({4})),
        ReportTable("files_not_stored", _("Files not stored"),
                    [_("time"), _("recorder"), _("file"), _("reason")],
                    [[when(f["time"]), f["recorder"], shown(f["path"]), shown(f["reason"])]
                     for f in report.file_failures]),
        ReportTable("faults", _("Faults"),
                    [_("time"), _("recorder"), _("reason"), _("detail")],
                    [[when(f["time"]), f["recorder"], shown(f["reason"]), shown(f["detail"])]
                     for f in report.faults]),
        ReportTable("out_of_service", _("Recorders faulty or in repair"),
                    [_("recorder"), _("state"), _("officer"), _("since"), _("recorded by")],
                    [[r["recorder"], state_text(r["state"]),
                      shown(r["officer"]), when(r["since"]), shown(r["by"])]
                     for r in report.out_of_service]),
        ReportTable("never_docked", _("Recorders never docked"), [_("recorder")],
                    [[s] for s in report.never_docked]),
        _overdue_table(report, style),
        ReportTable("holds", _("Holds in force"),
                    [_("hold"), _("scope"), _("target"), _("from"), _("to"), _("reason"),
                     _("by"), _("since")],
                    [[str(h.id), scope_text(h.scope), h.target,
                      when(h.range_from), when(h.range_to), h.reason, h.created_by,
                      when(h.created_at)] for h in report.holds]),
        ReportTable("exports", _("Evidence exports (art. 13, 14)"),
                    [_("time"), _("export"), _("case"), _("recordings"), _("size"),
                     _("requester"), _("requester's unit"), _("reason"), _("approved by"),
                     _("public use")],
                    [[when(e["time"]), shown(e["export_id"]), shown(e["case"]),
                      shown(e["recordings"]), size(e["bytes"]), shown(e["requester"]),
                      shown(e["requester_unit"]), shown(e["reason"]), shown(e["approved_by"]),
                      _("yes") if e["public_use"] else _("no")] for e in report.exports],
                    frozenset({3, 4})),
        ReportTable("access", _("Access register (art. 14)"),
                    [_("time"), _("case"), _("recordings"), _("requester"),
                     _("requester's unit"), _("reason"), _("approved by")],
                    [[when(a["time"]), shown(a["case"]), str(a["items"]), shown(a["requester"]),
                      shown(a["requester_unit"]), shown(a["reason"]), shown(a["approved_by"])]
                     for a in report.access], frozenset({2})),
    ]


def _tz(report: Report) -> dt.tzinfo:
    tz = report.period.start.tzinfo
    assert tz is not None  # periods are built from the config's zone
    return tz


def _zone(tz: dt.tzinfo) -> str:
    return str(tz)  # "Asia/Shanghai", "UTC+08:00"
