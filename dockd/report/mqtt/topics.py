"""The topic tree: ``<prefix>/<site>/<dock>/…``, named once here and in docs/mqtt.md.

=====================================  ======  ========  =====================================
topic                                  QoS     retained  payload (schema in schemas/)
=====================================  ======  ========  =====================================
``<base>/status``                      1       yes       status.v1 (offline = Last Will)
``<base>/bay/<n>/state``               1       yes       bay_state.v1
``<base>/recorder/<serial>/health``    1       yes       recorder_health.v1
``<base>/custody``                     1       no        custody.v1 (one record, via outbox)
``<base>/checkpoint``                  1       yes       checkpoint.v1 (latest, via outbox)
``<base>/alert``                       1       no        alert.v1
=====================================  ======  ========  =====================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockd.names import SERIAL_PATTERN

STATUS = "status"
CUSTODY = "custody"
CHECKPOINT = "checkpoint"
ALERT = "alert"
_LEVEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# An outbox row names a suffix under the dock; never a wildcard, never another dock's tree.
_SUFFIX = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}){0,3}$")


@dataclass(frozen=True)
class Topics:
    """The topics of one dock."""

    prefix: str
    site: str
    dock: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}/{self.dock}"

    @property
    def status(self) -> str:
        return f"{self.base}/{STATUS}"

    @property
    def custody(self) -> str:
        return f"{self.base}/{CUSTODY}"

    @property
    def checkpoint(self) -> str:
        return f"{self.base}/{CHECKPOINT}"

    @property
    def alert(self) -> str:
        return f"{self.base}/{ALERT}"

    def bay(self, bay: int) -> str:
        """Retained state of bay ``bay``."""
        if bay < 0:
            raise ValueError(f"bay number {bay} is negative")
        return f"{self.base}/bay/{bay}/state"

    def health(self, serial: str) -> str:
        """Retained health of recorder ``serial`` (a serial that is not a safe level is refused)."""
        if not SERIAL_PATTERN.match(serial):
            raise ValueError(f"recorder serial {serial!r} cannot be a topic level")
        return f"{self.base}/recorder/{serial}/health"

    def outbox(self, suffix: str) -> str:
        """The full topic of an outbox row's ``topic`` suffix (levels under the dock only)."""
        if not _SUFFIX.match(suffix):
            raise ValueError(f"outbox topic {suffix!r} is not a plain topic suffix "
                             "(levels of letters, digits, '_', '.', '-')")
        return f"{self.base}/{suffix}"


@dataclass(frozen=True)
class ParsedTopic:
    """What a received topic is about."""

    site: str
    dock: str
    kind: str  # status | custody | checkpoint | alert | bay | health
    key: str | None = None  # bay number or recorder serial


def parse_topic(prefix: str, topic: str) -> ParsedTopic | None:
    """Split a topic of the tree; None when it is not one of ours."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != prefix:
        return None
    site, dock, rest = parts[1], parts[2], parts[3:]
    if not (_LEVEL.match(site) and _LEVEL.match(dock)):
        return None
    if len(rest) == 1 and rest[0] in (STATUS, CUSTODY, CHECKPOINT, ALERT):
        return ParsedTopic(site, dock, rest[0])
    if len(rest) == 3 and rest[0] == "bay" and rest[2] == "state" and rest[1].isdigit():
        return ParsedTopic(site, dock, "bay", rest[1])
    if len(rest) == 3 and rest[0] == "recorder" and rest[2] == "health" and \
            SERIAL_PATTERN.match(rest[1]):
        return ParsedTopic(site, dock, "health", rest[1])
    return None
