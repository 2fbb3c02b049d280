"""The words an offload session ends with: its result, why it stopped, what happened to
each file and why. They are written to the catalog and the custody log as they are (they
are ``str`` enums), and callers (the bay, ``dockd ingest``) compare against these, never
against string literals."""

from __future__ import annotations

import enum


class SessionResult(enum.StrEnum):
    """How an offload session ended (``sessions.result``)."""

    RUNNING = "running"
    COMPLETED = "completed"  # every file is stored, deduplicated, known or skipped
    INCOMPLETE = "incomplete"  # the session ran to its end, but some files failed
    INTERRUPTED = "interrupted"  # the session stopped early; ``StopReason`` says why


class StopReason(enum.StrEnum):
    """Why a session was interrupted (``sessions.reason``, ``session.interrupted``)."""

    CANCELLED = "cancelled"
    REMOVED_DURING_OFFLOAD = "removed_during_offload"  # the bay saw the recorder go
    DOCK_STOPPING = "dock_stopping"
    SOURCE_REMOVED = "source_removed"  # the volume vanished under the read
    STORE_FULL = "store_full"
    STORE_UNAVAILABLE = "store_unavailable"  # the store's disk failed or turned read-only
    CRASH_RECOVERY = "crash_recovery"  # closed at the next open after its process died

    @property
    def recorder_pulled(self) -> bool:
        """True when the recorder left mid-offload (docking it again finishes the job)."""
        return self in (StopReason.REMOVED_DURING_OFFLOAD, StopReason.SOURCE_REMOVED)


class Outcome(enum.StrEnum):
    """What happened to one entry of the volume."""

    STORED = "stored"  # new to the store
    DEDUPLICATED = "deduplicated"  # the same bytes were already stored
    KNOWN = "known"  # this recorder's same file (path, size, mtime) was already stored
    SKIPPED = "skipped"  # not a regular file (or too deep): ``file.skipped``
    FAILED = "failed"  # could not be stored: ``file.failed``


class FailReason(enum.StrEnum):
    """Why a file could not be stored (``file.failed``'s ``reason``)."""

    UNREADABLE = "unreadable"  # its directory or its metadata could not be read
    VANISHED = "vanished"
    CHANGED = "changed"  # replaced between listing and opening
    READ_ERROR = "read_error"
    SOURCE_CHANGED = "source_changed"  # still being written after every retry
    NOT_REGULAR = "not_regular"
    READBACK_MISMATCH = "readback_mismatch"  # the store's disk gave back other bytes
