"""The printable sign-off sheet of an export (rules art. 12(4)): every recording's
art. 12(4) fields in the order they were recorded, the export's registration (art. 13,
14), the unit, the disc's number, lines for the burner, the custodian, the officer and the
unit's leader to sign, and a box for the unit's seal. Labels are in Chinese and English
side by side (it is filed with the case, whoever prints it); times are local
(``[dock] timezone``) in the language the environment asks for; the font is embedded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Flowable,
    KeepTogether,
    Paragraph,
    Spacer,
    Table,
)

from dockd.clock import parse_utc_iso
from dockd.i18n import N_, in_language, length_text, local_time
from dockd.records.fields import FIELD_LABELS, RecordingFields
from dockd.records.pdf import (
    bilingual,
    check_glyphs,
    document,
    escape,
    page_of,
    register_font,
    shown,
    table,
)


@dataclass(frozen=True)
class SheetHeader:
    """The export's registration as printed at the top of the sheet."""

    export_id: str
    created_at: dt.datetime
    case_no: str | None
    requester: str
    requester_unit: str
    reason: str
    approved_by: str
    public_use: bool
    manifest_sha256: str
    unit_name: str
    tz: dt.tzinfo
    volume_label: str
    disc: int = 1
    discs: int = 1


@dataclass(frozen=True)
class SheetRow:
    """One recording on the sheet: its file in the package, its fields, what is missing."""

    file: str
    fields: RecordingFields
    missing: tuple[str, ...] = ()


def write_sheet(path: Path, header: SheetHeader, rows: Sequence[SheetRow],
                font_path: Path) -> None:
    """Render the sheet to ``path``. FontMissingError, before anything is written, when the
    font is missing or cannot draw a character of the sheet."""
    font = register_font(font_path)
    styles = _styles(font)
    tables = [_header_table(header, styles), _recordings_table(rows, header.tz, styles)]
    incomplete = [r for r in rows if r.missing]
    story: list[Flowable] = [
        Paragraph(escape(header.unit_name), styles["unit"]) if header.unit_name
        else Spacer(1, 1),
        Paragraph(bilingual("Audio-visual evidence disc record"), styles["title"]),
        Paragraph(bilingual("Rules art. 12(4): to be signed by the officer, signed by the"
                            " unit's leader and sealed, then filed with the case"), styles["small"]),
        Spacer(1, 2 * mm), tables[0], Spacer(1, 3 * mm), tables[1],
    ]
    if any(r.fields.annotated for r in rows):
        story.append(Paragraph(bilingual("* entered by hand with 'dockd case annotate': no"
                                         " file or registry gave this value"), styles["note"]))
    if incomplete:
        story += [Spacer(1, 3 * mm), _missing_table(rows, styles)]
    story += [Spacer(1, 3 * mm), KeepTogether(_signature_block(styles))]
    check_glyphs(font, _texts(story))
    title = in_language("zh_CN", "Audio-visual evidence disc record")
    footer_head = " · ".join(x for x in (header.unit_name, header.volume_label) if x)

    def footer(page: int, pages: int) -> str:
        return (f"{footer_head} · " if footer_head else "") + \
            f"{page_of(page, pages, 'zh_CN')} / {page_of(page, pages, 'en')}"

    check_glyphs(font, [footer(1, 1)])
    document(path, font, landscape(A4), title, footer).build(story)


