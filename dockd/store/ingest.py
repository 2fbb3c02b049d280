"""Offload of one recorder volume into the evidence store: the code path shared by
``dockd ingest`` and the daemon.

For every regular file on the volume: skip it when this recorder's same file (path, size,
mtime) is already stored; else copy and hash it in one pass, link it into the session
folder, and commit item + sighting + ``file.ingested`` in one transaction. Anything that is
not a regular file gets ``file.skipped``; anything that cannot be read gets ``file.failed``.
The session ends with ``session.completed`` or ``session.interrupted`` and a checkpoint.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockd.clock import utc_iso
from dockd.dock.states import Progress
from dockd.errors import (
    DockdError,
    IntegrityError,
    StoreFullError,
    StoreUnavailableError,
    UsageError,
)
from dockd.names import SERIAL_PATTERN
from dockd.store.content_store import (
    SourceChangedError,
    SourceReadError,
    StagedFile,
    StoredObject,
)
from dockd.store.events import (
    FileFailed,
    FileIngested,
    FileSkipped,
    SessionCompleted,
    SessionInterrupted,
    SessionStarted,
)
from dockd.store.evidence import EvidenceStore, actor
from dockd.store.fsutil import exclusive_lock, link_making_dirs
from dockd.store.metadata import read_metadata
from dockd.store.mhl import MhlEntry, write_session_mhl
from dockd.store.read_ahead import ReadAhead, worth_reading_ahead
from dockd.store.session_folder import SessionFolder
from dockd.store.source import (
    ERROR_KINDS,
    SourceEntry,
    check_source,
    display_path,
    is_lossless,
    open_beneath,
    walk_volume,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class FileOutcome:
    """What happened to one entry of the volume."""

    source_path: str
    outcome: str  # stored | deduplicated | known | skipped | failed
    reason: str = ""
    sha256: str = ""
    size: int = 0


@dataclass
class IngestReport:
    """The result of one offload session."""

    session_id: str
    recorder: str
    result: str = "running"  # completed | incomplete | interrupted
    reason: str = ""
    files: list[FileOutcome] = field(default_factory=list)
    bytes_stored: int = 0
    folder: str | None = None
    mhl_c4: str | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for f in self.files if f.outcome == outcome)

    def summary(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "recorder": self.recorder, "result": self.result,
                "reason": self.reason or None, "stored": self.count("stored"),
                "deduplicated": self.count("deduplicated"), "known": self.count("known"),
                "skipped": self.count("skipped"), "failed": self.count("failed"),
                "bytes_stored": self.bytes_stored, "folder": self.folder,
                "mhl_manifest_c4": self.mhl_c4}


class IngestInterrupted(Exception):
    """Stop the session now; ``reason`` goes into ``session.interrupted``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


ProgressCallback = Callable[[Progress], None]
# How long a read error waits for the device's remove event before it counts as a failure.
REMOVAL_GRACE_S = 2.0


