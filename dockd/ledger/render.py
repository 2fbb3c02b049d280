"""The bureau reports as text, CSV and PDF (JSON is ``BureauReport.to_json_dict``).

The same layout rules as the dock's reports (:mod:`dockd.records.render`): a title with
the article, the period, a bar chart of the week in the PDF, then one table per section;
an unknown value is a dash. The language is a parameter (the CLI passes the
environment's).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from dockd.ledger.notes import shown as said
from dockd.ledger.reports import BureauReport
from dockd.ledger.words import Words, label
from dockd.records.pdf import shown


def title(report: BureauReport, _: Words) -> str:
    if report.kind == "weekly":
        return _("Bureau weekly report {week} (art. 12(2))").format(week=report.period.label)
    return _("Bureau supervision report {week} (art. 15-16)").format(week=report.period.label)


def sections(report: BureauReport, _: Words, when: Callable[[str], str] = str
             ) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, column names, rows) of every table, in order; ``when`` shows a time (the
    page shows local time, the files keep RFC 3339 UTC)."""
    out: list[tuple[str, list[str], list[list[str]]]] = [
        (_("Docks and recorders"),
         [_("dock"), _("recorder"), _("officer"), _("docks"), _("sessions"), _("files"),
          _("bytes"), _("files failed"), _("faults")],
         [[r.dock, r.recorder, shown(r.officer), str(r.docks), str(r.sessions), str(r.files),
           str(r.bytes), str(r.failed_files), str(r.faults)] for r in report.rows]),
        (_("Recorders not docked for more than {h} hours").format(h=report.alert_hours),
         [_("recorder"), _("officer"), _("last dock"), _("last docked"), _("hours since")],
         [[o.recorder, shown(o.officer), o.dock, when(o.last_docked), f"{o.hours_since:.1f}"]
          for o in report.overdue]),
        (_("Faults"), [_("time"), _("dock"), _("recorder"), _("reason"), _("detail")],
         [[when(f["time"]), f["dock"], shown(f["recorder"]), label(_, shown(f["reason"])),
           shown(f["detail"])]
          for f in report.faults]),
        (_("Evidence exports (art. 12(4), 13)"),
         [_("time"), _("dock"), _("case"), _("requester"), _("unit"), _("reason"),
          _("approved by"), _("recordings")],
         [[when(e["time"]), e["dock"], shown(e["case"]), shown(e["requester"]),
           shown(e["requester_unit"]), shown(e["reason"]), shown(e["approved_by"]),
           shown(e["recordings"])] for e in report.exports]),
        (_("Access register (art. 14)"),
         [_("time"), _("dock"), _("case"), _("requester"), _("unit"), _("reason"),
          _("approved by"), _("recordings")],
         [[when(a["time"]), a["dock"], shown(a["case"]), shown(a["requester"]),
           shown(a["requester_unit"]), shown(a["reason"]), shown(a["approved_by"]),
           str(a["items"])] for a in report.access]),
        (_("Verification of each dock's custody log"),
         [_("dock"), _("state"), _("records"), _("verified to seq"), _("last signed checkpoint"),
          _("open alerts"), _("online")],
         [[v["dock"], label(_, v["verification"]), str(v["records"]), str(v["contiguous_to"]),
           f"{shown(v['last_checkpoint_seq'])} ({when(shown(v['checkpoint_time']))})",
           str(v["open_alerts"]), label(_, v["online"])] for v in report.verification]),
    ]
    if report.kind == "supervision":
        out += [
            (_("Integrity checks at the docks"), [_("time"), _("dock"), _("result"),
                                                  _("problems")],
             [[when(i["time"]), i["dock"], _("intact") if i["ok"] else _("FAILED"),
               shown(i["problem_count"])] for i in report.integrity]),
            (_("Offload failures"), [_("time"), _("dock"), _("recorder"), _("result"),
                                     _("reason"), _("files failed")],
             [[when(f["time"]), f["dock"], f["recorder"], shown(f["result"]), shown(f["reason"]),
               shown(f["files_failed"])] for f in report.offload_failures]),
            (_("Recorders never docked"), [_("recorder"), _("dock"), _("enrolled")],
             [[n["recorder"], n["dock"], when(n["enrolled"])] for n in report.never_docked]),
            (_("Holds in force"), [_("dock"), _("hold"), _("scope"), _("target"), _("reason"),
                                   _("by"), _("time")],
             [[h["dock"], shown(h["hold_id"]), shown(h["scope"]), shown(h["target"]),
               shown(h["reason"]), shown(h["by"]), when(h["time"])] for h in report.holds]),
            (_("Open ledger alerts"), [_("kind"), _("dock"), _("detail"), _("count"),
                                       _("since")],
             [[label(_, a["kind"]), shown(a["dock"]), said(_, a["detail_note"], a["detail"]),
               str(a["count"]), when(a["first_seen"])] for a in report.ledger_alerts]),
        ]
    return out


