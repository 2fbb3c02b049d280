"""The reports as text, CSV and PDF (with a bar chart of the week), in the language the
environment asks for; JSON is the reports' ``to_json_dict``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from reportlab.graphics.charts.barcharts import VerticalBarChart  # type: ignore[import-untyped]
from reportlab.graphics.charts.legends import Legend  # type: ignore[import-untyped]
from reportlab.graphics.shapes import Drawing  # type: ignore[import-untyped]
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Flowable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from dockd.i18n import _
from dockd.records.pdf import register_font, shown
from dockd.records.reports import DayTotals, SupervisionReport, WeeklyReport

Report = WeeklyReport | SupervisionReport


def weekly_columns() -> list[str]:
    return [_("officer"), _("recorder"), _("docks"), _("sessions"), _("files"),
            _("hours"), _("bytes"), _("faults"), _("files without length")]


def _weekly_cells(report: WeeklyReport) -> list[list[str]]:
    return [[shown(r.officer), r.recorder, str(r.docks), str(r.sessions), str(r.files),
             f"{r.hours:.2f}", str(r.bytes), str(r.faults), str(r.files_without_length)]
            for r in report.rows]


def _supervision_sections(report: SupervisionReport) -> list[tuple[str, list[list[str]]]]:
    return [
        (_("Integrity checks"), [[i["time"], _("intact") if i["ok"] else _("FAILED"),
                                  _("{n} problem(s)").format(n=i["problem_count"])]
                                 for i in report.integrity]),
        (_("Offload failures"), [[f["time"], f["recorder"], f["result"], shown(f["reason"]),
                                  _("{n} file(s) failed").format(n=f["files_failed"])]
                                 for f in report.offload_failures]),
        (_("Files not stored"), [[f["time"], f["recorder"], shown(f["path"]), shown(f["reason"])]
                                 for f in report.file_failures]),
        (_("Faults"), [[f["time"], f["recorder"], shown(f["reason"]), shown(f["detail"])]
                       for f in report.faults]),
        (_("Recorders never docked"), [[s] for s in report.never_docked]),
        (_("Recorders not docked for more than {h} hours").format(h=report.alert_hours),
         [[o.recorder, shown(o.officer), shown(o.last_docked), shown(o.hours_since)]
          for o in report.overdue]),
        (_("Holds in force"), [[str(h.id), h.scope, h.target, h.reason, h.created_by,
                                h.created_at] for h in report.holds]),
    ]


def title(report: Report) -> str:
    if isinstance(report, WeeklyReport):
        return _("Weekly report {week} (art. 12(2))").format(week=report.period.label)
    return _("Supervision report {week} (art. 15-16)").format(week=report.period.label)


def to_text(report: Report) -> str:
    """Plain text for the terminal."""
    lines = [title(report), _("period {start} – {end} (UTC); generated {now}").format(
        start=report.period.start_utc, end=report.period.end_utc, now=report.generated_at), ""]
    if isinstance(report, WeeklyReport):
        lines.append(" | ".join(weekly_columns()))
        lines += [" | ".join(c) for c in _weekly_cells(report)] or [_("no activity")]
        lines += ["", _("Recorders not docked for more than {h} hours").format(
            h=report.alert_hours)]
        lines += [f"  {o.recorder} ({shown(o.officer)}): {shown(o.last_docked)}"
                  for o in report.overdue] or [_("  none")]
    else:
        for name, rows in _supervision_sections(report):
            lines.append(f"{name}: {len(rows)}")
            lines += ["  " + " | ".join(r) for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(report: Report) -> str:
    """CSV: weekly, one row per officer and recorder; supervision, one row per finding
    with its section in the first column."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if isinstance(report, WeeklyReport):
        writer.writerow(weekly_columns())
        writer.writerows(_weekly_cells(report))
    else:
        writer.writerow([_("section"), _("details")])
        for name, rows in _supervision_sections(report):
            for r in rows:
                writer.writerow([name, *r])
    return buf.getvalue()


def write_pdf(report: Report, path: Path) -> None:
    """A printable PDF: title, a bar chart of the week, then the tables."""
    font = register_font()
    styles = {"title": ParagraphStyle("t", fontName=font, fontSize=14, leading=18),
              "h": ParagraphStyle("h", fontName=font, fontSize=10, leading=13, spaceBefore=6),
              "cell": ParagraphStyle("c", fontName=font, fontSize=7, leading=9, wordWrap="CJK")}
    story: list[Flowable] = [
        Paragraph(_esc(title(report)), styles["title"]),
        Paragraph(_esc(_("period {start} – {end} (UTC); generated {now}").format(
            start=report.period.start_utc, end=report.period.end_utc, now=report.generated_at)),
            styles["cell"]),
        Spacer(1, 4 * mm),
        _chart(report.days, font, isinstance(report, WeeklyReport)),
        Spacer(1, 4 * mm),
    ]
    if isinstance(report, WeeklyReport):
        story.append(_table([weekly_columns(), *_weekly_cells(report)], styles["cell"]))
        story.append(Paragraph(_esc(_("Recorders not docked for more than {h} hours").format(
            h=report.alert_hours)), styles["h"]))
        story.append(_table([[o.recorder, shown(o.officer), shown(o.last_docked),
                              shown(o.hours_since)] for o in report.overdue]
                            or [[_("none")]], styles["cell"]))
    else:
        for name, rows in _supervision_sections(report):
            story.append(Paragraph(_esc(f"{name}: {len(rows)}"), styles["h"]))
            if rows:
                story.append(_table(rows, styles["cell"]))
    doc = SimpleDocTemplate(str(path), pagesize=A4, leftMargin=12 * mm, rightMargin=12 * mm,
                            topMargin=12 * mm, bottomMargin=12 * mm, title=title(report),
                            author="dockd", invariant=1)
    doc.build(story)


def _chart(days: list[DayTotals], font: str, weekly: bool) -> Drawing:
    drawing = Drawing(180 * mm, 60 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 12 * mm, 10 * mm, 130 * mm, 45 * mm
    if weekly:
        chart.data = [[d.files for d in days], [d.hours for d in days]]
        names = [_("files"), _("hours")]
    else:
        chart.data = [[d.problems for d in days]]
        names = [_("failures and faults")]
    chart.categoryAxis.categoryNames = [d.day[5:] for d in days]
    chart.categoryAxis.labels.fontName = font
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.valueMin = 0
    palette = (colors.steelblue, colors.orange)
    for i in range(len(chart.data)):
        chart.bars[i].fillColor = palette[i % len(palette)]
    legend = Legend()
    legend.x, legend.y = 148 * mm, 50 * mm
    legend.fontName = font
    legend.colorNamePairs = [(palette[i], names[i]) for i in range(len(names))]
    drawing.add(chart)
    drawing.add(legend)
    return drawing


def _table(rows: list[list[str]], style: ParagraphStyle) -> Table:
    table = Table([[Paragraph(_esc(c), style) for c in r] for r in rows], repeatRows=1)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
