"""The ``[records]`` section: retention, reporting thresholds, the local day.

::

    [records]
    retention_days = 90           # untagged recordings; never below 90 (rules art. 12(3))
    case_retention_days = 365     # recordings tagged with a case number
    undocked_alert_hours = 48     # reports flag a recorder not docked for longer
    utc_offset = "+08:00"         # the bureau's local time: days and weeks of reports

A retention below 90 days is refused, whatever the category: the rules ask for at least
three months and a config cannot lower that.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from dockd.config.reader import TableReader
from dockd.i18n import _

MIN_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 36_500
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class RecordsSection:
    """Validated ``[records]`` values."""

    retention_days: int = MIN_RETENTION_DAYS
    case_retention_days: int = 365
    undocked_alert_hours: int = 48
    utc_offset: dt.timedelta = dt.timedelta(0)

    @property
    def tz(self) -> dt.timezone:
        """The local time zone of reports and day views (a fixed offset)."""
        return dt.timezone(self.utc_offset)


def parse_records(t: TableReader) -> RecordsSection:
    """Validate ``[records]``."""
    d = RecordsSection
    return RecordsSection(
        retention_days=_retention(t, "retention_days", d.retention_days),
        case_retention_days=_retention(t, "case_retention_days", d.case_retention_days),
        undocked_alert_hours=t.integer("undocked_alert_hours", d.undocked_alert_hours, minimum=1,
                                       maximum=24 * 366),
        utc_offset=_offset(t, "utc_offset", "+00:00"),
    )


def _retention(t: TableReader, name: str, default: int) -> int:
    value = t.integer(name, default, maximum=MAX_RETENTION_DAYS)
    if value < MIN_RETENTION_DAYS:
        t.problem(name, _(
            "{value} days is below the legal minimum of {minimum} days (rules art. 12(3):"
            " recordings are kept at least three months); set it to {minimum} or more"
        ).format(value=value, minimum=MIN_RETENTION_DAYS))
        return default
    return value


def _offset(t: TableReader, name: str, default: str) -> dt.timedelta:
    text = t.string(name, default)
    match = _OFFSET.match(text)
    if not match or int(match[2]) > 14 or int(match[3]) >= 60:
        t.problem(name, _("{value!r} is not a UTC offset; expected e.g. '+08:00'").format(value=text))
        return dt.timedelta(0)
    sign = -1 if match[1] == "-" else 1
    return sign * dt.timedelta(hours=int(match[2]), minutes=int(match[3]))
