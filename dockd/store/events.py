"""Every custody event dockd writes, one frozen dataclass each: the log's vocabulary.

An event knows its record type (``TYPE``), its subject (what the record is about: a
recorder serial, an item's SHA-256, a session id, ``store``…) and its payload
(:meth:`CustodyEvent.to_payload`). Field names are payload keys, except where a field's
metadata names the key (``from``/``to`` are Python keywords) or marks an optional key that is
left out when empty. A ``details`` mapping is merged into the payload: it carries summaries
that a domain object builds itself (a health report, a session's counts).

docs/store.md, docs/runtime.md, docs/records.md and docs/archive.md list these types in their
event tables; a test keeps the tables and this module in step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from dockd.store.canonical import JsonObject

T = TypeVar("T")

STORE_SUBJECT = "store"

_KEY = "key"
_OPTIONAL = "optional"
_MERGED = "merged"
_SUBJECT_ONLY = "subject_only"


SUBJECT_ONLY = {_SUBJECT_ONLY: True}
"""Field metadata: the record's subject, not repeated in the payload."""


def payload_key(name: str) -> dict[str, str]:
    """Field metadata: the field's payload key is ``name``."""
    return {_KEY: name}


def optional(default: T) -> T:
    """A field left out of the payload when it is None (or False)."""
    return field(default=default, metadata={_OPTIONAL: True})


def optional_mapping() -> Mapping[str, T]:
    """A mapping left out of the payload when it is empty."""
    value: Mapping[str, T] = field(default_factory=dict, metadata={_OPTIONAL: True})
    return value


def merged() -> Mapping[str, object]:
    """A mapping merged into the payload (summaries built by their domain objects)."""
    details: Mapping[str, object] = field(default_factory=dict, metadata={_MERGED: True})
    return details


@dataclass(frozen=True)
class CustodyEvent:
    """Base of every event: subclasses set ``TYPE`` and define :attr:`subject`."""

    TYPE: ClassVar[str]
    SUBJECT: ClassVar[str]
    """The field that is the record's subject (classes whose subject is not one field
    override :attr:`subject` instead)."""

    @property
    def subject(self) -> str:
        """What the record is about (a serial, a SHA-256, a session id, ``store``…)."""
        return str(getattr(self, self.SUBJECT))

    def to_payload(self) -> JsonObject:
        """The record's payload, JSON-ready."""
        payload: JsonObject = {}
        cls = type(self)
        fields = _PAYLOAD_FIELDS.get(cls) or _PAYLOAD_FIELDS.setdefault(cls, _payload_fields(cls))
        for name, key, merged, optional in fields:
            value = getattr(self, name)
            if merged:
                payload.update(value)
            elif not (optional and not value):
                # Most values are plain (a batch makes a payload per file): as they are.
                payload[key] = value if type(value) in _PLAIN else _json(value)
        return payload


_PLAIN = frozenset({str, int, float, bool, type(None)})  # what _json gives back as it is
_PayloadField = tuple[str, str, bool, bool]
# Read from each class's dataclass fields once: an offload batch makes hundreds of payloads.
_PAYLOAD_FIELDS: dict[type[CustodyEvent], tuple[_PayloadField, ...]] = {}


def _payload_fields(cls: type[CustodyEvent]) -> tuple[_PayloadField, ...]:
    """(attribute, payload key, merged, optional) of each payload field of an event class."""
    return tuple((f.name, f.metadata.get(_KEY, f.name), bool(f.metadata.get(_MERGED)),
                  bool(f.metadata.get(_OPTIONAL)))
                 for f in dataclasses.fields(cls) if not f.metadata.get(_SUBJECT_ONLY))