def period_line(report: BureauReport, _: Words) -> str:
    return _("period {start} – {end} (UTC); generated {now}").format(
        start=report.period.start_utc, end=report.period.end_utc, now=report.generated_at)


def to_text(report: BureauReport, _: Words) -> str:
    """Plain text for the terminal."""
    lines = [title(report, _), period_line(report, _), ""]
    for heading, columns, rows in sections(report, _):
        lines.append(f"{heading}: {len(rows)}")
        if rows:
            lines.append("  " + " | ".join(columns))
            lines += ["  " + " | ".join(r) for r in rows]
        lines.append("")
    return "\n".join(lines)


def to_csv(report: BureauReport, _: Words) -> str:
    """CSV: one row per finding, its section in the first column."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_("section"), _("details")])
    for heading, _columns, rows in sections(report, _):
        for r in rows:
            writer.writerow([heading, *r])
    return buf.getvalue()


def write_pdf(report: BureauReport, path: Path, _: Words) -> None:
    """A printable PDF: title, a bar chart of the week, then the tables."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart  # type: ignore[import-untyped]
    from reportlab.graphics.charts.legends import Legend  # type: ignore[import-untyped]
    from reportlab.graphics.shapes import Drawing  # type: ignore[import-untyped]
    from reportlab.lib import colors  # type: ignore[import-untyped]
    from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
    from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
    from reportlab.lib.units import mm  # type: ignore[import-untyped]
    from reportlab.platypus import (  # type: ignore[import-untyped]
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    from dockd.records.pdf import register_font

    font = register_font()
    st = {"title": ParagraphStyle("t", fontName=font, fontSize=14, leading=18),
          "h": ParagraphStyle("h", fontName=font, fontSize=10, leading=13, spaceBefore=6),
          "cell": ParagraphStyle("c", fontName=font, fontSize=7, leading=9, wordWrap="CJK")}
    drawing = Drawing(250 * mm, 55 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 12 * mm, 8 * mm, 190 * mm, 42 * mm
    chart.data = [[d.files for d in report.days], [d.docks for d in report.days],
                  [d.problems for d in report.days]]
    names = [_("files"), _("docks"), _("failures and faults")]
    chart.categoryAxis.categoryNames = [d.day[5:] for d in report.days]
    chart.categoryAxis.labels.fontName = font
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.valueMin = 0
    palette = (colors.steelblue, colors.seagreen, colors.orange)
    for i in range(3):
        chart.bars[i].fillColor = palette[i]
    legend = Legend()
    legend.x, legend.y, legend.fontName = 210 * mm, 48 * mm, font
    legend.colorNamePairs = list(zip(palette, names, strict=True))
    drawing.add(chart)
    drawing.add(legend)
    story = [Paragraph(_esc(title(report, _)), st["title"]),
             Paragraph(_esc(period_line(report, _)), st["cell"]), Spacer(1, 3 * mm), drawing]
    for heading, columns, rows in sections(report, _):
        story.append(Paragraph(_esc(f"{heading}: {len(rows)}"), st["h"]))
        if rows:
            table = Table([[Paragraph(_esc(c), st["cell"]) for c in r]
                           for r in [columns, *rows]], repeatRows=1)
            table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                                       ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                                       ("VALIGN", (0, 0), (-1, -1), "TOP")]))
            story.append(table)
    doc = SimpleDocTemplate(str(path), pagesize=landscape(A4), leftMargin=10 * mm,
                            rightMargin=10 * mm, topMargin=10 * mm, bottomMargin=10 * mm,
                            title=title(report, _), author="dockd", invariant=1)
    doc.build(story)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
