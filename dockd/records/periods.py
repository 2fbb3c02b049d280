"""Days and ISO weeks in the bureau's local time, as UTC instants for catalog queries.

Catalog times are UTC text (``2026-11-27T01:02:03.000000Z``) which sorts as time, so a
local day or week becomes a half-open UTC range [start, end).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from dockd.clock import utc_iso
from dockd.errors import UsageError
from dockd.i18n import _

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Period:
    """A half-open local period [start, end) and its label (``2026-W48``, ``2026-11-27``)."""

    label: str
    start: dt.datetime
    end: dt.datetime

    @property
    def start_utc(self) -> str:
        return utc_iso(self.start)

    @property
    def end_utc(self) -> str:
        return utc_iso(self.end)

    def days(self) -> list[dt.date]:
        """Every local day of the period."""
        first = self.start.date()
        count = (self.end - self.start).days
        return [first + dt.timedelta(days=i) for i in range(count)]


def parse_day(text: str, tz: dt.tzinfo, option: str = "--day") -> Period:
    """``YYYY-MM-DD`` as the local day it names; UsageError otherwise."""
    if not _DAY.match(text):
        raise UsageError(_("{option} {value!r} is not a date (use YYYY-MM-DD)")
                         .format(option=option, value=text))
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(_("{option} {value!r} is not a date (use YYYY-MM-DD)")
                         .format(option=option, value=text)) from None
    start = dt.datetime.combine(day, dt.time(), tz)
    return Period(text, start, start + dt.timedelta(days=1))


def parse_week(text: str, tz: dt.tzinfo) -> Period:
    """``YYYY-Www`` (ISO week, Monday first) as a local period; UsageError otherwise."""
    match = _WEEK.match(text)
    if not match:
        raise UsageError(_("--week {value!r} is not an ISO week (use e.g. 2026-W48)")
                         .format(value=text))
    try:
        monday = dt.date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise UsageError(_("--week {value!r} is not an ISO week (use e.g. 2026-W48)")
                         .format(value=text)) from None
    start = dt.datetime.combine(monday, dt.time(), tz)
    return Period(text, start, start + dt.timedelta(days=7))


def previous_week(now: dt.datetime, tz: dt.tzinfo) -> Period:
    """The last complete ISO week before ``now`` (the one reported every Monday, art. 12(2))."""
    local = now.astimezone(tz)
    this_monday = local.date() - dt.timedelta(days=local.weekday())
    last_monday = this_monday - dt.timedelta(days=7)
    year, week, _day = last_monday.isocalendar()
    return parse_week(f"{year:04d}-W{week:02d}", tz)


def day_range(start: dt.date, end: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """Local days ``start``..``end`` inclusive as a half-open instant range."""
    if end < start:
        raise UsageError(_("--to {end} is before --from {start}").format(start=start, end=end))
    first = dt.datetime.combine(start, dt.time(), tz)
    last = dt.datetime.combine(end, dt.time(), tz) + dt.timedelta(days=1)
    return first, last
