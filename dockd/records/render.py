"""The reports as text, CSV and PDF, in the language the environment asks for; JSON is the
reports' ``to_json_dict``. All three show the tables of :mod:`dockd.records.reports_tables`.

CSV is one file per table (``<report>-<week>-<table>.csv``): UTF-8 with a byte-order mark so
Excel on a Chinese Windows reads it as UTF-8, a header row, and the same number of cells on
every row; times are local ``YYYY-MM-DD HH:MM:SS`` and sizes are byte counts, so a
spreadsheet can sort and sum them.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from reportlab.graphics.charts.barcharts import VerticalBarChart  # type: ignore[import-untyped]
from reportlab.graphics.shapes import Drawing, Group, String  # type: ignore[import-untyped]
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import Flowable, Paragraph, Spacer, Table  # type: ignore[import-untyped]

from dockd.errors import UsageError
from dockd.i18n import _
from dockd.records.pdf import check_glyphs, document, page_of, register_font
from dockd.records.pdf import table as pdf_table
from dockd.records.reports import DayTotals, WeeklyReport
from dockd.records.reports_tables import Report, ReportTable, Style, period_line, tables, title

CSV_ENCODING = "utf-8-sig"  # the BOM tells Excel the file is UTF-8


def to_text(report: Report, bureau: str | None = None) -> str:
    """Plain text for the terminal: every table with its header row."""
    lines = [bureau] if bureau else []
    lines += [title(report), period_line(report)]
    for table in tables(report):
        lines += ["", f"{table.title}: {len(table.rows)}"]
        if table.rows:
            lines += ["  " + " | ".join(r) for r in [table.columns, *table.rows]]
    return "\n".join(lines) + "\n"


def csv_name(report: Report, table: ReportTable) -> str:
    """The file name of one table's CSV."""
    return f"{report_kind(report)}-{report.period.label}-{table.key}.csv"


def report_kind(report: Report) -> str:
    return "weekly" if isinstance(report, WeeklyReport) else "supervision"


