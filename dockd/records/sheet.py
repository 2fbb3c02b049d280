"""The printable sign-off sheet of an export (rules art. 12(4)): every recording's
art. 12(4) fields, the export's registration (art. 13, 14), signature lines for the
officer and the unit's leader, and a box for the unit's seal. Always in Chinese and
English side by side: it is filed with the case, whoever prints it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
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

from dockd.i18n import N_
from dockd.records.fields import RecordingFields
from dockd.records.pdf import bilingual, register_font, shown


@dataclass(frozen=True)
class SheetHeader:
    """The export's registration as printed at the top of the sheet."""

    export_id: str
    created_at: str
    case_no: str | None
    requester: str
    requester_unit: str
    reason: str
    approved_by: str
    public_use: bool
    manifest_sha256: str


def write_sheet(path: Path, header: SheetHeader, recordings: Sequence[tuple[str, RecordingFields]]
                ) -> None:
    """Render the sheet to ``path``; ``recordings`` pairs each package file with its fields."""
    font = register_font()
    styles = _styles(font)
    doc = SimpleDocTemplate(str(path), pagesize=landscape(A4), leftMargin=12 * mm,
                            rightMargin=12 * mm, topMargin=12 * mm, bottomMargin=12 * mm,
                            title="Evidence export sign-off sheet", author="dockd",
                            invariant=1)
    story: list[Flowable] = [
        Paragraph(bilingual("Audio-visual evidence disc record"), styles["title"]),
        Paragraph(bilingual("Rules art. 12(4): to be signed by the officer, signed by the"
                            " unit's leader and sealed, then filed with the case"), styles["small"]),
        Spacer(1, 4 * mm),
        _header_table(header, styles),
        Spacer(1, 4 * mm),
        _recordings_table(recordings, styles),
        Spacer(1, 8 * mm),
        _signature_block(styles),
    ]
    doc.build(story)


def _styles(font: str) -> dict[str, ParagraphStyle]:
    return {
        "title": ParagraphStyle("title", fontName=font, fontSize=15, leading=19, spaceAfter=2),
        "small": ParagraphStyle("small", fontName=font, fontSize=8, leading=10),
        "cell": ParagraphStyle("cell", fontName=font, fontSize=7, leading=8.5,
                               wordWrap="CJK"),
        "head": ParagraphStyle("head", fontName=font, fontSize=7, leading=8.5, wordWrap="CJK",
                               textColor=colors.black),
        "label": ParagraphStyle("label", fontName=font, fontSize=9, leading=12),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(_escape(text), style)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _header_table(h: SheetHeader, styles: dict[str, ParagraphStyle]) -> Table:
    yes_no = bilingual("yes") if h.public_use else bilingual("no")
    rows = [
        (bilingual("Export"), h.export_id, bilingual("Created at (UTC)"), h.created_at),
        (bilingual("Case number"), shown(h.case_no), bilingual("Public use (art. 13)"), yes_no),
        (bilingual("Requester"), h.requester, bilingual("Requester's unit"), h.requester_unit),
        (bilingual("Reason"), h.reason, bilingual("Approved by"), h.approved_by),
        (bilingual("Manifest SHA-256"), h.manifest_sha256, "", ""),
    ]
    data = [[_p(c, styles["label"]) for c in row] for row in rows]
    table = Table(data, colWidths=[45 * mm, 90 * mm, 45 * mm, 93 * mm])
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
        ("BACKGROUND", (2, 0), (2, -1), colors.whitesmoke),
        ("SPAN", (1, 4), (3, 4)),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    return table


_COLUMNS = (
    (N_("No."), 9), (N_("File"), 34), (N_("Officer name"), 18),
    (N_("Recording operator name"), 18), (N_("Start time"), 24), (N_("End time"), 24),
    (N_("Place"), 24), (N_("Device brand and model"), 24), (N_("Format"), 14),
    (N_("Length (s)"), 14), (N_("Size (bytes)"), 18), ("SHA-256", 50),
)


def _recordings_table(recordings: Sequence[tuple[str, RecordingFields]],
                      styles: dict[str, ParagraphStyle]) -> Table:
    head = [_p(bilingual(name), styles["head"]) for name, _w in _COLUMNS]
    rows = [head]
    for n, (file, f) in enumerate(recordings, start=1):
        device = " ".join(v for v in (f.device_brand, f.device_model) if v) or None
        length = f"{f.length_s:.1f}" if f.length_s is not None else None
        values = (str(n), file, f.officer_name, f.operator_name, f.start_time, f.end_time,
                  f.place, device, f.format, length, str(f.size), f.sha256)
        rows.append([_p(shown(v), styles["cell"]) for v in values])
    table = Table(rows, colWidths=[w * mm for _n, w in _COLUMNS], repeatRows=1)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table


def _signature_block(styles: dict[str, ParagraphStyle]) -> Table:
    line = "_" * 28
    date = bilingual("Date") + ": " + "_" * 14
    left = [
        [_p(bilingual("Officer's signature") + ": " + line, styles["label"])],
        [_p(date, styles["label"])],
        [Spacer(1, 6 * mm)],
        [_p(bilingual("Leader's signature") + ": " + line, styles["label"])],
        [_p(date, styles["label"])],
    ]
    seal = Table([[_p(bilingual("Unit seal"), styles["label"])]], colWidths=[60 * mm],
                 rowHeights=[45 * mm])
    seal.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 1, colors.black),
                              ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    block = Table([[Table(left), seal]], colWidths=[150 * mm, 70 * mm])
    block.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return block
