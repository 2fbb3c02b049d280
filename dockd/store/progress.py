"""Offload progress: what an ingest reports while it runs (the bay shows it on its LED,
the console and MQTT)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """Offload progress of one session (one bay). The totals are 0 until the volume has
    been counted: the copy starts before the walk that counts it ends."""

    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    rate_bytes_per_s: float = 0.0

    @property
    def seconds_left(self) -> float | None:
        if self.rate_bytes_per_s <= 0 or self.bytes_total <= self.bytes_done:
            return None
        left = (self.bytes_total - self.bytes_done) / self.rate_bytes_per_s
        # A near-zero rate would give infinity, which JSON (MQTT, state channel) cannot carry.
        return left if math.isfinite(left) else None