def _json(value: object) -> object:
    if value is None or isinstance(value, str | int | float):  # most values: as they are
        return value
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def event_types() -> dict[str, type[CustodyEvent]]:
    """Every event class by its record type."""
    found: dict[str, type[CustodyEvent]] = {}
    pending: list[type[CustodyEvent]] = list(CustodyEvent.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "TYPE" in cls.__dict__:
            found[cls.TYPE] = cls
    return found


# -- the dock --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DockStarted(CustodyEvent):
    TYPE: ClassVar[str] = "dock.started"
    SUBJECT: ClassVar[str] = "dock"
    dock: str = field(metadata=SUBJECT_ONLY)
    version: str
    bays: tuple[str, ...]


@dataclass(frozen=True)
class DockStopped(CustodyEvent):
    TYPE: ClassVar[str] = "dock.stopped"
    SUBJECT: ClassVar[str] = "dock"
    dock: str = field(metadata=SUBJECT_ONLY)


# -- a recorder in a bay (check-in, checks, check-out, faults) ------------------------------

@dataclass(frozen=True)
class RecorderText:
    """A text field as the recorder sent it: the text (None when it could not be decoded) and
    its bytes, base64."""

    text: str | None
    raw_b64: str


@dataclass(frozen=True)
class RecorderDocked(CustodyEvent):
    """Check-in (art. 5(1)): who the recorder is and who is responsible for it.

    ``recorder_text`` keeps each text field the recorder sent (officer and unit, GA/T 947) as
    its bytes beside the decoded text; ``decode_warnings`` what decoding had to tolerate."""

    TYPE: ClassVar[str] = "recorder.docked"
    SUBJECT: ClassVar[str] = "serial"
    bay: int
    port: str
    serial: str
    driver: str
    id_code: str | None
    officer_id: str | None
    officer_name: str | None
    enrolled: bool
    registry_state: str | None
    recorder_officer_id: str | None
    recorder_text: Mapping[str, RecorderText] = optional_mapping()
    decode_warnings: tuple[str, ...] = optional(())


@dataclass(frozen=True)
class RecorderHealthChecked(CustodyEvent):
    """The art. 4 checks: battery, storage, clock (``details`` is the health report)."""

    TYPE: ClassVar[str] = "recorder.health"
    SUBJECT: ClassVar[str] = "serial"
    bay: int
    serial: str
    details: Mapping[str, object] = merged()


@dataclass(frozen=True)
class ClockSet(CustodyEvent):
    """The recorder's clock was set (art. 4): when (``set_to``, the dock's time), what was sent,
    and whether it could be verified by reading it back."""

    TYPE: ClassVar[str] = "clock.set"
    SUBJECT: ClassVar[str] = "serial"
    bay: int
    serial: str
    set_to: str
    recorder_time_before: str | None
    drift_before_s: float | None
    drift_after_s: float | None
    error: str | None
    sent: str | None = None  # what went on the wire (frames, payload)
    sent_wall_time: str | None = None  # the recorder's local wall time that was sent
    recorder_zone: str | None = None
    verified: bool = False  # read back after the set; recorders that cannot be read: false


@dataclass(frozen=True)
class RecorderUndocked(CustodyEvent):
    """Check-out (art. 5(1))."""

    TYPE: ClassVar[str] = "recorder.undocked"
    SUBJECT: ClassVar[str] = "serial"
    bay: int
    serial: str
    officer_id: str | None
    officer_name: str | None
    state: str
    fault: str | None


@dataclass(frozen=True)
class RecorderRemovedEarly(CustodyEvent):
    """The recorder left before its session ended."""

    TYPE: ClassVar[str] = "recorder.removed_early"
    bay: int
    serial: str | None
    state: str

    @property
    def subject(self) -> str:
        return self.serial or f"bay-{self.bay}"


@dataclass(frozen=True)
class BayFault(CustodyEvent):
    """A bay went red (art. 5(6)); an alert goes out in the same transaction."""

    TYPE: ClassVar[str] = "bay.fault"
    bay: int
    label: str
    port: str
    reason: str
    detail: str
    recorder: str | None
    dock_problem: bool

    @property
    def subject(self) -> str:
        return self.recorder or f"bay-{self.bay}"


# -- clearing a recorder after its recordings are safe --------------------------------------

@dataclass(frozen=True)
class RecorderFileDeleted(CustodyEvent):
    TYPE: ClassVar[str] = "recorder.file_deleted"
    SUBJECT: ClassVar[str] = "serial"
    serial: str
    source_path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class RecorderFileDeleteFailed(RecorderFileDeleted):
    TYPE: ClassVar[str] = "recorder.file_delete_failed"
    error: str = ""


@dataclass(frozen=True)
class RecorderCleared(CustodyEvent):
    TYPE: ClassVar[str] = "recorder.cleared"
    SUBJECT: ClassVar[str] = "serial"
    serial: str
    deleted: int
    kept: int
    kept_reasons: tuple[str, ...]


# -- the recorder registry (art. 5(1), 7, 9, 10) --------------------------------------------

@dataclass(frozen=True)
class RecorderEnrolled(CustodyEvent):
    TYPE: ClassVar[str] = "recorder.enrolled"
    SUBJECT: ClassVar[str] = "serial"
    serial: str
    brand: str | None
    model: str | None
    officer_id: str | None
    officer_name: str | None
    unit: str | None


@dataclass(frozen=True)
class RecorderAssigned(CustodyEvent):
    TYPE: ClassVar[str] = "recorder.assigned"
    SUBJECT: ClassVar[str] = "serial"
    serial: str
    officer_id: str
    officer_name: str | None
    unit: str | None
    previous_officer_id: str | None


@dataclass(frozen=True)
class RecorderStateChanged(CustodyEvent):
    TYPE: ClassVar[str] = "recorder.state_changed"
    SUBJECT: ClassVar[str] = "serial"
    serial: str
    from_state: str = field(metadata=payload_key("from"))
    to_state: str = field(metadata=payload_key("to"))


@dataclass(frozen=True)
class RecorderRetired(CustodyEvent):
    TYPE: ClassVar[str] = "recorder.retired"
    SUBJECT: ClassVar[str] = "serial"
    serial: str
    from_state: str = field(metadata=payload_key("from"))


# -- offload sessions and their files (the store) -------------------------------------------

@dataclass(frozen=True)
class SessionStarted(CustodyEvent):
    TYPE: ClassVar[str] = "session.started"
    SUBJECT: ClassVar[str] = "recorder"
    session_id: str
    recorder: str
    source: str
    details: Mapping[str, object] = merged()


@dataclass(frozen=True)
class FileIngested(CustodyEvent):
    """One file of a recorder is in the store (a new item, or one already held)."""

    TYPE: ClassVar[str] = "file.ingested"
    SUBJECT: ClassVar[str] = "sha256"
    session_id: str
    sha256: str
    size: int
    recorder: str
    source_path: str
    mtime_ns: int
    new_item: bool
    stored_path: str
    restored_after_prune: bool = optional(False)
    sm3: str | None = optional(None)
    source_path_b64: str | None = optional(None)


@dataclass(frozen=True)
class FileSkipped(CustodyEvent):
    """An entry of the volume that is not a regular file (or lies too deep) was not stored."""

    TYPE: ClassVar[str] = "file.skipped"
    SUBJECT: ClassVar[str] = "recorder"
    recorder: str = field(metadata=SUBJECT_ONLY)
    session_id: str
    source_path: str
    reason: str


@dataclass(frozen=True)
class FileFailed(CustodyEvent):
    """A file of the volume could not be stored."""

    TYPE: ClassVar[str] = "file.failed"
    SUBJECT: ClassVar[str] = "recorder"
    recorder: str = field(metadata=SUBJECT_ONLY)
    session_id: str
    source_path: str
    reason: str
    detail: str


@dataclass(frozen=True)
class SessionCompleted(CustodyEvent):
    """A session ended with every file looked at (``details``: the session's summary)."""

    TYPE: ClassVar[str] = "session.completed"
    SUBJECT: ClassVar[str] = "recorder"
    recorder: str = field(metadata=SUBJECT_ONLY)
    details: Mapping[str, object] = merged()


@dataclass(frozen=True)
class SessionInterrupted(SessionCompleted):
    """A session ended early: store full or unavailable, recorder removed, cancelled, or a
    crash found at the next start (``reason: crash_recovery``)."""

    TYPE: ClassVar[str] = "session.interrupted"


@dataclass(frozen=True)
class BatchUndone(CustodyEvent):
    """Objects of a dead process's uncommitted batch were removed at the next open."""

    TYPE: ClassVar[str] = "store.batch_undone"
    shas: tuple[str, ...]
    folder: str

    @property
    def subject(self) -> str:
        return STORE_SUBJECT


@dataclass(frozen=True)
class KeyRotated(CustodyEvent):
    """The store's checkpoint key changed (``dockd key rotate``): the old key vouches for the
    new one, unless it was lost (``reason: old_key_lost``, ``old_key_signature: None``)."""

    TYPE: ClassVar[str] = "key.rotated"
    dock: str
    old_public_key: str
    new_public_key: str
    old_fingerprint: str
    new_fingerprint: str
    old_key_signature: str | None
    new_key_signature: str
    reason: str

    @property
    def subject(self) -> str:
        return STORE_SUBJECT


@dataclass(frozen=True)
class VerifyCompleted(CustodyEvent):
    """``dockd verify`` found the store intact (``details``: what was checked)."""

    TYPE: ClassVar[str] = "verify.completed"
    details: Mapping[str, object] = merged()

    @property
    def subject(self) -> str:
        return STORE_SUBJECT


@dataclass(frozen=True)
class VerifyFailed(VerifyCompleted):
    """``dockd verify`` found problems."""

    TYPE: ClassVar[str] = "verify.failed"


# -- records (retention, holds, cases, export, access) --------------------------------------

@dataclass(frozen=True)
class ItemDeleted(CustodyEvent):
    """Prune removed a recording whose retention ended (art. 12(3))."""

    TYPE: ClassVar[str] = "item.deleted"
    SUBJECT: ClassVar[str] = "sha256"
    sha256: str
    size: int
    reason: str
    category: str
    retention_days: int
    due: str
    archived: bool


@dataclass(frozen=True)
class HoldAdded(CustodyEvent):
    TYPE: ClassVar[str] = "hold.added"
    SUBJECT: ClassVar[str] = "target"
    hold_id: int
    scope: str
    target: str
    range_from: str | None = field(default=None, metadata=payload_key("from"))
    range_to: str | None = field(default=None, metadata=payload_key("to"))
    reason: str = ""
    stated_by: str = ""


@dataclass(frozen=True)
class HoldReleased(CustodyEvent):
    TYPE: ClassVar[str] = "hold.released"
    SUBJECT: ClassVar[str] = "target"
    hold_id: int
    scope: str
    target: str
    stated_by: str


@dataclass(frozen=True)
class CaseTagged(CustodyEvent):
    TYPE: ClassVar[str] = "case.tagged"
    SUBJECT: ClassVar[str] = "case"
    case: str
    items: tuple[str, ...]
    place: str | None
    case_created: bool
    stated_by: str | None = optional(None)


@dataclass(frozen=True)
class ItemAnnotated(CustodyEvent):
    TYPE: ClassVar[str] = "item.annotated"
    SUBJECT: ClassVar[str] = "sha256"
    sha256: str
    place: str | None
    operator_name: str | None
    stated_by: str
    # Other art. 12(4) fields entered by hand where no source knows them (officer_name,
    # start_time, end_time, format, length_s, device_brand, device_model).
    fields: Mapping[str, str] = optional_mapping()


@dataclass(frozen=True)
class ExportCreated(CustodyEvent):
    """An evidence package was made (art. 12(4), 13, 14)."""

    TYPE: ClassVar[str] = "export.created"
    SUBJECT: ClassVar[str] = "export_id"
    export_id: str
    case: str | None
    items: tuple[str, ...]
    requester: str
    requester_unit: str
    reason: str
    approved_by: str
    public_use: bool
    manifest_sha256: str
    out: str
    iso: str | None
    iso_sha256: str | None
    recordings: int
    bytes: int


@dataclass(frozen=True)
class AccessRegistered(CustodyEvent):
    """Police, procuratorate or court access was registered (art. 14)."""

    TYPE: ClassVar[str] = "access.registered"
    case: str | None
    items: tuple[str, ...]
    requester: str
    requester_unit: str
    reason: str
    approved_by: str

    @property
    def subject(self) -> str:
        return self.case or self.items[0]


# -- the central WORM archive ---------------------------------------------------------------

@dataclass(frozen=True)
class FileArchived(CustodyEvent):
    TYPE: ClassVar[str] = "file.archived"
    SUBJECT: ClassVar[str] = "sha256"
    sha256: str
    size: int
    bucket: str
    key: str
    version_id: str
    checksum_sha256: str
    lock_mode: str
    retain_until: str
    legal_hold: str
    manifest_key: str
    manifest_version_id: str


@dataclass(frozen=True)
class ArchivedFile:
    """One object of an archived session (its ASC MHL files)."""

    key: str
    version_id: str
    sha256: str
    checksum_sha256: str


@dataclass(frozen=True)
class SessionArchived(CustodyEvent):
    TYPE: ClassVar[str] = "session.archived"
    SUBJECT: ClassVar[str] = "session_id"
    session_id: str
    recorder: str
    mhl_c4: str | None
    bucket: str
    retain_until: str
    legal_hold: str
    files: Sequence[ArchivedFile]


@dataclass(frozen=True)
class ArchivedSegment:
    """One custody log segment in the archive (records first_seq..last_seq and the signed
    checkpoint at last_seq)."""

    key: str
    version_id: str
    first_seq: int
    last_seq: int
    sha256: str


@dataclass(frozen=True)
class CustodyArchived(CustodyEvent):
    """Segments of the custody log were archived (one event per sync that archived any)."""

    TYPE: ClassVar[str] = "custody.archived"
    SUBJECT: ClassVar[str] = "log"
    log: str = field(default="custody", metadata=SUBJECT_ONLY, init=False)
    bucket: str
    segments: Sequence[ArchivedSegment]


@dataclass(frozen=True)
class ArchiveLegalHold(CustodyEvent):
    """An archived object's legal hold was set or lifted, mirroring the dock's holds."""

    TYPE: ClassVar[str] = "archive.legal_hold"
    SUBJECT: ClassVar[str] = "archived"
    archived: str = field(metadata=SUBJECT_ONLY)
    bucket: str
    key: str
    version_id: str
    legal_hold: str