def validate_serial(serial: str) -> str:
    """A recorder serial safe as a path component and a topic level, else UsageError."""
    if not SERIAL_PATTERN.match(serial):
        raise UsageError(
            f"recorder serial {serial!r} is not valid: use 1-64 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return serial


class Ingestor:
    """Runs offload sessions against one open store."""

    def __init__(self, store: EvidenceStore, actor_name: str | None = None) -> None:
        self.store = store
        self.actor = actor_name or actor()
        self.settings = store.config.ingest

    def ingest(self, source: Path, recorder: str, *, cancel: threading.Event | None = None,
               cancel_reason: Callable[[], str] = lambda: "cancelled",
               on_progress: ProgressCallback | None = None,
               session_info: dict[str, Any] | None = None) -> IngestReport:
        """Offload ``source`` (a mounted recorder volume) for ``recorder``."""
        validate_serial(recorder)
        check_source(source)
        with exclusive_lock(self.store.lock_path(f"recorder-{recorder}"),
                            f"recorder {recorder}'s offload lock"):
            session = _Session(self, source, recorder, cancel, cancel_reason, on_progress)
            return session.run(session_info or {})


class _Session:
    """One offload session; lives for one ``Ingestor.ingest`` call."""

    def __init__(self, ingestor: Ingestor, source: Path, recorder: str,
                 cancel: threading.Event | None, cancel_reason: Callable[[], str],
                 on_progress: ProgressCallback | None) -> None:
        self.ing = ingestor
        self.store = ingestor.store
        self.source = source
        self.recorder = recorder
        self.cancel = cancel
        self.cancel_reason = cancel_reason
        self.on_progress = on_progress
        now = self.store.clock.now()
        self.started = now
        self.id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        self.report = IngestReport(self.id, recorder)
        self.folder = SessionFolder(self.store.root, recorder, now.date(), self.id)
        self.mhl_entries: list[MhlEntry] = []
        self.batch: list[_Pending] = []
        self._order: dict[str, int] = {}
        self._waited_for_removal = False
        self._known: dict[tuple[bytes, int, int], str] = {}
        self._ahead: ReadAhead | None = None
        self._room_unclaimed = 0
        self.batch_bytes = 0
        self.progress = Progress()
        self._rate_start = self.store.clock.monotonic()
        # One batch is made durable on the committer thread while the next is copied. The
        # catalog connection, the report and the progress are shared with it: this lock.
        self._lock = threading.RLock()
        self._committer: ThreadPoolExecutor | None = None
        self._committing: Future[None] | None = None

    def run(self, session_info: dict[str, Any]) -> IngestReport:
        with exclusive_lock(self.store.lock_path(f"session-{self.id}"), "session lock"):
            try:
                self._start(session_info)
                try:
                    try:
                        self._offload_all()
                    finally:
                        # Files copied completely before a stop are kept: commit them.
                        self._flush(last=True)
                except IngestInterrupted as stop:
                    self.report.result, self.report.reason = "interrupted", stop.reason
                except StoreFullError:
                    # Full while writing the catalog or a session-folder link: same stop as
                    # a full disk during a copy; the reserve leaves room to record it.
                    self.report.result, self.report.reason = "interrupted", "store_full"
                except StoreUnavailableError:
                    self.report.result, self.report.reason = "interrupted", "store_unavailable"
                    self._finish_on_a_failed_store()
                    raise
                self._finish()
            finally:
                if self._committer is not None:
                    self._committer.shutdown(wait=True)  # nothing runs on after we return
                try:
                    self.store.lock_path(f"session-{self.id}").unlink(missing_ok=True)
                except OSError as exc:  # a failed store; the next start closes the session
                    log.warning("session lock not removed", extra={"session": self.id,
                                                                   "error": exc.strerror})
        return self.report

    def _finish_on_a_failed_store(self) -> None:
        """Record the session's end if the store still takes it. On a disk that failed it
        will not: the session then stays open in the catalog, and the next opening of the
        store closes it as ``crash_recovery`` (the recorder still holds every file that was
        not committed)."""
        try:
            self._finish()
        except (DockdError, OSError, sqlite3.Error) as exc:
            log.error("the end of the session could not be recorded; the next start will close"
                      " it", extra={"session": self.id, "error": str(exc)})

    # -- session start and end ----------------------------------------------------------

    def _start(self, session_info: dict[str, Any]) -> None:
        with self._tx() as tx:
            tx.execute("INSERT INTO sessions (id, recorder, started_at, result) VALUES (?,?,?,?)",
                       (self.id, self.recorder, utc_iso(self.started), "running"))
            self.store.custody.record(tx, SessionStarted(self.id, self.recorder, str(self.source),
                                                         session_info), self.ing.actor)

    def _finish(self) -> None:
        report = self.report
        # Batches commit after skips and failures are reported: list outcomes in volume order.
        report.files.sort(key=lambda f: self._order.get(f.source_path, len(self._order)))
        if report.result == "running":
            report.result = "incomplete" if report.count("failed") else "completed"
        if self.mhl_entries and self.ing.settings.mhl:
            try:
                report.mhl_c4 = write_session_mhl(self.folder.path, self.mhl_entries,
                                                  self.ing.settings.mhl_hashes,
                                                  self.store.clock.now())
            except OSError as exc:
                log.error("ASC MHL not written", extra={"session": self.id, "error": str(exc)})
        if self.mhl_entries:
            report.folder = self.folder.relpath
        summary = report.summary()
        ended = SessionInterrupted if report.result == "interrupted" else SessionCompleted
        with self._tx() as tx:
            tx.execute("UPDATE sessions SET ended_at=?, result=?, reason=?, files=?, bytes=?,"
                       " failed=?, skipped=?, folder=?, mhl_c4=? WHERE id=?",
                       (utc_iso(self.store.clock.now()), report.result, report.reason or None,
                        report.count("stored") + report.count("deduplicated"),
                        report.bytes_stored, report.count("failed"), report.count("skipped"),
                        report.folder, report.mhl_c4, self.id))
            self.store.custody.record(tx, ended(self.recorder, summary), self.ing.actor,
                                      checkpoint=True)
        log.info("offload session ended", extra={k: v for k, v in summary.items() if v is not None})

    # -- files ------------------------------------------------------------------------------

    def _offload_all(self) -> None:
        entries = list(walk_volume(self.source))
        # One query for what this recorder already gave us, not one per file.
        self._known = {(bytes(r[0]), r[1], r[2]): r[3] for r in self.store.catalog.query(
            "SELECT s.source_path_raw, s.size, s.mtime_ns, s.sha256 FROM sightings s"
            " JOIN items i ON i.sha256 = s.sha256 WHERE s.recorder=? AND i.deleted_at IS NULL",
            (self.recorder,))}
        self._order = {display_path(e.relpath): i for i, e in enumerate(entries)}
        files = [e for e in entries if e.is_file]
        self.progress = Progress(files_total=len(files), bytes_total=sum(e.size for e in files))
        self._emit_progress()
        self._ahead = ReadAhead(self.source, [e for e in files if self._known_as(e) is None
                                              and worth_reading_ahead(e)])
        try:
            for entry in entries:
                self._check_cancel()
                if self._committing is not None and self._committing.done():
                    self._wait_committed()  # a batch that failed stops the session now
                if entry.is_file:
                    self._offload_file(entry)
                elif entry.kind in ERROR_KINDS:
                    self._failed(entry, "unreadable", entry.detail)
                else:
                    self._skipped(entry, entry.kind)
        finally:
            self._ahead.close()

    def _known_as(self, entry: SourceEntry) -> str | None:
        """The sha256 under which this recorder already gave this file (same path, size
        and mtime), if it did."""
        return self._known.get((entry.relpath, entry.size, entry.mtime_ns))

    def _offload_file(self, entry: SourceEntry) -> None:
        shown = display_path(entry.relpath)
        known = self._known_as(entry)
        if known is not None and self.store.content.object_path(known).exists():
            self.report.files.append(FileOutcome(shown, "known", sha256=known, size=entry.size))
            self._advance(1, entry.size)
            return
        copied = self._copy(entry)
        if copied is None:
            return
        self.batch.append(_Pending(entry, shown, *copied))
        self.batch_bytes += copied[0].size
        settings = self.ing.settings
        if (len(self.batch) >= settings.commit_batch_files
                or self.batch_bytes >= settings.commit_batch_bytes):
            self._flush()

    def _flush(self, last: bool = False) -> None:
        """Hand the staged batch to the committer thread, after the batch before it is
        done; with ``last``, also wait for this one."""
        batch, self.batch, self.batch_bytes = self.batch, [], 0
        self._room_unclaimed = 0  # look at the free space again for the next batch
        try:
            self._wait_committed()
        except BaseException:
            self._discard(batch)  # the session stops: the earlier batch's error is reported
            raise
        batch, write_error = self._until_write_error(batch)
        if batch:
            if self._committer is None:
                self._committer = ThreadPoolExecutor(1, thread_name_prefix="commit")
            self._committing = self._committer.submit(self._make_durable, batch)
        if last or write_error is not None:
            self._wait_committed()
        if write_error is not None:
            raise write_error

    def _until_write_error(self, batch: list[_Pending]) -> tuple[list[_Pending], Exception | None]:
        """The staged files before the first whose writes to the store failed (their copy
        did not wait for its last writes), and that error. The files from it on are dropped:
        as when the copy itself fails, what was complete before is committed, then the
        session stops (a full store: ``store_full``)."""
        for i, pending in enumerate(batch):
            try:
                pending.staged.wait_written()
            except Exception as exc:
                self._discard(batch[i:])
                return batch[:i], exc
        return batch, None

    def _wait_committed(self) -> None:
        """Wait for the batch being made durable; its error (store full…) is raised here."""
        committing, self._committing = self._committing, None
        if committing is not None:
            committing.result()

    def _discard(self, batch: list[_Pending]) -> None:
        for p in batch:
            self.store.content.discard(p.staged)

    def _make_durable(self, batch: list[_Pending]) -> None:
        """On the committer thread: sync, read back, link, sync, commit one batch."""
        content = self.store.content
        try:
            content.sync([p.staged for p in batch])
            verified = batch
            if content.verify_after_copy:
                errors = content.verify_staged_all([p.staged for p in batch])
                verified = [p for p, error in zip(batch, errors, strict=True)
                            if self._read_back_ok(p, error)]
            with content.publication_lock():
                content.write_intent([p.staged.digests["sha256"] for p in verified],
                                     self.folder.path)
                linked: list[_Linked] = []
                try:
                    for p in verified:
                        linked.append(self._link(p))
                    content.sync()
                    self._commit(linked)
                except BaseException:
                    self._unlink_uncommitted(linked)
                    raise
                finally:
                    content.clear_intent()
        finally:
            self._discard(batch)

    def _unlink_uncommitted(self, linked: list[_Linked]) -> None:
        """Undo the links of a batch whose commit failed: no object without its item."""
        for item in linked:
            if item.session_path is not None:
                (self.folder.path / item.session_path).unlink(missing_ok=True)
            if item.obj.created:
                self.store.content.object_path(item.obj.sha256).unlink(missing_ok=True)

    def _read_back_ok(self, p: _Pending, error: IntegrityError | None) -> bool:
        if error is not None:
            # The store's disk gave back other bytes than were written: nothing is linked;
            # the file is reported, the session goes on.
            self._failed(p.entry, "readback_mismatch", str(error))
            return False
        return True

    def _link(self, p: _Pending) -> _Linked:
        obj = self.store.content.link_staged(p.staged)
        session_path = self.folder.link(p.entry.relpath, self.store.content.object_path(obj.sha256))
        return _Linked(p, obj, session_path)

    def _commit(self, linked: list[_Linked]) -> None:
        """One transaction for the batch: items, sightings, metadata, custody records."""
        now = utc_iso(self.store.clock.now())
        catalogued = self._catalogued([item.obj.sha256 for item in linked])
        seen: set[str] = set()
        rows = []
        for item in linked:
            obj = item.obj
            # New to the catalog, not to the disk: after a crash between linking an object and
            # committing its item, the object exists but the item does not, and it is new.
            new_item = obj.sha256 not in seen and obj.sha256 not in catalogued
            # Pruned earlier, docked again (the recorder still had it): the item lives again.
            restored = obj.sha256 not in seen and catalogued.get(obj.sha256) is not None
            seen.add(obj.sha256)
            metadata = read_metadata(self.store.content.object_path(obj.sha256), item.p.shown) \
                if new_item and self.ing.settings.metadata else None
            rows.append((item, new_item, restored, metadata))
        with self._tx() as tx:
            for item, new_item, restored, metadata in rows:
                if restored:
                    tx.execute("UPDATE items SET deleted_at=NULL WHERE sha256=?", (item.obj.sha256,))
                self._record_file(tx, item, new_item or restored, metadata, now, restored)
        for item, new_item, restored, _metadata in rows:
            if restored:
                self._relink_earlier_sightings(item.obj.sha256)
            self._account(item, new_item or restored)

    def _catalogued(self, shas: list[str]) -> dict[str, str | None]:
        """Which of ``shas`` the catalog has, with their ``deleted_at`` (None if live)."""
        found: dict[str, str | None] = {}
        for start in range(0, len(shas), 500):  # well under SQLite's bound-parameter limit
            part = shas[start:start + 500]
            with self._lock:
                rows = self.store.catalog.query(
                    f"SELECT sha256, deleted_at FROM items WHERE sha256 IN"
                    f" ({','.join('?' * len(part))})", tuple(part))
            found.update({row[0]: row[1] for row in rows})
        return found

    def _relink_earlier_sightings(self, sha256: str) -> None:
        """Prune removed the item's links from earlier session folders; put them back."""
        obj = self.store.content.object_path(sha256)
        with self._lock:
            rows = self.store.catalog.query(
                "SELECT ses.folder, s.session_path FROM sightings s JOIN sessions ses"
                " ON ses.id = s.session_id WHERE s.sha256=? AND s.session_path IS NOT NULL"
                " AND ses.folder IS NOT NULL", (sha256,))
        for row in rows:
            link_making_dirs(obj, self.store.root / row[0] / row[1])  # kept if still there

    def _record_file(self, tx: Any, item: _Linked, new_item: bool, metadata: Any, now: str,
                     restored: bool = False) -> None:
        obj, entry, st = item.obj, item.p.entry, item.p.stat
        event = FileIngested(
            self.id, obj.sha256, obj.size, self.recorder, item.p.shown, st.st_mtime_ns, new_item,
            obj.relpath, restored_after_prune=restored, sm3=obj.digests.get("sm3"),
            source_path_b64=None if is_lossless(entry.relpath)
            else base64.b64encode(entry.relpath).decode())
        tx.execute("INSERT OR IGNORE INTO items (sha256, size, sm3, xxh128, c4, path,"
                   " ingested_at, first_session) VALUES (?,?,?,?,?,?,?,?)",
                   (obj.sha256, obj.size, obj.digests.get("sm3"), obj.digests.get("xxh128"),
                    obj.digests.get("c4"), obj.relpath, now, self.id))
        tx.execute("INSERT OR IGNORE INTO sightings (session_id, recorder, source_path,"
                   " source_path_raw, size, mtime_ns, sha256, seen_at, session_path)"
                   " VALUES (?,?,?,?,?,?,?,?,?)",
                   (self.id, self.recorder, item.p.shown, entry.relpath, obj.size, st.st_mtime_ns,
                    obj.sha256, now, item.session_path))
        if metadata is not None and metadata.extractor != "none":
            tx.execute("INSERT OR IGNORE INTO metadata (sha256, format, start_time, end_time,"
                       " duration_s, extractor) VALUES (?,?,?,?,?,?)",
                       (obj.sha256, metadata.format,
                        utc_iso(metadata.start_time) if metadata.start_time else None,
                        utc_iso(metadata.end_time) if metadata.end_time else None,
                        metadata.duration_s, metadata.extractor))
        self.store.custody.record(tx, event, self.ing.actor)

    def _account(self, item: _Linked, new_item: bool) -> None:
        with self._lock:  # the report is shared with the copying thread
            obj, st = item.obj, item.p.stat
            if item.session_path is not None:
                mhl_digests = {k: obj.digests[k] for k in self.ing.settings.mhl_hashes
                               if k in obj.digests}
                self.mhl_entries.append(MhlEntry(
                    item.session_path, obj.size,
                    dt.datetime.fromtimestamp(st.st_mtime_ns / 1e9, dt.UTC),
                    mhl_digests, self.store.clock.now()))
            outcome = "stored" if new_item else "deduplicated"
            self.report.files.append(FileOutcome(item.p.shown, outcome, sha256=obj.sha256,
                                                 size=obj.size))
            self.report.bytes_stored += obj.size if new_item else 0
            self._advance(1, 0)

    def _copy(self, entry: SourceEntry) -> tuple[StagedFile, os.stat_result] | None:
        """Stage a copy, reading again while the recorder is still writing the file."""
        attempts = self.ing.settings.source_change_retries + 1
        self._check_room(entry.size)
        bytes_before = self.progress.bytes_done
        opened_ahead = self._ahead.take(entry) if self._ahead is not None else None
        for _attempt in range(attempts):
            try:
                fd = opened_ahead if opened_ahead is not None else open_beneath(self.source, entry)
                opened_ahead = None
            except OSError as exc:
                self._check_source_present()
                reason = "vanished" if exc.errno == errno.ENOENT else "changed" \
                    if exc.errno in (errno.ESTALE, errno.ELOOP, errno.ENOTDIR) else "read_error"
                self._failed(entry, reason, exc.strerror or str(exc))
                return None
            try:
                st = os.fstat(fd)
                return self.store.content.stage(fd, self._on_bytes), st
            except SourceChangedError as exc:
                log.warning("file changed while read; reading again",
                            extra={"path": display_path(entry.relpath), "detail": str(exc)})
                self._advance(0, bytes_before - self.progress.bytes_done)
                continue
            except SourceReadError as exc:
                self._check_source_present()
                self._failed(entry, exc.reason, str(exc))
                return None
            except StoreFullError:
                raise IngestInterrupted("store_full") from None
            finally:
                os.close(fd)
        self._failed(entry, "source_changed",
                     f"still changing after {attempts} reads (is the recorder still writing?)")
        return None

    # -- outcomes, progress, cancel --------------------------------------------------------

    def _skipped(self, entry: SourceEntry, reason: str) -> None:
        shown = display_path(entry.relpath)
        self.report.files.append(FileOutcome(shown, "skipped", reason))
        with self._tx() as tx:
            self.store.custody.record(tx, FileSkipped(self.recorder, self.id, shown, reason),
                                      self.ing.actor)

    def _failed(self, entry: SourceEntry, reason: str, detail: str) -> None:
        shown = display_path(entry.relpath)
        self.report.files.append(FileOutcome(shown, "failed", f"{reason}: {detail}"))
        log.warning("file not stored", extra={"path": shown, "reason": reason, "detail": detail})
        with self._tx() as tx:
            self.store.custody.record(tx, FileFailed(self.recorder, self.id, shown, reason,
                                                     detail), self.ing.actor)
        self._advance(1, entry.size)

    def _check_room(self, size: int) -> None:
        # Keep a reserve so the custody records that close the session still fit. The file
        # system is asked again only when the room seen at the last look (since the last
        # batch) could be used up: a statvfs per small file costs more than its copy.
        # A full disk met anyway (other bays writing) is caught as ENOSPC.
        if size <= self._room_unclaimed:
            self._room_unclaimed -= size
            return
        st = os.statvfs(self.store.root)
        room = st.f_bavail * st.f_frsize - self.ing.settings.store_reserve_bytes
        if room < size:
            raise IngestInterrupted("store_full")
        self._room_unclaimed = room - size

    def _check_source_present(self) -> None:
        """After a read error: is the recorder gone? A pulled disk fails reads (EIO) before
        its remove event arrives, so give the event a moment (once per session) to turn the
        error into the interruption it really is."""
        try:
            os.stat(self.source)
            with os.scandir(self.source):
                pass
        except OSError:
            raise IngestInterrupted("source_removed") from None
        if self.cancel is not None and not self._waited_for_removal:
            self._waited_for_removal = True
            if self.cancel.wait(REMOVAL_GRACE_S):
                raise IngestInterrupted(self.cancel_reason())

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise IngestInterrupted(self.cancel_reason())

    def _on_bytes(self, n: int) -> None:
        self._advance(0, n)
        self._check_cancel()

    def _advance(self, files: int, nbytes: int) -> None:
        with self._lock:
            p = self.progress
            elapsed = max(self.store.clock.monotonic() - self._rate_start, 1e-6)
            done = p.bytes_done + nbytes
            self.progress = Progress(p.files_done + files, p.files_total, done, p.bytes_total,
                                     done / elapsed)
            self._emit_progress()

    def _emit_progress(self) -> None:
        # Under the lock: the caller's callback is never entered from two threads at once.
        with self._lock:
            if self.on_progress is not None:
                self.on_progress(self.progress)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock, _translate_full(self.store.catalog.transaction()) as tx:
            yield tx


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class _Pending:
    """A file staged in the scratch directory, waiting for its batch's commit."""

    entry: SourceEntry
    shown: str
    staged: StagedFile
    stat: os.stat_result


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class _Linked:
    """A staged file linked into the store (and the session folder), not yet committed."""

    p: _Pending
    obj: StoredObject
    session_path: str | None


class _translate_full:
    """Context manager: a full disk under SQLite becomes StoreFullError."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __enter__(self) -> Any:
        try:
            return self.inner.__enter__()
        except sqlite3.OperationalError as exc:
            raise _db_error(exc) from exc

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.inner.__exit__(*exc_info)
        except sqlite3.OperationalError as exc:
            raise _db_error(exc) from exc


def _db_error(exc: sqlite3.OperationalError) -> Exception:
    if "full" in str(exc):
        return StoreFullError("the evidence store is full: the catalog cannot be written")
    if "disk I/O error" in str(exc) or "readonly" in str(exc):
        return StoreUnavailableError(
            f"the evidence store's catalog cannot be written ({exc}): check the disk and "
            "the kernel log (dmesg), repair it (fsck), then dock again")
    return exc
