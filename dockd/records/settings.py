"""The ``[records]`` config section: retention, reporting thresholds, the local day.

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

from dockd.config import Config, TableReader, register_section
from dockd.errors import ConfigError
from dockd.i18n import _

MIN_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 36_500
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class RecordsSettings:
    """Validated ``[records]`` values."""

    retention_days: int = MIN_RETENTION_DAYS
    case_retention_days: int = 365
    undocked_alert_hours: int = 48
    utc_offset: dt.timedelta = dt.timedelta(0)

    @property
    def tz(self) -> dt.timezone:
        """The local time zone of reports and day views (a fixed offset)."""
        return dt.timezone(self.utc_offset)


def parse_records(t: TableReader) -> RecordsSettings:
    """Parse ``[records]``; ConfigError (exit 78) on any bad value."""
    untagged = _retention(t, "retention_days", MIN_RETENTION_DAYS)
    case = _retention(t, "case_retention_days", 365)
    settings = RecordsSettings(
        retention_days=untagged,
        case_retention_days=case,
        undocked_alert_hours=t.integer("undocked_alert_hours", 48, minimum=1, maximum=24 * 366),
        utc_offset=_offset(t, "utc_offset", "+00:00"),
    )
    return settings


def records_settings(config: Config) -> RecordsSettings:
    """The ``[records]`` section of ``config`` (defaults when the section was not parsed)."""
    value = config.extra_sections.get("records")
    return value if isinstance(value, RecordsSettings) else RecordsSettings()


def archive_required(config: Config) -> bool:
    """True when a central archive is configured (an ``[archive]`` section, owned by
    :mod:`dockd.records.archive.config`): then prune deletes only what the archive holds."""
    return config.extra_sections.get("archive") is not None


def _retention(t: TableReader, name: str, default: int) -> int:
    value = t.integer(name, default, maximum=MAX_RETENTION_DAYS)
    if value < MIN_RETENTION_DAYS:
        raise ConfigError(_(
            "{key}: {value} days is below the legal minimum of {minimum} days (rules art. 12(3):"
            " recordings are kept at least three months); set it to {minimum} or more"
        ).format(key=t.key(name), value=value, minimum=MIN_RETENTION_DAYS))
    return value


def _offset(t: TableReader, name: str, default: str) -> dt.timedelta:
    text = t.string(name, default)
    match = _OFFSET.match(text)
    if not match or int(match[2]) > 14 or int(match[3]) >= 60:
        raise ConfigError(_("{key}: {value!r} is not a UTC offset; expected e.g. '+08:00'")
                          .format(key=t.key(name), value=text))
    sign = -1 if match[1] == "-" else 1
    return sign * dt.timedelta(hours=int(match[2]), minutes=int(match[3]))


register_section("records", parse_records)
