"""The ``[records]`` section: retention, reporting thresholds, what the printed
documents say and how they are printed.

::

    [records]
    retention_days = 90           # untagged recordings; never below 90 (rules art. 12(3))
    case_retention_days = 365     # recordings tagged with a case number
    undocked_alert_hours = 48     # reports flag a recorder not docked for longer
    unit_name = "某某县公安局"      # the bureau/unit printed on sheets and reports
    pdf_font = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"   # embedded in every PDF
    operator_defaults_to_officer = false  # art. 12(4) operator: the recorder's officer
    disc_size = "4.7G"            # the disc an --iso export must fit without --split-at

A retention below 90 days is refused, whatever the category: the rules ask for at least
three months and a config cannot lower that. The local time zone is ``[dock] timezone``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dockd.config.reader import TableReader
from dockd.i18n import _

MIN_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 36_500
# fonts-wqy-zenhei: TrueType outlines, which reportlab can subset and embed (Noto CJK's
# are CFF, which it cannot).
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)B?$")
_SCALE = {"": 1, "K": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12}
DVD_BYTES = 4_700_000_000
PDF_FONT_PACKAGE = "fonts-wqy-zenhei"
DEFAULT_PDF_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


@dataclass(frozen=True)
class RecordsSection:
    """Validated ``[records]`` values."""

    retention_days: int = MIN_RETENTION_DAYS
    case_retention_days: int = 365
    undocked_alert_hours: int = 48
    unit_name: str = ""
    pdf_font: Path = DEFAULT_PDF_FONT
    operator_defaults_to_officer: bool = False
    disc_size: int = DVD_BYTES


def parse_records(t: TableReader) -> RecordsSection:
    """Validate ``[records]``."""
    d = RecordsSection
    if "utc_offset" in t.data:
        t.seen.add("utc_offset")
        t.problem("utc_offset", _("replaced by [dock] timezone, an IANA name that knows the"
                                  " calendar (e.g. timezone = \"Asia/Shanghai\"); remove it"))
    return RecordsSection(
        retention_days=_retention(t, "retention_days", d.retention_days),
        case_retention_days=_retention(t, "case_retention_days", d.case_retention_days),
        undocked_alert_hours=t.integer("undocked_alert_hours", d.undocked_alert_hours, minimum=1,
                                       maximum=24 * 366),
        unit_name=t.string("unit_name", d.unit_name).strip(),
        pdf_font=t.path("pdf_font", d.pdf_font) or d.pdf_font,
        operator_defaults_to_officer=t.boolean("operator_defaults_to_officer",
                                               d.operator_defaults_to_officer),
        disc_size=_disc_size(t, "disc_size", "4.7G"),
    )


def parse_size(text: str) -> int | None:
    """``4.7G``, ``25G``, ``700M``, ``650000000``: bytes in decimal units, as discs are sold
    (4.7G = 4,700,000,000, a little under a DVD's real 4,700,372,992); None when malformed
    or zero."""
    match = _SIZE.match(text.strip().upper())
    if not match:
        return None
    value = int(float(match[1]) * _SCALE[match[2]])
    return value if 0 < value <= 10 ** 15 else None


def _disc_size(t: TableReader, name: str, default: str) -> int:
    text = t.string(name, default)
    size = parse_size(text)
    if size is None:
        t.problem(name, _("{value!r} is not a disc size; expected e.g. \"4.7G\" or \"25G\"")
                  .format(value=text))
        return DVD_BYTES
    return size


def _retention(t: TableReader, name: str, default: int) -> int:
    value = t.integer(name, default, maximum=MAX_RETENTION_DAYS)
    if value < MIN_RETENTION_DAYS:
        t.problem(name, _(
            "{value} days is below the legal minimum of {minimum} days (rules art. 12(3):"
            " recordings are kept at least three months); set it to {minimum} or more"
        ).format(value=value, minimum=MIN_RETENTION_DAYS))
        return default
    return value

