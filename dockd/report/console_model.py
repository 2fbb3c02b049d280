"""The state channel's JSON, read defensively into what the console shows.

The console and ``dockd status`` draw whatever the daemon sends; the daemon may be a
newer or older version, or something else may listen on the socket. So nothing here
raises: a missing key, a wrong type or an absurd number becomes "unknown" (None), and
every string is cut to a sane length and stripped of control characters, so a recorder
that reports a serial like ``"\\x1b[2J"`` cannot clear or restyle the dock's terminal.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 64  # characters of any one name shown; longer is cut with "…"
MAX_BAYS = 64  # a dock has a handful of bays; more is not a dock state we can draw
MAX_WORDS = 8  # of a list of words such as the unchecked checks (there are three)
# Larger than any real byte count or rate (an exabyte); beyond it a number is nonsense.
MAX_QUANTITY = 10**18


@dataclass(frozen=True)
class ProgressView:
    """Offload progress of one bay; None where the daemon did not say."""

    files_done: int | None = None
    files_total: int | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    rate_bytes_per_s: float | None = None
    seconds_left: float | None = None

    @property
    def fraction(self) -> float | None:
        """Bytes done / total, in 0..1; None when unknown."""
        if self.bytes_total is None or self.bytes_done is None or self.bytes_total <= 0:
            return None
        return min(1.0, max(0.0, self.bytes_done / self.bytes_total))


@dataclass(frozen=True)
class BayView:
    """One bay as the console shows it."""

    bay: int | None
    label: str
    state: str  # a BayState value, or whatever unknown word the daemon sent
    fault: str | None = None
    recorder: str | None = None
    officer: str | None = None
    battery_percent: float | None = None
    storage_free_bytes: int | None = None
    storage_total_bytes: int | None = None
    clock_drift_s: float | None = None
    progress: ProgressView = field(default_factory=ProgressView)
    updated_at: str | None = None
    unchecked: tuple[str, ...] = ()  # art. 4 checks not done (``ready_unchecked``)


@dataclass(frozen=True)
class BrokerView:
    """The link to the MQTT broker: ``status`` is connected, offline, disabled or unknown."""

    status: str
    url: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class DockView:
    """The dock-level line."""

    id: str | None = None
    site: str | None = None
    version: str | None = None
    time: str | None = None
    store_free_bytes: int | None = None
    store_total_bytes: int | None = None
    clock_synchronised: bool | None = None
    outbox_depth: int | None = None
    broker: BrokerView = field(default_factory=lambda: BrokerView("unknown"))


@dataclass(frozen=True)
class ConsoleState:
    """A whole snapshot; ``problems`` says what could not be read (shown, never raised)."""

    dock: DockView
    bays: tuple[BayView, ...]
    problems: tuple[str, ...] = ()


def parse_state(raw: object) -> ConsoleState:
    """Read one state-channel snapshot (``Daemon.snapshot()``'s shape) without ever raising."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        return ConsoleState(DockView(), (), ("snapshot is not a JSON object",))
    if raw.get("v") != 1:
        problems.append(f"unknown snapshot version {clean_text(raw.get('v'))}")
    dock = _dock(raw.get("dock"), problems)
    bays_raw = raw.get("bays")
    bays: list[BayView] = []
    if isinstance(bays_raw, list):
        if len(bays_raw) > MAX_BAYS:
            problems.append(f"{len(bays_raw)} bays; showing the first {MAX_BAYS}")
        for item in bays_raw[:MAX_BAYS]:
            if isinstance(item, dict):
                bays.append(_bay(item))
            else:
                problems.append("a bay entry is not a JSON object")
    else:
        problems.append("no list of bays")
    return ConsoleState(dock, tuple(bays), tuple(problems))


def clean_text(value: object, limit: int = MAX_TEXT) -> str | None:
    """``value`` as a printable one-line string, or None when it is not a string or number."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    text = value if isinstance(value, str) else str(value)
    # Control (Cc), format (Cf: bidi overrides) and separator chars never reach the terminal.
    text = "".join("\ufffd" if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") else ch
                   for ch in text[: limit * 4])
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- helpers ------------------------------------------------------------------------------------


def _dock(raw: object, problems: list[str]) -> DockView:
    if not isinstance(raw, dict):
        problems.append("no dock information")
        return DockView()
    sync = raw.get("clock_synchronised")
    return DockView(
        id=clean_text(raw.get("id")), site=clean_text(raw.get("site")),
        version=clean_text(raw.get("version")), time=clean_text(raw.get("time")),
        store_free_bytes=_count(raw.get("store_free_bytes")),
        store_total_bytes=_count(raw.get("store_total_bytes")),
        clock_synchronised=sync if isinstance(sync, bool) else None,
        outbox_depth=_count(raw.get("outbox_depth")), broker=_broker(raw.get("broker")))


def _broker(raw: object) -> BrokerView:
    # Two shapes: {"state": "disabled"} when MQTT is off, BrokerState.to_json_dict() when on.
    if not isinstance(raw, dict):
        return BrokerView("unknown")
    if raw.get("state") == "disabled":
        return BrokerView("disabled")
    connected = raw.get("connected")
    url, error = clean_text(raw.get("broker"), 96), clean_text(raw.get("error"), 160)
    if connected is True:
        return BrokerView("connected", url, None)
    if connected is False:
        return BrokerView("offline", url, error)
    return BrokerView("unknown", url, error)


def _bay(raw: dict[str, Any]) -> BayView:
    number = _count(raw.get("bay"))
    label = clean_text(raw.get("label")) or (str(number) if number is not None else "?")
    return BayView(
        bay=number, label=label, state=clean_text(raw.get("state"), 24) or "unknown",
        fault=clean_text(raw.get("fault"), 32), recorder=clean_text(raw.get("recorder")),
        officer=clean_text(raw.get("officer")),
        battery_percent=_real(raw.get("battery_percent"), 0, 100),
        storage_free_bytes=_count(raw.get("storage_free_bytes")),
        storage_total_bytes=_count(raw.get("storage_total_bytes")),
        clock_drift_s=_real(raw.get("clock_drift_s"), -MAX_QUANTITY, MAX_QUANTITY),
        progress=_progress(raw.get("progress")), updated_at=clean_text(raw.get("updated_at")),
        unchecked=_words(raw.get("unchecked")))


def _words(raw: object) -> tuple[str, ...]:
    """A short list of short words (the unchecked checks); anything else is left out."""
    if not isinstance(raw, list):
        return ()
    words = (clean_text(item, 16) for item in raw[:MAX_WORDS] if isinstance(item, str))
    return tuple(word for word in words if word)


def _progress(raw: object) -> ProgressView:
    if not isinstance(raw, dict):
        return ProgressView()
    return ProgressView(
        files_done=_count(raw.get("files_done")), files_total=_count(raw.get("files_total")),
        bytes_done=_count(raw.get("bytes_done")), bytes_total=_count(raw.get("bytes_total")),
        rate_bytes_per_s=_real(raw.get("rate_bytes_per_s"), 0, MAX_QUANTITY),
        seconds_left=_real(raw.get("seconds_left"), 0, MAX_QUANTITY))


def _count(value: object) -> int | None:
    """A non-negative whole number within range (floats with no fraction accepted)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value <= MAX_QUANTITY:
        return value
    return None


def _real(value: object, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and not -MAX_QUANTITY <= value <= MAX_QUANTITY:
        return None  # float() of a 400-digit int would raise OverflowError
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        return None
    return number
