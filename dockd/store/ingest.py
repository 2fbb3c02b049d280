"""Offload of one recorder volume into the evidence store: the code path shared by
``dockd ingest`` and the daemon.

For every regular file on the volume: skip it when this recorder's same file (path, size,
mtime) is already stored; else copy and hash it in one pass into a staged file. Staged
files go to the store in batches through :meth:`ContentStore.publish_batch`, which owns
durability; this module decides what the catalog records for them (items, sightings,
metadata and ``file.ingested``, one transaction per batch). Anything that is not a regular
file gets ``file.skipped``; anything that cannot be read gets ``file.failed`` (both written
with the next batch). The session ends with ``session.completed`` or
``session.interrupted`` and a checkpoint.

Memory stays flat in the number of files: the volume is walked as a stream, a chunk of
entries at a time; what is kept per file for the whole session is only what the caller
asks for (``list_files``), and the ASC MHL entries wait on disk.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dockd.clock import utc_iso
from dockd.errors import DockdError, StoreFullError, StoreUnavailableError, UsageError
from dockd.i18n import _
from dockd.identity import actor
from dockd.names import SERIAL_PATTERN
from dockd.store import ingest_catalog
from dockd.store.catalog import Catalog, catalog_path
from dockd.store.content_store import (
    TMP_DIR,
    CheckedBatch,
    Published,
    Rejected,
    StagedFile,
    ToPublish,
)
from dockd.store.copier_link import CopierGone, CopierProcess
from dockd.store.copier_messages import CopiedAnswer, FailedAnswer
from dockd.store.events import (
    CustodyEvent,
    FileFailed,
    FileIngested,
    FileSkipped,
    SessionCompleted,
    SessionInterrupted,
    SessionStarted,
)
from dockd.store.evidence import EvidenceStore
from dockd.store.fsutil import exclusive_lock, link_making_dirs
from dockd.store.guard import check_store_path
from dockd.store.ingest_catalog import FileRow, SessionEnd
from dockd.store.metadata import read_metadata
from dockd.store.mhl import MhlEntry, MhlSpool, write_spooled_mhl
from dockd.store.outcomes import FailReason, Outcome, SessionResult, StopReason
from dockd.store.progress import Progress
from dockd.store.read_ahead import ReadAhead, worth_reading_ahead
from dockd.store.session_folder import SessionFolder
from dockd.store.source import (
    ERROR_KINDS,
    BeneathOpener,
    SourceEntry,
    WalkAhead,
    check_source,
    display_path,
    is_lossless,
    walk_volume,
)
from dockd.store.staging import NotStaged, Staged, stage_entry
from dockd.store.volume_count import RestCount, VolumeTotals

log = logging.getLogger(__name__)

WALK_CHUNK = 256
"""Entries of the volume taken from the walk at a time: their known files are looked up
in one query, and the read-ahead runs over them."""
TAIL_BATCH_FILES = 128
"""The smallest batch the last stretch of a volume is cut into (see
:meth:`_Session._batch_files`)."""
COPIER_AHEAD = 2
"""Chunks the copier process is asked for beyond the one whose answers are being taken:
it keeps copying while the session waits for a batch's commit."""


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class FileOutcome:
    """What happened to one entry of the volume."""

    source_path: str
    outcome: Outcome
    reason: str = ""
    sha256: str = ""
    size: int = 0


@dataclass
class IngestReport:
    """The result of one offload session.

    ``files`` lists every entry's outcome in the volume's order when the session was asked
    to (``list_files``); otherwise only the skipped and failed ones (what a person must
    read). ``count()`` is always complete.
    """

    session_id: str
    recorder: str
    result: SessionResult = SessionResult.RUNNING
    reason: StopReason | None = None
    files: list[FileOutcome] = field(default_factory=list)
    counts: dict[Outcome, int] = field(default_factory=dict)
    bytes_stored: int = 0
    folder: str | None = None
    mhl_c4: str | None = None

    def count(self, outcome: Outcome) -> int:
        return self.counts.get(outcome, 0)

    def summary(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "recorder": self.recorder,
                "result": str(self.result), "reason": str(self.reason) if self.reason else None,
                "stored": self.count(Outcome.STORED),
                "deduplicated": self.count(Outcome.DEDUPLICATED),
                "known": self.count(Outcome.KNOWN), "skipped": self.count(Outcome.SKIPPED),
                "failed": self.count(Outcome.FAILED), "bytes_stored": self.bytes_stored,
                "folder": self.folder, "mhl_manifest_c4": self.mhl_c4}