def _styles(font: str) -> dict[str, ParagraphStyle]:
    return {
        "font": ParagraphStyle("font", fontName=font),
        "unit": ParagraphStyle("unit", fontName=font, fontSize=12, leading=15, alignment=1),
        "title": ParagraphStyle("title", fontName=font, fontSize=16, leading=20, spaceAfter=2,
                                alignment=1),
        "small": ParagraphStyle("small", fontName=font, fontSize=8, leading=10, alignment=1),
        "note": ParagraphStyle("note", fontName=font, fontSize=7.5, leading=10, spaceBefore=2),
        "cell": ParagraphStyle("cell", fontName=font, fontSize=7.5, leading=9.5,
                               wordWrap="CJK"),
        "head": ParagraphStyle("head", fontName=font, fontSize=7, leading=8.5, wordWrap="CJK"),
        "label": ParagraphStyle("label", fontName=font, fontSize=8, leading=9.5,
                                wordWrap="CJK"),
        "sign": ParagraphStyle("sign", fontName=font, fontSize=9.5, leading=12),
        "warn": ParagraphStyle("warn", fontName=font, fontSize=8.5, leading=11,
                               textColor=colors.darkred),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _when(utc_text: str | None, tz: dt.tzinfo) -> str | None:
    return local_time(parse_utc_iso(utc_text), tz) if utc_text else None


def _header_table(h: SheetHeader, styles: dict[str, ParagraphStyle]) -> Table:
    yes_no = bilingual("yes") if h.public_use else bilingual("no")
    created = local_time(h.created_at, h.tz)
    rows = [
        (bilingual("Case number"), shown(h.case_no), bilingual("Disc"),
         f"{h.disc} / {h.discs} · {h.volume_label}"),
        (bilingual("Requester"), h.requester, bilingual("Requester's unit"), h.requester_unit),
        (bilingual("Reason"), h.reason, bilingual("Approved by"), h.approved_by),
        (bilingual("Public use (art. 13)"), yes_no, bilingual("Created at"),
         f"{created} ({h.tz})"),
        (bilingual("Export"), h.export_id, bilingual("Manifest SHA-256"), h.manifest_sha256),
    ]
    data = [[_p(c, styles["label"]) for c in row] for row in rows]
    return table(data, styles["font"].fontName, [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
        ("BACKGROUND", (2, 0), (2, -1), colors.whitesmoke),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ], colWidths=[38 * mm, 92 * mm, 38 * mm, 105 * mm])


# Widths (mm) add up to the 273 mm between the margins of landscape A4.
_COLUMNS = (
    (N_("No."), 10), (N_("File"), 31), (N_("Officer name"), 17),
    (N_("Recording operator name"), 18), (N_("Start time"), 25), (N_("End time"), 25),
    (N_("Place"), 26), (N_("Device brand and model"), 25), (N_("Format"), 16),
    (N_("Length (h:mm:ss)"), 17), (N_("Size (bytes)"), 15), ("SHA-256", 48),
)


def _recordings_table(rows: Sequence[SheetRow], tz: dt.tzinfo,
                      styles: dict[str, ParagraphStyle]) -> Table:
    data = [[_two_lines(name, styles["head"]) for name, _w in _COLUMNS]]
    for n, row in enumerate(rows, start=1):
        f = row.fields
        device = " ".join(v for v in (f.device_brand, f.device_model) if v) or None
        length = length_text(f.length_s) if f.length_s is not None else None
        hand = set(f.annotated)
        device = _mark(device, bool(hand & {"device_brand", "device_model"}))
        values = (str(n), row.file, _mark(f.officer_name, "officer_name" in hand),
                  f.operator_name, _mark(_when(f.start_time, tz), "start_time" in hand),
                  _mark(_when(f.end_time, tz), "end_time" in hand), f.place, device,
                  _mark(f.format, "format" in hand), _mark(length, "length_s" in hand),
                  f"{f.size:,}", f.sha256)
        data.append([_p(shown(v), styles["cell"]) for v in values])
        for column in (4, 5):  # date over time, never broken inside either
            data[-1][column] = Paragraph("<br/>".join(
                escape(part) for part in shown(values[column]).split(" ", 1)), styles["cell"])
    style: list[tuple[object, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    style += [("BACKGROUND", (0, i), (-1, i), colors.HexColor("#fff4e5"))
              for i, row in enumerate(rows, start=1) if row.missing]
    return table(data, styles["font"].fontName, style,
                 colWidths=[w * mm for _n, w in _COLUMNS], repeatRows=1)


def _mark(value: str | None, by_hand: bool) -> str | None:
    """A value a person entered carries a star (explained under the table)."""
    return f"{value} *" if value is not None and by_hand else value


def _two_lines(label: str, style: ParagraphStyle) -> Paragraph:
    """A column head: Chinese over English."""
    chinese = in_language("zh_CN", label)
    lines = [chinese, label] if chinese != label else [label]
    return Paragraph("<br/>".join(escape(x) for x in lines), style)


def _missing_table(rows: Sequence[SheetRow], styles: dict[str, ParagraphStyle]) -> Table:
    """What the export lacks, as recorded in the manifest (``--allow-incomplete``)."""
    lines = [[_p(bilingual("Missing art. 12(4) fields (exported with --allow-incomplete;"
                           " complete them with 'dockd case annotate')"), styles["warn"])]]
    for n, row in enumerate(rows, start=1):
        if row.missing:
            names = "、".join(in_language("zh_CN", FIELD_LABELS[k]) for k in row.missing)
            english = ", ".join(FIELD_LABELS[k] for k in row.missing)
            lines.append([_p(f"{n}. {row.file}: {names} / {english}", styles["label"])])
    return table(lines, styles["font"].fontName, [("BOX", (0, 0), (-1, -1), 0.8, colors.darkred)],
                 colWidths=[273 * mm])


def _signature_block(styles: dict[str, ParagraphStyle]) -> Table:
    """Two signers a row, each with a ruled line for the signature and one for the date,
    and the seal box to the right."""
    font = styles["font"].fontName
    date = _two_lines("Date", styles["sign"])
    signers = [_two_lines(s, styles["sign"])
               for s in ("Burned by", "Custodian", "Officer", "Unit leader")]
    rows = [[signers[0], "", date, "", signers[1], "", date, ""],
            [signers[2], "", date, "", signers[3], "", date, ""]]
    ruled = [("LINEBELOW", (c, r), (c, r), 0.6, colors.black)
             for r in range(2) for c in (1, 3, 5, 7)]
    names = table(rows, font, [("VALIGN", (0, 0), (-1, -1), "BOTTOM"), *ruled],
                  colWidths=[32 * mm, 38 * mm, 18 * mm, 20 * mm] * 2, rowHeights=[12 * mm] * 2)
    seal = table([[_p(bilingual("Unit seal"), styles["label"])]], font,
                 [("BOX", (0, 0), (-1, -1), 1, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP")],
                 colWidths=[50 * mm], rowHeights=[27 * mm])
    return table([[names, seal]], font, [("VALIGN", (0, 0), (-1, -1), "TOP")],
                 colWidths=[220 * mm, 53 * mm])


def _texts(flowables: Sequence[object]) -> list[str]:
    """Every text a flowable (or table inside it) will draw, for the glyph check."""
    out: list[str] = []
    for f in flowables:
        if isinstance(f, Paragraph):
            out.append(f.getPlainText())
        elif isinstance(f, Table):
            out += _texts([cell for row in f._cellvalues for cell in row])
        elif isinstance(f, KeepTogether):
            out += _texts(f._content)
        elif isinstance(f, (list, tuple)):
            out += _texts(f)
    return out