def check_csv_dir(out_dir: Path) -> None:
    """UsageError unless ``out_dir`` is new or an empty directory."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(_("--out {path} must be a new or empty directory for CSV (one file"
                           " per table)").format(path=out_dir))


def write_csv(report: Report, out_dir: Path) -> list[Path]:
    """One CSV per table in ``out_dir`` (created; it must be new or empty); the paths."""
    check_csv_dir(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(_("cannot create {path}: {error}").format(
            path=out_dir, error=exc.strerror)) from None
    written = []
    for table in tables(report, Style.SHEET):
        path = out_dir / csv_name(report, table)
        with open(path, "w", encoding=CSV_ENCODING, newline="") as fh:
            writer = csv.writer(fh)  # \r\n line ends, as RFC 4180 and Excel expect
            writer.writerow(table.columns)
            writer.writerows(table.rows)
        written.append(path)
    return written


def write_pdf(report: Report, path: Path, font_path: Path, bureau: str | None = None) -> None:
    """A printable landscape A4 PDF: the bureau, title and period, the week's chart(s), then
    every table with its header row (repeated on each page); the bureau, title and page x of
    y in the footer. The font (``[records] pdf_font``) is embedded; FontMissingError before
    anything is written when it is missing or lacks a character of the report."""
    font = register_font(font_path)
    check_glyphs(font, _all_text(report, bureau))
    styles = {"bureau": ParagraphStyle("b", fontName=font, fontSize=11, leading=14),
              "title": ParagraphStyle("t", fontName=font, fontSize=15, leading=19),
              "h": ParagraphStyle("h", fontName=font, fontSize=10, leading=13, spaceBefore=8,
                                  spaceAfter=2, keepWithNext=1),
              "cell": ParagraphStyle("c", fontName=font, fontSize=7.5, leading=9.5,
                                     wordWrap="CJK"),
              "num": ParagraphStyle("n", fontName=font, fontSize=7.5, leading=9.5,
                                    alignment=2)}
    story: list[Flowable] = []
    if bureau:
        story.append(Paragraph(_esc(bureau), styles["bureau"]))
    story += [Paragraph(_esc(title(report)), styles["title"]),
              Paragraph(_esc(period_line(report)), styles["cell"]), Spacer(1, 3 * mm),
              _charts(report, font), Spacer(1, 2 * mm)]
    for table in tables(report):
        story.append(Paragraph(_esc(f"{table.title}: {len(table.rows)}"), styles["h"]))
        if table.rows:
            story.append(_table(table, font, styles["cell"], styles["num"]))
    heading = " · ".join(p for p in (bureau, title(report)) if p)
    document(path, font, landscape(A4), title(report),
             lambda page, pages: f"{heading}    {page_of(page, pages)}").build(story)


def _all_text(report: Report, bureau: str | None) -> list[str]:
    out = [bureau or "", title(report), period_line(report)]
    for t in tables(report):
        out += [t.title, *t.columns, *(c for r in t.rows for c in r)]
    return out


def axis_scale(values: list[float], integers: bool) -> tuple[float, float]:
    """``(maximum, step)`` of a value axis starting at 0: about five round steps above the
    largest value; counts get whole steps, and all-zero data still gets a readable 0..1
    (hours) or 0..5 (counts) axis instead of 0..0.01."""
    top = max(values, default=0)
    if top <= 0:
        return (5.0, 1.0) if integers else (1.0, 0.2)
    raw = top / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integers:
        step = max(1.0, math.ceil(step))
    return step * math.ceil(top / step), step


def _charts(report: Report, font: str) -> Drawing:
    days = report.days
    drawing = Drawing(270 * mm, 60 * mm)
    drawing.initialFontName = font  # else the renderer starts with Helvetica, never embedded
    if isinstance(report, WeeklyReport):
        drawing.add(_bar_chart(days, [d.files for d in days], _("files per day"), font,
                               0, True, colors.steelblue))
        drawing.add(_bar_chart(days, [d.hours for d in days], _("hours recorded per day"), font,
                               135 * mm, False, colors.darkorange))
        return drawing
    drawing.add(_bar_chart(days, [d.problems for d in days],
                           _("failures and faults per day"), font, 0, True, colors.firebrick))
    return drawing


def _bar_chart(days: list[DayTotals], values: list[float], caption: str, font: str,
               x: float, integers: bool, colour: colors.Color) -> Group:
    group = Group()
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = x + 14 * mm, 8 * mm, 110 * mm, 40 * mm
    chart.data = [values]
    chart.bars[0].fillColor = colour
    chart.categoryAxis.categoryNames = [d.day[5:] for d in days]
    chart.categoryAxis.labels.fontName = font
    chart.valueAxis.labels.fontName = font
    top, step = axis_scale(values, integers)
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, top, step
    chart.valueAxis.labelTextFormat = _number
    chart.barLabels.fontName = font
    chart.barLabelFormat = lambda v: _number(v) if v else ""  # no row of zeros
    chart.barLabels.nudge = 5
    group.add(chart)
    group.add(String(x + 14 * mm, 54 * mm, caption, fontName=font, fontSize=9))
    return group


def _number(value: float) -> str:
    return f"{value:.6g}"  # 3, 0.25, 0.01: no 0.0 for a small value, no 3.000000


def _table(table: ReportTable, font: str, cell: ParagraphStyle, num: ParagraphStyle) -> Table:
    head = [Paragraph(_esc(c), cell) for c in table.columns]
    body = [[Paragraph(_esc(c), num if i in table.numeric else cell) for i, c in enumerate(r)]
            for r in table.rows]
    return pdf_table([head, *body], font, [("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                                           ("BACKGROUND", (0, 0), (-1, 0),
                                            colors.HexColor("#e8eef4")),
                                           ("VALIGN", (0, 0), (-1, -1), "TOP")],
                     repeatRows=1, hAlign="LEFT")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