class IngestInterrupted(Exception):
    """Stop the session now; ``reason`` goes into ``session.interrupted``."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(str(reason))
        self.reason = reason


ProgressCallback = Callable[[Progress], None]
# How long a read error waits for the device's remove event before it counts as a failure.
REMOVAL_GRACE_S = 2.0


def validate_serial(serial: str) -> str:
    """A recorder serial safe as a path component and a topic level, else UsageError."""
    if not SERIAL_PATTERN.match(serial):
        raise UsageError(_(
            "recorder serial {serial!r} is not valid: use 1-64 letters, digits, '.', '_' or"
            " '-', starting with a letter or digit").format(serial=serial))
    return serial


class Ingestor:
    """Runs offload sessions against one open store."""

    def __init__(self, store: EvidenceStore, actor_name: str | None = None) -> None:
        self.store = store
        self.actor = actor_name or actor()
        self.settings = store.config.ingest

    def ingest(self, source: Path, recorder: str, *, cancel: threading.Event | None = None,
               cancel_reason: Callable[[], StopReason] = lambda: StopReason.CANCELLED,
               on_progress: ProgressCallback | None = None,
               session_info: dict[str, Any] | None = None,
               list_files: bool = True) -> IngestReport:
        """Offload ``source`` (a mounted recorder volume) for ``recorder``. With
        ``list_files`` false the report lists only skipped and failed files, and the
        session's memory does not grow with the number of files."""
        validate_serial(recorder)
        check_source(source)
        with exclusive_lock(self.store.lock_path(f"recorder-{recorder}"),
                            f"recorder {recorder}'s offload lock"):
            session = _Session(self, source, recorder, cancel, cancel_reason, on_progress,
                               list_files)
            return session.run(session_info or {})


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class _Pending:
    """A file staged in the scratch directory, waiting for its batch's commit."""

    order: int  # its place in the volume's walk
    entry: SourceEntry
    shown: str
    staged: StagedFile
    mtime_ns: int  # as read by the copy


@dataclass
class _Survey:
    """What the first walk of the volume found (:meth:`_Session._survey`)."""

    totals: VolumeTotals = field(default_factory=VolumeTotals)
    all_known: bool = True  # every entry a file already catalogued: nothing to do
    listed: list[tuple[int, FileOutcome]] = field(default_factory=list)  # with list_files


@dataclass
class _Chunk:
    """A chunk of the walk, with what the catalog already holds of it and the files to
    copy; ``full_at``: the order of the first file the store had no room for."""

    entries: list[tuple[int, SourceEntry]]
    known: dict[tuple[bytes, int, int], str]
    to_copy: list[tuple[int, SourceEntry]]
    full_at: int | None = None


CopyOne = Callable[[int, SourceEntry], Staged | NotStaged]


@dataclass
class _Batch:
    """What the next commit records: staged files, and the skipped and failed files met
    since the last batch (their custody records go in the same transaction)."""

    files: list[_Pending] = field(default_factory=list)
    events: list[CustodyEvent] = field(default_factory=list)
    bytes: int = 0

    def __len__(self) -> int:
        return len(self.files) + len(self.events)


