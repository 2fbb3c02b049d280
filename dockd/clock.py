"""Injected time, so tests control it."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from typing import Protocol

LOCALTIME = "/etc/localtime"


class Clock(Protocol):
    """Source of wall-clock time (UTC) and monotonic time."""

    def now(self) -> dt.datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def utc_iso(moment: dt.datetime) -> str:
    """RFC 3339 UTC with microseconds and a ``Z`` suffix: the one time format we write."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc_iso(text: str) -> dt.datetime:
    """Inverse of :func:`utc_iso` (accepts any RFC 3339 offset)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def zone_named(name: str) -> dt.tzinfo:
    """The IANA time zone ``name`` (``Asia/Shanghai``); ValueError when there is none."""
    import zoneinfo  # here: it imports sysconfig, and most commands never name a zone

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(name) from None


def system_zone() -> dt.tzinfo:
    """The machine's time zone: ``TZ``, else ``/etc/localtime`` (named after its link
    target when it is one, as Debian's is), else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        with contextlib.suppress(ValueError):
            return zone_named(name)
    with contextlib.suppress(OSError, ValueError):
        target = os.readlink(LOCALTIME)
        if "zoneinfo/" in target:
            return zone_named(target.split("zoneinfo/", 1)[1])
    import zoneinfo

    try:
        with open(LOCALTIME, "rb") as fh:
            return zoneinfo.ZoneInfo.from_file(fh, key="localtime")
    except (OSError, ValueError):
        return dt.UTC
