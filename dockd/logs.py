"""Logging to stderr in a form journald keeps structured.

Under systemd (``JOURNAL_STREAM`` set) each line starts with a ``<N>`` syslog priority,
which journald strips and stores as PRIORITY; the rest is logfmt (``key=value``), so
``journalctl -o verbose`` and log shippers can split the fields. Outside systemd the line
also carries a UTC timestamp.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def setup_logging(level: str = "INFO") -> None:
    """Install the structured stderr handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_dockd", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter(under_journald="JOURNAL_STREAM" in os.environ))
    handler._dockd = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())


class LogfmtFormatter(logging.Formatter):
    """``<prio>`` + ``level=… logger=… msg="…" key=value`` from ``extra=`` fields."""

    def __init__(self, under_journald: bool) -> None:
        super().__init__()
        self.under_journald = under_journald

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {}
        if not self.under_journald:
            fields["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        fields["level"] = record.levelname.lower()
        fields["logger"] = record.name
        fields["msg"] = record.getMessage()
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                fields[key] = value
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        line = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        if self.under_journald:
            prio = _PRIORITY.get(record.levelno, 6)
            return f"<{prio}>{line}"
        return line


def _quote(value: Any) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-_./:@+" for c in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
