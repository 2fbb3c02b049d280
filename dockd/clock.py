"""Injected time, so tests control it."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


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
