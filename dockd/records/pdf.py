"""What the PDF documents share: the CJK font and bilingual labels.

reportlab's built-in CID font ``STSong-Light`` covers Chinese and Latin text; readers
supply the glyphs (Adobe-GB1), so nothing is downloaded or embedded.
"""

from __future__ import annotations

import functools

from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # type: ignore[import-untyped]

from dockd.i18n import in_language

FONT = "STSong-Light"
UNKNOWN = "—"


@functools.cache
def register_font() -> str:
    """Register the CJK font once per process; its name."""
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def bilingual(message: str) -> str:
    """``中文 / English`` for a label (the Chinese from the zh_CN catalog)."""
    chinese = in_language("zh_CN", message)
    return message if chinese == message else f"{chinese} / {message}"


def shown(value: object) -> str:
    """A value for a printed cell: unknown is a dash, never an empty-looking guess."""
    if value is None or value == "":
        return UNKNOWN
    return str(value)