class _Session:
    """One offload session; lives for one ``Ingestor.ingest`` call.

    Three threads: the caller's walks the volume and copies (stages) files; while it copies
    the next batch, the checker syncs and reads back one batch and the committer links and
    commits the one before. They share only the report and the progress (``_lock``, held
    for a few statements); the caller and the committer each have a catalog connection.
    """

    def __init__(self, ingestor: Ingestor, source: Path, recorder: str,
                 cancel: threading.Event | None, cancel_reason: Callable[[], StopReason],
                 on_progress: ProgressCallback | None, list_files: bool) -> None:
        self.ing = ingestor
        self.store = ingestor.store
        self.source = source
        self.recorder = recorder
        self.cancel = cancel
        self.cancel_reason = cancel_reason
        self.on_progress = on_progress
        self.list_files = list_files
        now = self.store.clock.now()
        self.started = now
        self.id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        self.report = IngestReport(self.id, recorder)
        self.folder = SessionFolder(self.store.root, recorder, now.date(), self.id)
        self.batch = _Batch()
        self._outcomes: list[tuple[int, FileOutcome]] = []
        self._mhl: MhlSpool | None = None  # made at the first link when ASC MHL is on
        self._mhl_lost = False  # an entry could not be spooled: no ASC MHL for the session
        self._linked = 0  # files linked into the session folder
        self._waited_for_removal = False
        self._opener = BeneathOpener(source)
        self._room_unclaimed = 0
        self._copier: CopierProcess | None = None
        self._copier_started: CopierProcess | None = None  # its directory goes at the close
        self._copier_tried = False  # a copier is started once per session at most
        # What the survey met (sizes the last batches only; None until it is counted).
        self._entries_total: int | None = None
        self._next_order = 0  # the walk's order of the entry after the one being offloaded
        self._rest_count: RestCount | None = None
        # Files a volume must have for a copier process: its start costs 0.2 s of CPU.
        self._copier_from = max(ingestor.settings.copier_min_files, 1)
        self._room_asked = 0  # bytes of files the copier was asked for, not yet answered
        self.progress = Progress()
        self._rate_start = self.store.clock.monotonic()
        self._lock = threading.RLock()
        self._checker: ThreadPoolExecutor | None = None
        self._committer: ThreadPoolExecutor | None = None
        self._committer_catalog: Catalog | None = None
        self._in_flight: deque[Future[None]] = deque()  # batches handed over, oldest first
        self._publish_failed = False  # a batch failed: the committer publishes no later one

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
                    self._stopped(stop.reason)
                except StoreFullError:
                    # Full while writing the catalog or a session-folder link: same stop as
                    # a full disk during a copy; the reserve leaves room to record it.
                    self._stopped(StopReason.STORE_FULL)
                except StoreUnavailableError:
                    self._stopped(StopReason.STORE_UNAVAILABLE)
                    self._finish_on_a_failed_store()
                    raise
                self._finish()
            finally:
                self._close()
        return self.report

    def _stopped(self, reason: StopReason) -> None:
        self.report.result, self.report.reason = SessionResult.INTERRUPTED, reason

    def _close(self) -> None:
        if self._rest_count is not None:
            self._rest_count.close()
        for worker in (self._checker, self._committer):
            if worker is not None:
                worker.shutdown(wait=True)  # nothing runs on after we return
        if self._copier_started is not None:  # every staged file is published or discarded
            self._copier_started.remove_leftovers()
        if self._committer_catalog is not None:
            self._committer_catalog.close()
        if self._mhl is not None:
            self._mhl.close()
        self._opener.close()
        try:
            self.store.lock_path(f"session-{self.id}").unlink(missing_ok=True)
        except OSError as exc:  # a failed store; the next start closes the session
            log.warning("session lock not removed", extra={"session": self.id,
                                                           "error": exc.strerror})

    def _finish_on_a_failed_store(self) -> None:
        """Record the session's end if the store still takes it. On a disk that failed it
        will not: the session then stays open in the catalog, and the next opening of the
        store closes it as ``crash_recovery`` (the recorder still holds every file that was
        not committed)."""
        try:
            self._finish()
        except (DockdError, OSError, ingest_catalog.DatabaseError) as exc:
            log.error("the end of the session could not be recorded; the next start will close"
                      " it", extra={"session": self.id, "error": str(exc)})

    # -- session start and end ----------------------------------------------------------

    def _start(self, session_info: dict[str, Any]) -> None:
        with ingest_catalog.transaction(self.store.catalog) as tx:
            ingest_catalog.start_session(tx, self.id, self.recorder, utc_iso(self.started))
            self.store.custody.record(tx, SessionStarted(self.id, self.recorder, str(self.source),
                                                         session_info), self.ing.actor)

    def _finish(self) -> None:
        report = self.report
        # Batches commit after skips and failures are noted: list in the volume's order.
        self._outcomes.sort(key=lambda pair: pair[0])
        report.files = [outcome for _order, outcome in self._outcomes]
        if report.result is SessionResult.RUNNING:
            report.result = SessionResult.INCOMPLETE if report.count(Outcome.FAILED) \
                else SessionResult.COMPLETED
        if self._mhl is not None and self._mhl.count and not self._mhl_lost:
            try:
                report.mhl_c4 = write_spooled_mhl(self.folder.path, self._mhl,
                                                  self.store.clock.now())
            except OSError as exc:
                log.error("ASC MHL not written", extra={"session": self.id, "error": str(exc)})
        if self._linked:
            report.folder = self.folder.relpath
        ended = SessionInterrupted if report.result is SessionResult.INTERRUPTED \
            else SessionCompleted
        summary = report.summary()
        end = SessionEnd(utc_iso(self.store.clock.now()), report.result,
                         report.reason, report.count(Outcome.STORED)
                         + report.count(Outcome.DEDUPLICATED), report.bytes_stored,
                         report.count(Outcome.FAILED), report.count(Outcome.SKIPPED),
                         report.folder, report.mhl_c4)
        with ingest_catalog.transaction(self.store.catalog) as tx:
            ingest_catalog.finish_session(tx, self.id, end)
            self.store.custody.record(tx, ended(self.recorder, summary), self.ing.actor,
                                      checkpoint=True)
        log.info("offload session ended", extra={k: v for k, v in summary.items() if v is not None})

    # -- the walk ---------------------------------------------------------------------------

    def _offload_all(self) -> None:
        try:
            self._offload_volume()
            if len(self.batch):
                self._flush()  # to the checker now: the copier's ending need not delay it
        except BaseException:
            self._stop_copier(kill=True)  # before the files it copied are committed
            raise
        self._stop_copier(kill=False)

    def _offload_volume(self) -> None:
        survey = self._survey()
        if self._rest_count is None:  # else its thread hands the totals over
            self._counted(survey.totals)
        if survey.all_known:
            # A re-dock of an unchanged volume: the first walk met nothing but files this
            # recorder gave before, with the same path, size and mtime, whose items the
            # catalog holds; a second walk would find nothing to do.
            with self._lock:
                self.report.counts[Outcome.KNOWN] = survey.totals.files
                self._outcomes += survey.listed
            self._advance(survey.totals.files, survey.totals.bytes)
            return
        walk = walk_volume(self.source)
        try:
            order = itertools.count()
            chunks = ([(next(order), entry) for entry in chunk]
                      for chunk in iter(lambda: list(itertools.islice(walk, WALK_CHUNK)), []))
            if self._copier is not None:
                self._offload_through_copier(chunks)
            else:
                for chunk in chunks:
                    self._offload_chunk(self._prepare(chunk))
        finally:
            walk.close()  # its open directories

    def _survey(self) -> _Survey:
        """The first walk, which keeps nothing per file (unless asked to list them): the
        totals the progress is measured against, and whether every entry is a known file.
        It also brings the volume's metadata into the cache for the walk that copies.
        Known files are looked up only while all entries so far were known (a new volume
        pays one query). Once a copier is started (there are files to copy, enough of
        them), the rest is counted on a thread (:class:`RestCount`) while the copy goes on.
        """
        survey = _Survey()
        # Walked on a thread of its own: on a cold cache the walk's reads of the volume and
        # the lookups' reads of the catalog (another disk) overlap.
        walk = WalkAhead(self.source, WALK_CHUNK)
        try:
            chunks = iter(walk)
            order = itertools.count()
            for chunk in chunks:
                self._check_cancel()
                files = survey.totals.add(chunk)
                if survey.all_known:
                    survey.all_known = len(files) == len(chunk) and self._all_known(
                        files, survey.listed, order)
                    if not survey.all_known:
                        survey.listed = []
                if not (survey.all_known or self._copier_tried) \
                        and survey.totals.files >= self._copier_from:
                    self._start_copier()  # it takes 0.2 s: started while the rest is counted
                if self._copier_tried:  # so there are files to copy: start copying them
                    self._rest_count = RestCount(walk, chunks, survey.totals, self._counted)
                    break
        finally:
            if self._rest_count is None:
                walk.close()
        return survey

    def _counted(self, totals: VolumeTotals) -> None:
        """The volume's totals are in (from the survey, or from its :class:`RestCount`'s
        thread): the progress is measured against them from now on."""
        with self._lock:
            self.progress = replace(self.progress, files_total=totals.files,
                                    bytes_total=totals.bytes)
            self._entries_total = totals.entries
            self._emit_progress()

    def _all_known(self, files: list[SourceEntry], listed: list[tuple[int, FileOutcome]],
                   order: Iterator[int]) -> bool:
        """Whether every one of ``files`` is known (paths are unique in a walk); with
        ``list_files``, their outcomes are added to ``listed``."""
        keys = [(e.relpath, e.size, e.mtime_ns) for e in files]
        if not self.list_files:
            return ingest_catalog.count_known(self.store.catalog, self.recorder, keys) \
                == len(keys)
        known = ingest_catalog.known_files(self.store.catalog, self.recorder, keys)
        if len(known) < len(keys):
            return False
        listed += [(next(order), FileOutcome(display_path(e.relpath), Outcome.KNOWN,
                                             sha256=known[key], size=e.size))
                   for e, key in zip(files, keys, strict=True)]
        return True

    def _prepare(self, entries: list[tuple[int, SourceEntry]]) -> _Chunk:
        """A chunk of the walk and what the catalog holds of it: one query for what this
        recorder already gave us of the chunk, not one per file. The catalog is trusted: an
        item it holds (not pruned) has its object, or verify reports it missing."""
        files = [entry for _order, entry in entries if entry.is_file]
        known = ingest_catalog.known_files(
            self.store.catalog, self.recorder, [(e.relpath, e.size, e.mtime_ns) for e in files])
        return _Chunk(entries, known, [(order, e) for order, e in entries if e.is_file and (
            e.relpath, e.size, e.mtime_ns) not in known])

    def _offload_chunk(self, chunk: _Chunk) -> None:
        """Copy a chunk's files in this process, the next ones opened ahead."""
        ahead = ReadAhead(self._opener,
                          [e for _order, e in chunk.to_copy if worth_reading_ahead(e)])
        try:
            self._process(chunk, lambda _order, entry: self._copy(entry, ahead))
        finally:
            ahead.close()

    def _start_copier(self) -> None:
        """Start the copier process (:mod:`dockd.store.copier`); if it cannot start, this
        process copies."""
        self._copier_tried = True
        try:
            settings = self.ing.settings
            self._copier = CopierProcess(
                self.store.content, self.source, settings.source_change_retries,
                settings.store_reserve_bytes,
                logging.getLevelName(logging.getLogger().getEffectiveLevel()),
                self._on_bytes, self._check_cancel)
        except OSError as exc:
            log.error("the copier process did not start; copying in this process",
                      extra={"session": self.id, "error": str(exc)})
            return
        self._copier_started = self._copier
        log.info("copier process started", extra={"session": self.id, "pid": self._copier.pid})

    def _offload_through_copier(self, chunks: Iterator[list[tuple[int, SourceEntry]]]) -> None:
        """Have the copier process copy the files, a few chunks ahead of the one whose
        answers are taken. If it dies, this process copies what is left."""
        asked: deque[_Chunk] = deque()
        for entries in chunks:
            chunk = self._prepare(entries)
            if self._copier is not None:  # else it failed: copied here, in order
                self._ask_copier(chunk)
            asked.append(chunk)
            if chunk.full_at is not None:
                break  # nothing after it is asked for
            if len(asked) > COPIER_AHEAD:
                self._process(asked.popleft(), self._copied)
        while asked:
            self._process(asked.popleft(), self._copied)

    def _ask_copier(self, chunk: _Chunk) -> None:
        """Ask the copier for the chunk's files that the store has room for."""
        assert self._copier is not None
        room = chunk.to_copy
        for i, (order, entry) in enumerate(chunk.to_copy):
            try:
                self._check_room(entry.size)
            except IngestInterrupted:
                chunk.full_at, room = order, chunk.to_copy[:i]
                break
            self._room_asked += entry.size  # before the next file's check looks again
        self._copier.ask(room)

    def _copied(self, order: int, entry: SourceEntry) -> Staged | NotStaged:
        """The copier's answer for a file (or this process's own copy, once it is gone)."""
        copier = self._copier
        if copier is None:
            return self._copy(entry, None)
        self._room_asked -= entry.size
        try:
            answer = copier.answer(order)
        except CopierGone as exc:
            log.error("the copier process failed; copying the rest in this process",
                      extra={"session": self.id, "error": str(exc)})
            self._stop_copier(kill=True)
            self._room_asked = 0
            return self._copy(entry, None)
        if isinstance(answer, CopiedAnswer):
            return Staged(copier.staged_file(answer), answer.mtime_ns)
        if isinstance(answer, FailedAnswer):
            return NotStaged(answer.reason, answer.detail)
        if answer.problem == "full":
            raise IngestInterrupted(StopReason.STORE_FULL)
        raise StoreUnavailableError(answer.detail)

    def _stop_copier(self, kill: bool) -> None:
        """Stop the copier process; its leftover temp files go at the session's close."""
        if self._copier is None:
            return
        copier, self._copier = self._copier, None
        status = copier.close(kill)
        if kill:
            copier.remove_untaken()
        elif status:
            log.warning("the copier process ended badly", extra={"session": self.id,
                                                                 "status": status})

    def _process(self, chunk: _Chunk, copy: CopyOne) -> None:
        """The chunk's entries in the walk's order: known files counted, the others
        copied through ``copy``, skipped or failed."""
        known = chunk.known
        # Known files are counted into the progress together (a re-dock of an unchanged
        # volume is nothing but known files: one progress report per run of them).
        known_files = known_bytes = 0
        for order, entry in chunk.entries:
            self._check_cancel()
            self._next_order = order + 1
            if self._in_flight and self._in_flight[0].done():
                self._wait_committed(len(self._in_flight) - 1)  # a failed batch stops now
            sha = known.get((entry.relpath, entry.size, entry.mtime_ns)) \
                if entry.is_file else None
            if sha is not None:
                if self.list_files:
                    self._note(order, FileOutcome(display_path(entry.relpath),
                                                  Outcome.KNOWN, sha256=sha, size=entry.size))
                else:
                    self._count(Outcome.KNOWN)
                known_files, known_bytes = known_files + 1, known_bytes + entry.size
                continue
            if known_files:
                self._advance(known_files, known_bytes)
                known_files = known_bytes = 0
            if order == chunk.full_at:
                raise IngestInterrupted(StopReason.STORE_FULL)
            if entry.is_file:
                self._offload_file(order, entry, copy(order, entry))
            elif entry.kind in ERROR_KINDS:
                self._failed(order, entry, FailReason.UNREADABLE, entry.detail)
            else:
                self._skipped(order, entry)
        if known_files:
            self._advance(known_files, known_bytes)

    def _offload_file(self, order: int, entry: SourceEntry, copied: Staged | NotStaged) -> None:
        if isinstance(copied, NotStaged):
            if copied.may_be_a_pull_out:
                self._check_source_present()
            self._failed(order, entry, copied.reason, copied.detail)
            return
        self.batch.files.append(_Pending(order, entry, display_path(entry.relpath),
                                         copied.staged, copied.mtime_ns))
        self.batch.bytes += copied.staged.size
        self._flush_if_full()

    def _flush_if_full(self) -> None:
        if (len(self.batch) >= self._batch_files()
                or self.batch.bytes >= self.ing.settings.commit_batch_bytes):
            self._flush()

    def _batch_files(self) -> int:
        """``commit_batch_files``, and over the volume's last stretch half of what is left
        (not below :data:`TAIL_BATCH_FILES`): the batch in hand when the last file is copied
        is committed while the copy's core has nothing left to do, and the committer is
        then still on the one before. Halving the last batches left 0.1 s of that instead of
        0.3 s at 10,000 × 64 KiB (two more batches). The survey's count of entries only
        sizes the batches: a volume that changed since is still offloaded whole, and
        batches are full until the count is in."""
        full = self.ing.settings.commit_batch_files
        total = self._entries_total  # set once, by the survey or its RestCount's thread
        if total is None:
            return full
        left = total - self._next_order
        return min(full, max(TAIL_BATCH_FILES, (left + len(self.batch)) // 2))

    # -- batches ------------------------------------------------------------------------------

    def _flush(self, last: bool = False) -> None:
        """Hand the batch over: the checker thread makes it durable and reads it back
        while the committer links and commits the batch before it (at most two in flight:
        the copy waits for the one before that); with ``last``, also wait for this one."""
        batch, self.batch = self.batch, _Batch()
        self._room_unclaimed = 0  # look at the free space again for the next batch
        try:
            self._wait_committed(1 if len(batch) else 0)
        except BaseException:
            self._discard(batch)  # the session stops: the earlier batch's error is reported
            raise
        if not len(batch):
            return
        if self._committer is None or self._checker is None:
            self._checker = ThreadPoolExecutor(1, thread_name_prefix=f"check-{self.id[-8:]}")
            self._committer = ThreadPoolExecutor(1, thread_name_prefix=f"commit-{self.id[-8:]}")
        checked = self._checker.submit(self._check, batch) if batch.files else None
        self._in_flight.append(self._committer.submit(self._make_durable, batch, checked))
        if last:
            self._wait_committed(0)

    def _wait_committed(self, keep: int) -> None:
        """Wait until at most ``keep`` batches are in flight; a failed batch's error (store
        full…) is raised here."""
        while len(self._in_flight) > keep:
            self._in_flight.popleft().result()

    def _discard(self, batch: _Batch) -> None:
        for p in batch.files:
            self.store.content.discard(p.staged)

    def _check(self, batch: _Batch) -> CheckedBatch:
        """On the checker thread: the batch synced and read back (nothing in the store
        changes yet)."""
        return self.store.content.check_batch([ToPublish(p.staged, p.entry.relpath)
                                               for p in batch.files])

    def _make_durable(self, batch: _Batch, checked: Future[CheckedBatch] | None) -> None:
        """On the committer thread, in the order batches were handed over: the store
        publishes the checked batch; we commit it. After a batch failed, the later ones are
        only discarded (the session stops; their files stay on the recorder)."""
        if self._publish_failed:
            if checked is not None:
                wait([checked])  # the checker is done with its temp files
            self._discard(batch)
            return
        try:
            if checked is None:  # only custody records of skipped or failed files
                self._commit(batch, [], [])
                return
            self.store.content.publish_checked(
                checked.result(), self.folder,
                lambda published, rejected: self._commit(batch, published, rejected))
        except BaseException:
            self._publish_failed = True
            raise

    def _commit(self, batch: _Batch, published: list[Published], rejected: list[Rejected]) -> None:
        """One transaction for the batch: items, sightings, metadata, custody records."""
        catalog = self._own_catalog()
        now = utc_iso(self.store.clock.now())
        catalogued = ingest_catalog.catalogued(catalog, [p.obj.sha256 for p in published])
        seen: set[str] = set()
        rows: list[FileRow] = []
        fresh: list[bool] = []  # stored (new to the catalog, or restored), else deduplicated
        events = list(batch.events)
        for item in published:
            pending, obj = batch.files[item.index], item.obj
            # New to the catalog, not to the disk: after a crash between linking an object and
            # committing its item, the object exists but the item does not, and it is new.
            new_item = obj.sha256 not in seen and obj.sha256 not in catalogued
            # Pruned earlier, docked again (the recorder still had it): the item lives again.
            restored = obj.sha256 not in seen and catalogued.get(obj.sha256) is not None
            seen.add(obj.sha256)
            metadata = read_metadata(f"{self.store.root}/{obj.relpath}", pending.shown,
                                     pending.staged.head) \
                if new_item and self.ing.settings.metadata else None
            rows.append(FileRow(obj.sha256, obj.size, obj.digests, obj.relpath, pending.shown,
                                pending.entry.relpath, pending.mtime_ns,
                                item.session_path, metadata, restored))
            fresh.append(new_item or restored)
            events.append(self._ingested_event(pending, item, new_item or restored, restored))
        for bad in rejected:
            # The store's disk gave back other bytes than were written: nothing is linked;
            # the file is reported, the session goes on.
            shown = batch.files[bad.index].shown
            events.append(self._failed_event(shown, FailReason.READBACK_MISMATCH, str(bad.error)))
        with ingest_catalog.transaction(catalog) as tx:
            ingest_catalog.record_files(tx, self.id, self.recorder, now, rows)
            self.store.custody.record_many(tx, events, self.ing.actor)
        for row in rows:
            if row.restored:
                self._relink_earlier_sightings(catalog, row.sha256)
        self._account(batch, published, rows, fresh, rejected)

    def _own_catalog(self) -> Catalog:
        """The committer's own connection: the copying thread's lookups never wait for a
        batch's transaction (SQLite's WAL lets them read while it writes)."""
        if self._committer_catalog is None:
            self._committer_catalog = Catalog(catalog_path(self.store.root))
        return self._committer_catalog

    def _ingested_event(self, p: _Pending, item: Published, new_item: bool,
                        restored: bool) -> CustodyEvent:
        obj = item.obj
        return FileIngested(
            self.id, obj.sha256, obj.size, self.recorder, p.shown, p.mtime_ns, new_item,
            obj.relpath, restored_after_prune=restored, sm3=obj.digests.get("sm3"),
            source_path_b64=None if is_lossless(p.entry.relpath)
            else base64.b64encode(p.entry.relpath).decode())

    def _relink_earlier_sightings(self, catalog: Catalog, sha256: str) -> None:
        """Prune removed the item's links from earlier session folders; put them back."""
        obj = self.store.content.object_path(sha256)
        for folder, session_path in ingest_catalog.earlier_session_links(catalog, sha256):
            check_store_path(self.store.root, f"{folder}/{session_path}")  # no planted link
            link_making_dirs(obj, self.store.root / folder / session_path)  # kept if there

    def _spool_mhl(self, entry: MhlEntry) -> None:
        try:
            if self._mhl is None:
                self._mhl = MhlSpool(self.store.root / TMP_DIR, self.ing.settings.mhl_hashes)
            self._mhl.append(entry)
        except OSError as exc:
            # The batch is committed and the custody log holds every file's digests; only
            # the ASC MHL, which must list every file, is lost (a store filling up). The
            # session goes on: the next copy's room check stops it if the store is full.
            self._mhl_lost = True
            log.error("ASC MHL entry not spooled: this session gets no ASC MHL",
                      extra={"session": self.id, "error": exc.strerror or str(exc)})

    def _account(self, batch: _Batch, published: list[Published], rows: list[FileRow],
                 fresh: list[bool], rejected: list[Rejected]) -> None:
        """The committed batch in the report, the progress and the ASC MHL spool."""
        hashed_at = self.store.clock.now()
        mhl_hashes = self.ing.settings.mhl_hashes
        # The spool is the committer's alone (the session's end reads it once the committer
        # is done): not under the lock the copying thread takes for its progress.
        for item, row in zip(published, rows, strict=True):
            if item.session_path is not None:
                self._linked += 1
                if self.ing.settings.mhl and not self._mhl_lost:
                    self._spool_mhl(MhlEntry(
                        item.session_path, row.size,
                        dt.datetime.fromtimestamp(row.mtime_ns / 1e9, dt.UTC),
                        {k: row.digests[k] for k in mhl_hashes if k in row.digests}, hashed_at))
        with self._lock:  # the report is shared with the copying thread
            for item, row, new in zip(published, rows, fresh, strict=True):
                pending = batch.files[item.index]
                self._note(pending.order, FileOutcome(
                    pending.shown, Outcome.STORED if new else Outcome.DEDUPLICATED,
                    sha256=row.sha256, size=row.size))
                self.report.bytes_stored += row.size if new else 0
            for bad in rejected:
                pending = batch.files[bad.index]
                self._note(pending.order, FileOutcome(
                    pending.shown, Outcome.FAILED,
                    f"{FailReason.READBACK_MISMATCH}: {bad.error}"))
            self._advance(len(published) + len(rejected), 0)

    # -- copying ------------------------------------------------------------------------------

    def _copy(self, entry: SourceEntry, ahead: ReadAhead | None) -> Staged | NotStaged:
        """Copy a file in this process (:func:`stage_entry`), if the store has room."""
        self._check_room(entry.size)
        try:
            return stage_entry(self.store.content, self._opener, entry,
                               ahead.take(entry) if ahead is not None else None,
                               self.ing.settings.source_change_retries, self._on_bytes)
        except StoreFullError:
            raise IngestInterrupted(StopReason.STORE_FULL) from None

    # -- outcomes, progress, cancel --------------------------------------------------------

    def _note(self, order: int, outcome: FileOutcome) -> None:
        """Count an outcome; keep it for the report when the caller asked for every file,
        or when a person must read it (skipped, failed)."""
        with self._lock:
            counts = self.report.counts
            counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
            if self.list_files or outcome.outcome in (Outcome.SKIPPED, Outcome.FAILED):
                self._outcomes.append((order, outcome))

    def _count(self, outcome: Outcome) -> None:
        with self._lock:
            self.report.counts[outcome] = self.report.counts.get(outcome, 0) + 1

    def _skipped(self, order: int, entry: SourceEntry) -> None:
        shown = display_path(entry.relpath)
        self._note(order, FileOutcome(shown, Outcome.SKIPPED, entry.kind))
        self._later(FileSkipped(self.recorder, self.id, shown, str(entry.kind)))

    def _failed(self, order: int, entry: SourceEntry, reason: FailReason, detail: str) -> None:
        shown = display_path(entry.relpath)
        self._note(order, FileOutcome(shown, Outcome.FAILED, f"{reason}: {detail}"))
        log.warning("file not stored", extra={"path": shown, "reason": str(reason),
                                              "detail": detail})
        self._later(self._failed_event(shown, reason, detail))
        self._advance(1, entry.size)

    def _failed_event(self, shown: str, reason: FailReason, detail: str) -> CustodyEvent:
        return FileFailed(self.recorder, self.id, shown, str(reason), detail)

    def _later(self, event: CustodyEvent) -> None:
        """A custody record for the next batch's transaction (no transaction of its own:
        a volume of thousands of symlinks would otherwise pay one commit each)."""
        self.batch.events.append(event)
        self._flush_if_full()

    def _check_room(self, size: int) -> None:
        # Keep a reserve so the custody records that close the session still fit. The file
        # system is asked again only when the room seen at the last look (since the last
        # batch) could be used up: a statvfs per small file costs more than its copy.
        # A full disk met anyway (other bays writing) is caught as ENOSPC.
        if size <= self._room_unclaimed:
            self._room_unclaimed -= size
            return
        st = os.statvfs(self.store.root)
        # What the copier was asked for may not be on the disk yet: counted as if it were.
        room = st.f_bavail * st.f_frsize - self.ing.settings.store_reserve_bytes \
            - self._room_asked
        if room < size:
            raise IngestInterrupted(StopReason.STORE_FULL)
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
            raise IngestInterrupted(StopReason.SOURCE_REMOVED) from None
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

