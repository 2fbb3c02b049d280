"""What the PDF documents share: the embedded CJK font and bilingual labels.

Every PDF carries its font as a TrueType subset (``[records] pdf_font``, by default
WenQuanYi Zen Hei from the Debian package fonts-wqy-zenhei), so a sheet prints the same on
a machine with no Chinese font at all. The font is also the document's only font: no
reader ever substitutes one. A missing font, or text the font has no glyph for, is an
error before anything is written, never a PDF with blank characters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.ttfonts import TTFError, TTFont  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]
from reportlab.platypus import SimpleDocTemplate, Table, TableStyle  # type: ignore[import-untyped]

from dockd.config.records import DEFAULT_PDF_FONT, PDF_FONT_PACKAGE
from dockd.errors import UnavailableError
from dockd.i18n import N_, _, in_language

FONT_PACKAGE = PDF_FONT_PACKAGE
UNKNOWN = "—"
PAGE_OF = N_("page {page} of {pages}")
# Characters that are layout, not glyphs: a font need not draw them.
_NOT_DRAWN = frozenset("\n\r\t")


class FontMissingError(UnavailableError):
    """The PDF font is not installed or cannot be embedded (exit 69)."""


def register_font(path: Path = DEFAULT_PDF_FONT) -> str:
    """Register the TrueType font (or the first font of a TrueType collection) at ``path``
    for embedding; its reportlab name. FontMissingError naming the Debian package when it
    is absent or unusable."""
    return _register(path.resolve() if path.exists() else path)


@functools.cache
def _register(path: Path) -> str:
    name = f"dockd-{path.stem}"
    try:
        font = TTFont(name, str(path), subfontIndex=0)
    except (OSError, TTFError) as exc:
        raise FontMissingError(_(
            "the PDF font {path} is missing or unusable ({error}): install the Debian package"
            " {package} (apt install {package}) or set [records] pdf_font to a TrueType font"
            " with Chinese glyphs; nothing was written").format(
                path=path, error=exc, package=FONT_PACKAGE)) from None
    pdfmetrics.registerFont(font)
    return name


def check_glyphs(font: str, texts: Iterable[str]) -> None:
    """FontMissingError naming every character of ``texts`` the font cannot draw: a blank
    in a name or a place on a signed sheet is not acceptable."""
    face = pdfmetrics.getFont(font).face
    missing = sorted({c for text in texts for c in text
                      if c not in _NOT_DRAWN and ord(c) not in face.charToGlyph})
    if missing:
        raise FontMissingError(_(
            "the PDF font {font} has no glyph for {chars}; set [records] pdf_font to a font"
            " that has them; nothing was written").format(
                font=face.name.decode("latin-1", "replace") if isinstance(face.name, bytes)
                else face.name, chars=" ".join(f"{c!r} (U+{ord(c):04X})" for c in missing)))


def document(path: Path, font: str, pagesize: tuple[float, float], title: str,
             footer: Callable[[int, int], str], margin: float = 12 * mm) -> SimpleDocTemplate:
    """A reproducible document whose only font is ``font`` (reportlab's default Helvetica,
    never embedded, would otherwise be listed) and whose every page ends with
    ``footer(page, pages)`` ("page x of y") in small type."""
    doc = SimpleDocTemplate(str(path), pagesize=pagesize, leftMargin=margin, rightMargin=margin,
                            topMargin=margin, bottomMargin=margin + 4 * mm, title=title,
                            author="dockd", invariant=1, initialFontName=font)
    doc.build = functools.partial(doc.build, canvasmaker=_numbered(font, footer))
    return doc


def table(data: list[list[Any]], font: str, style: list[tuple[Any, ...]],
          **kwargs: Any) -> Table:
    """A reportlab Table whose cells use ``font``: a Table otherwise sets its default
    Helvetica, which would be listed in the PDF and never embedded."""
    made = Table(data, **kwargs)
    made.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), font), *style]))
    return made


def _numbered(font: str, footer: Callable[[int, int], str]) -> type[Canvas]:
    """A canvas that keeps every page until the end, so each knows the page count."""

    class Numbered(Canvas):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._kept: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._kept.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            pages = len(self._kept)
            for number, state in enumerate(self._kept, start=1):
                self.__dict__.update(state)
                width, _height = self._pagesize
                self.setFont(font, 7)
                self.drawRightString(width - 12 * mm, 8 * mm, footer(number, pages))
                super().showPage()
            super().save()

    return Numbered


def page_of(page: int, pages: int, language: str | None = None) -> str:
    """``第 2 页，共 5 页`` / ``page 2 of 5``."""
    form = in_language(language, PAGE_OF) if language else _(PAGE_OF)
    return form.format(page=page, pages=pages)


def escape(text: str) -> str:
    """``text`` as literal Paragraph markup (reportlab reads ``<``, ``>`` and ``&``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def bilingual(message: str) -> str:
    """``中文 / English`` for a label (the Chinese from the zh_CN catalog)."""
    chinese = in_language("zh_CN", message)
    return message if chinese == message else f"{chinese} / {message}"


def shown(value: object) -> str:
    """A value for a printed cell: unknown is a dash, never an empty-looking guess."""
    if value is None or value == "":
        return UNKNOWN
    return str(value)
