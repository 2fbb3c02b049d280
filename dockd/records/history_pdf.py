"""The custody history of an export's items as a printable PDF (landscape A4, the font
embedded), for the disc (:mod:`dockd.records.disc`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import Flowable, Paragraph, Spacer  # type: ignore[import-untyped]

from dockd.clock import parse_utc_iso
from dockd.i18n import local_time
from dockd.records.disc import history_rows
from dockd.records.pdf import (
    bilingual,
    check_glyphs,
    document,
    escape,
    page_of,
    register_font,
    table,
)
from dockd.store.custody import Checkpoint, CustodyRecord
from dockd.store.keys import fingerprint

_WIDTHS = (14, 38, 40, 30, 151)  # mm, 273 between the margins


def write_history_pdf(path: Path, records: Sequence[CustodyRecord], checkpoint: Checkpoint,
                      tz: dt.tzinfo, font_path: Path) -> None:
    """Render the history; FontMissingError before writing when the font cannot draw it."""
    font = register_font(font_path)
    cell = ParagraphStyle("cell", fontName=font, fontSize=7, leading=9, wordWrap="CJK")
    head = ParagraphStyle("head", fontName=font, fontSize=7.5, leading=9.5)
    title = ParagraphStyle("title", fontName=font, fontSize=14, leading=18)
    small = ParagraphStyle("small", fontName=font, fontSize=8, leading=10, wordWrap="CJK")
    signed = local_time(parse_utc_iso(checkpoint.time), tz)
    lines = [
        bilingual("Chain of custody of the exported recordings"),
        f"{bilingual('Dock')}: {checkpoint.dock} · {bilingual('Public key fingerprint')}:"
        f" {fingerprint(checkpoint.public_key)}",
        f"{bilingual('Signed checkpoint')}: seq {checkpoint.seq} · {signed} ({tz}) ·"
        f" {checkpoint.hash}",
    ]
    heads = [bilingual(h) for h in ("No.", "Time", "Event", "By", "Details")]
    rows = history_rows(records, tz)
    check_glyphs(font, [*lines, *heads, *(c for r in rows for c in r)])
    data = [[Paragraph(escape(h), head) for h in heads]]
    data += [[Paragraph(escape(c), cell) for c in r] for r in rows]
    story: list[Flowable] = [
        Paragraph(escape(lines[0]), title), Paragraph(escape(lines[1]), small),
        Paragraph(escape(lines[2]), small), Spacer(1, 4 * mm),
        table(data, font, [("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                           ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                           ("VALIGN", (0, 0), (-1, -1), "TOP")],
              colWidths=[w * mm for w in _WIDTHS], repeatRows=1),
    ]
    document(path, font, landscape(A4), lines[0], lambda page, pages:
             f"{page_of(page, pages, 'zh_CN')} / {page_of(page, pages, 'en')}").build(story)
