"""Clearing a recorder after its offload (``clear_after_offload``, off by default).

A file on the recorder is deleted only when all of these hold: this recorder's same file
(path, size, mtime) is in the catalog; its stored object exists; the file on the
recorder still hashes to the stored SHA-256 (read again now — deletion cannot be undone);
and, when a central archive is configured, the item is archived there. Each deletion is
recorded in the custody log *before* the unlink, so no file ever leaves the recorder
without a record; a failed unlink is recorded too.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from dockd.store.events import RecorderCleared, RecorderFileDeleted, RecorderFileDeleteFailed
from dockd.store.evidence import EvidenceStore
from dockd.store.hashing import hash_fd
from dockd.store.queries import is_archived
from dockd.store.source import SourceEntry, display_path, open_beneath, walk_volume

log = logging.getLogger(__name__)


@dataclass
class ClearReport:
    """What was deleted and what was kept (with why)."""

    deleted: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)


def clear_recorder(store: EvidenceStore, volume: Path, recorder: str, actor: str,
                   require_archived: bool) -> ClearReport:
    """Delete from the mounted (read-write) ``volume`` what is safely in the store."""
    report = ClearReport()
    for entry in walk_volume(volume):
        if not entry.is_file:
            continue
        shown = display_path(entry.relpath)
        row = store.catalog.query_one(
            "SELECT s.sha256 FROM sightings s JOIN items i ON i.sha256 = s.sha256"
            " WHERE s.recorder=? AND s.source_path_raw=? AND s.size=? AND s.mtime_ns=?"
            " AND i.deleted_at IS NULL", (recorder, entry.relpath, entry.size, entry.mtime_ns))
        why = _reason_to_keep(store, row[0] if row else None, require_archived)
        if why is None:
            assert row is not None
            why = _delete_if_same(store, volume, entry, row[0], recorder, actor, shown)
        if why is None:
            report.deleted.append(shown)
        else:
            report.kept[shown] = why
    store.custody.append(RecorderCleared(recorder, len(report.deleted), len(report.kept),
                                         tuple(sorted(set(report.kept.values())))), actor)
    return report


def _reason_to_keep(store: EvidenceStore, sha256: str | None, require_archived: bool) -> str | None:
    if sha256 is None:
        return "not_stored"
    if not store.content.object_path(sha256).exists():
        return "object_missing"
    if require_archived and not is_archived(store.catalog, sha256):
        return "not_archived"
    return None


def _delete_if_same(store: EvidenceStore, volume: Path, entry: SourceEntry, sha256: str,
                    recorder: str, actor: str, shown: str) -> str | None:
    try:
        fd = open_beneath(volume, entry)
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    try:
        digests, size = hash_fd(fd, ["sha256"], store.config.ingest.chunk_bytes)
    finally:
        os.close(fd)
    if digests["sha256"] != sha256 or size != entry.size:
        return "content_differs"
    store.custody.append(RecorderFileDeleted(recorder, shown, sha256, size), actor)
    try:
        _unlink_beneath(volume, entry.relpath)
    except OSError as exc:
        store.custody.append(RecorderFileDeleteFailed(recorder, shown, sha256, size,
                                                      exc.strerror or str(exc)), actor)
        log.error("could not delete a recorder file", extra={"path": shown, "error": str(exc)})
        return f"delete_failed: {exc.strerror}"
    return None


def _unlink_beneath(volume: Path, relpath: bytes) -> None:
    """unlink without following any symlink on the way (like open_beneath)."""
    parts = relpath.split(b"/")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    dir_fd = os.open(volume, flags)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, flags, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        os.unlink(parts[-1], dir_fd=dir_fd)
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
