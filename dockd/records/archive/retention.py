"""When an archived object may be deleted at the earliest: its COMPLIANCE retain-until date.

The clock starts when the recording was made (its metadata ``start_time``), else when
the dock stored it (``ingested_at``), and runs ``[archive] retention_days`` (never below
90, rule art. 12(3)). Object Lock only accepts a date in the future, so a recording
archived after its period has already run out is still locked for :data:`MIN_LOCK`.
"""

from __future__ import annotations

import datetime as dt

from dockd.clock import parse_utc_iso

MIN_LOCK = dt.timedelta(days=1)


def retain_until(recorded_at: str, retention_days: int, now: dt.datetime) -> dt.datetime:
    """recorded_at (RFC 3339) + retention_days, at least ``now`` + MIN_LOCK, rounded up to
    the whole second (S3 keeps seconds; rounding down would shorten the period)."""
    start = parse_utc_iso(recorded_at)
    until = max(start + dt.timedelta(days=retention_days), now.astimezone(dt.UTC) + MIN_LOCK)
    if until.microsecond:
        until = until.replace(microsecond=0) + dt.timedelta(seconds=1)
    return until


def recorded_at(start_time: str | None, ingested_at: str) -> str:
    """The moment the retention period counts from: start_time when it parses, else
    ingested_at (a recorder's garbage start time must not make the period shorter or fail)."""
    if start_time:
        try:
            parse_utc_iso(start_time)
        except ValueError:
            return ingested_at
        return start_time
    return ingested_at
