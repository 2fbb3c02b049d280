"""Conversion between aware datetimes and a recorder's zone-less local wall clock."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from dockd.errors import ConfigError
from dockd.i18n import _


def recorder_zone(name: str | None) -> dt.tzinfo:
    """The zone a recorder's clock runs in: ``name`` (IANA), or the dock's local zone if None."""
    if name is None:
        local = dt.datetime.now().astimezone().tzinfo
        assert local is not None  # astimezone() always attaches a zone
        return local
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(_("unknown time zone {name!r} for recorder clocks: use an IANA name such as "
                            "'Asia/Shanghai'").format(name=name)) from exc


def to_wall(moment: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The naive local time a recorder in ``zone`` should show at ``moment``."""
    if moment.tzinfo is None:
        raise ValueError("set_clock needs an aware datetime; recorder clocks are local wall time")
    return moment.astimezone(zone).replace(tzinfo=None)


def to_wall_seconds(moment: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """Like :func:`to_wall`, rounded to the whole second recorders keep (not truncated)."""
    return to_wall(moment + dt.timedelta(microseconds=500_000), zone).replace(microsecond=0)


def from_wall(wall: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The aware instant a recorder in ``zone`` means by naive ``wall``."""
    return wall.replace(tzinfo=zone)
