"""A custody event for tests that need records of no particular kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from dockd.store.events import SUBJECT_ONLY, CustodyEvent, merged


@dataclass(frozen=True)
class RawEvent(CustodyEvent):
    """A record of any type and payload: what someone who writes to the log by other means
    than dockd's own code could append (tests of forgeries)."""

    kind: str = field(metadata=SUBJECT_ONLY)
    about: str = field(metadata=SUBJECT_ONLY)
    details: Mapping[str, object] = merged()
    SUBJECT: ClassVar[str] = "about"

    @property  # type: ignore[misc]  # the type is this record's own, not the class's
    def TYPE(self) -> str:
        return self.kind


@dataclass(frozen=True)
class NoteEvent(CustodyEvent):
    """``test.event`` about ``about``, with any payload."""

    TYPE: ClassVar[str] = "test.event"
    about: str = field(metadata=SUBJECT_ONLY)
    details: Mapping[str, object] = merged()
    SUBJECT: ClassVar[str] = "about"
