"""``dockd archive sync``: put the store into the central WORM bucket (rule art. 12(2)).

One run, under the store's archive lock:

1. refuse a bucket that is not WORM, or credentials it does not accept — before anything
   is written or recorded;
2. mirror legal holds onto what is already archived (ON when held, OFF when released);
3. archive items not yet archived (oldest first, uploads left half-way by a crash first):
   the item under COMPLIANCE retention, then its JSON manifest, then — in one catalog
   transaction — its ``archive_objects`` row and a ``file.archived`` custody event;
4. archive the ASC MHL files of ended sessions, with a ``session.archived`` event;
5. archive the custody log in segments, one per signed checkpoint not yet archived
   (:mod:`dockd.records.archive.custody_segments`), with one ``custody.archived`` event.

An item that cannot be archived because its bytes are not what the catalog says is
reported and the run goes on; an unreachable bucket or refused credentials stop the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockd.clock import utc_iso
from dockd.config import Config
from dockd.config.archive import ArchiveSection
from dockd.errors import ConfigError, IntegrityError
from dockd.i18n import _
from dockd.identity import actor
from dockd.records.archive.credentials import load_credentials
from dockd.records.archive.custody_segments import Segment, segment_key
from dockd.records.archive.holds import HeldItems, held_items_from_catalog
from dockd.records.archive.manifest import (
    ArchivedCopy,
    item_key,
    item_manifest,
    manifest_key,
    session_file_key,
)
from dockd.records.archive.objectstore import Lock, RemoteObject, S3Archive
from dockd.records.archive.retention import recorded_at, retain_until
from dockd.records.archive.uploader import ProgressCallback, Uploader, forget_upload_in
from dockd.store.custody import Checkpoint, record_from_row
from dockd.store.events import (
    ArchivedFile,
    ArchivedSegment,
    ArchiveLegalHold,
    CustodyArchived,
    FileArchived,
    SessionArchived,
)
from dockd.store.evidence import EvidenceStore
from dockd.store.fsutil import exclusive_lock
from dockd.store.mhl import MHL_DIR

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchivedItem:
    """An item now in the bucket, as recorded in ``archive_objects``."""

    sha256: str
    key: str
    version_id: str
    checksum_sha256: str
    retain_until: str
    legal_hold: bool


@dataclass(frozen=True)
class ArchiveFailure:
    """An item left unarchived this run, and why."""

    sha256: str
    reason: str


@dataclass(frozen=True)
class HoldChange:
    """A legal hold set or released on one archived version."""

    key: str
    version_id: str
    legal_hold: bool


@dataclass(frozen=True)
class SyncReport:
    """What one ``dockd archive sync`` did."""

    archived: tuple[ArchivedItem, ...]
    failed: tuple[ArchiveFailure, ...]
    sessions: tuple[str, ...]
    hold_changes: tuple[HoldChange, ...]
    parts_uploaded: int
    custody_segments: tuple[str, ...] = ()


def open_archive(config: Config) -> tuple[ArchiveSection, S3Archive]:
    """The ``[archive]`` section and a client for its bucket; ConfigError when the dock
    has no archive configured or its credentials file is unusable."""
    section = config.archive
    if section is None:
        where = config.source or "the config"
        raise ConfigError(_("no [archive] section in {where}: set endpoint_url, bucket and "
                            "credentials_file to archive to a WORM bucket").format(where=where))
    credentials = load_credentials(section.credentials_file)
    return section, S3Archive(section, credentials, str(section.credentials_file))


def sync_archive(store: EvidenceStore, archive: S3Archive, section: ArchiveSection, *,
                 limit: int | None = None, held_items: HeldItems = held_items_from_catalog,
                 on_progress: ProgressCallback | None = None,
                 actor_name: str | None = None) -> SyncReport:
    """One archive run (see the module docstring); at most ``limit`` items."""
    archive.check_worm()
    held = held_items(store.catalog)
    with exclusive_lock(store.lock_path("archive"), "the archive sync lock"):
        run = _Run(store, archive, section, held, on_progress, actor_name or actor())
        changes = run.mirror_holds()
        archived, failed = run.archive_items(limit)
        sessions = run.archive_sessions()
        segments = run.archive_custody()
    return SyncReport(tuple(archived), tuple(failed), tuple(sessions), tuple(changes),
                      run.uploader.parts_uploaded, tuple(segments))


class _Run:
    """The state of one sync run."""

    def __init__(self, store: EvidenceStore, archive: S3Archive, section: ArchiveSection,
                 held: frozenset[str], on_progress: ProgressCallback | None, actor_name: str):
        self.store = store
        self.catalog = store.catalog
        self.archive = archive
        self.section = section
        self.held = held
        self.actor = actor_name
        self.prefix = section.prefix(store.config.dock.id)
        self.uploader = Uploader(store.catalog, archive, store.clock, section.part_bytes,
                                 section.multipart_threshold_bytes, on_progress)

    # -- holds ----------------------------------------------------------------------------

    def mirror_holds(self) -> list[HoldChange]:
        """Set the bucket's legal hold of every archived version to match the holds."""
        held_sessions = self._held_sessions()
        changes = []
        for table, subject_col in (("archive_objects", "sha256"), ("archive_files", None)):
            cols = "sha256 AS item, NULL AS session_id" if subject_col else "item_sha256 AS item, session_id"
            for row in self.catalog.query(f"SELECT key, version_id, legal_hold, {cols} FROM {table}"
                                          " WHERE bucket=? ORDER BY key", (self.archive.bucket,)):
                want = row["item"] in self.held if row["item"] else row["session_id"] in held_sessions
                if bool(row["legal_hold"]) == want:
                    continue
                self.archive.set_legal_hold(row["key"], row["version_id"], want)
                with self.catalog.transaction() as tx:
                    tx.execute(f"UPDATE {table} SET legal_hold=? WHERE key=?", (int(want), row["key"]))
                    self.store.custody.record(tx, ArchiveLegalHold(
                        row["item"] or row["session_id"], self.archive.bucket, row["key"],
                        row["version_id"], "ON" if want else "OFF"), self.actor)
                changes.append(HoldChange(row["key"], row["version_id"], want))
        return changes

    def _held_sessions(self) -> set[str]:
        rows = self.catalog.query("SELECT DISTINCT session_id FROM sightings WHERE sha256 IN"
                                  " (SELECT value FROM json_each(?))", (json.dumps(sorted(self.held)),))
        return {str(r[0]) for r in rows}

    # -- items ----------------------------------------------------------------------------

    def archive_items(self, limit: int | None) -> tuple[list[ArchivedItem], list[ArchiveFailure]]:
        """Archive pending items, those with an upload in flight first."""
        rows = self.catalog.query(
            "SELECT i.sha256, i.size, i.path, i.ingested_at, m.start_time FROM items i"
            " LEFT JOIN metadata m ON m.sha256 = i.sha256"
            " WHERE i.deleted_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM archive_objects a WHERE a.sha256 = i.sha256)"
            " ORDER BY EXISTS (SELECT 1 FROM archive_uploads u WHERE u.sha256 = i.sha256) DESC,"
            " i.ingested_at, i.sha256 LIMIT ?", (-1 if limit is None else limit,))
        archived, failed = [], []
        for row in rows:
            try:
                archived.append(self._archive_item(row))
            except IntegrityError as exc:
                log.error("item not archived", extra={"sha256": row["sha256"], "error": str(exc)})
                failed.append(ArchiveFailure(row["sha256"], str(exc)))
        return archived, failed

    def _archive_item(self, row: Any) -> ArchivedItem:
        sha, size = str(row["sha256"]), int(row["size"])
        path = self.store.root / row["path"]
        if not path.is_file():
            raise IntegrityError(_("stored file {path} is missing; run dockd verify").format(path=path))
        now = self.store.clock.now()
        lock = Lock(retain_until(recorded_at(row["start_time"], row["ingested_at"]),
                                 self.section.retention_days, now), sha in self.held)
        key = item_key(self.prefix, sha)
        obj = self.uploader.upload(key, path, sha, size, lock, "application/octet-stream")
        until = utc_iso(obj.retain_until or lock.retain_until)
        copy = ArchivedCopy(self.archive.bucket, key, obj.version_id, obj.checksum_sha256, until)
        manifest = item_manifest(self.catalog, self.store.config.dock.id,
                                 self.store.config.dock.site, sha, copy)
        mkey = manifest_key(self.prefix, sha)
        mobj = self.uploader.upload_bytes(mkey, manifest, lock, "application/json")
        stamp = utc_iso(self.store.clock.now())
        with self.catalog.transaction() as tx:
            tx.execute("INSERT INTO archive_objects (sha256, bucket, key, version_id,"
                       " checksum_sha256, retain_until, legal_hold, archived_at)"
                       " VALUES (?,?,?,?,?,?,?,?)",
                       (sha, self.archive.bucket, key, obj.version_id, obj.checksum_sha256, until,
                        int(obj.legal_hold), stamp))
            self._record_file(tx, mobj, "item-manifest", sha, None,
                              hashlib.sha256(manifest).hexdigest(), stamp)
            forget_upload_in(tx, key)
            self.store.custody.record(tx, FileArchived(
                sha, size, self.archive.bucket, key, obj.version_id, obj.checksum_sha256,
                "COMPLIANCE", until, "ON" if obj.legal_hold else "OFF", mkey,
                mobj.version_id), self.actor)
        log.info("item archived", extra={"sha256": sha, "key": key, "version_id": obj.version_id})
        return ArchivedItem(sha, key, obj.version_id, obj.checksum_sha256, until, obj.legal_hold)

    def _record_file(self, tx: Any, obj: RemoteObject, kind: str, item: str | None,
                     session: str | None, content_sha256: str, stamp: str) -> None:
        until = utc_iso(obj.retain_until) if obj.retain_until else stamp
        tx.execute("INSERT INTO archive_files (key, bucket, kind, item_sha256, session_id,"
                   " content_sha256, version_id, checksum_sha256, retain_until, legal_hold,"
                   " archived_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   (obj.key, self.archive.bucket, kind, item, session, content_sha256,
                    obj.version_id, obj.checksum_sha256, until, int(obj.legal_hold), stamp))

    # -- sessions -------------------------------------------------------------------------

    def archive_sessions(self) -> list[str]:
        """Archive the ASC MHL folder of every ended session not yet archived."""
        rows = self.catalog.query(
            "SELECT id, recorder, started_at, folder, mhl_c4 FROM sessions"
            " WHERE folder IS NOT NULL AND mhl_c4 IS NOT NULL AND result != 'running'"
            " AND NOT EXISTS (SELECT 1 FROM archive_files f WHERE f.session_id = sessions.id)"
            " ORDER BY started_at, id")
        done = []
        for row in rows:
            files = _mhl_files(self.store.root / row["folder"] / MHL_DIR)
            if not files:
                log.warning("session has an ASC MHL in the catalog but none on disk; not archived",
                            extra={"session": row["id"], "folder": row["folder"]})
                continue
            self._archive_session(row, files)
            done.append(str(row["id"]))
        return done

    def _archive_session(self, row: Any, files: Sequence[Path]) -> None:
        now = self.store.clock.now()
        days = self.section.retention_days
        # Locked at least as long as any recording the manifest lists.
        dates = [retain_until(row["started_at"], days, now)] + [
            retain_until(recorded_at(r["start_time"], r["ingested_at"]), days, now)
            for r in self.catalog.query(
                "SELECT i.ingested_at, m.start_time FROM sightings s JOIN items i"
                " ON i.sha256 = s.sha256 LEFT JOIN metadata m ON m.sha256 = s.sha256"
                " WHERE s.session_id=?", (row["id"],))]
        held = str(row["id"]) in self._held_sessions()
        lock = Lock(max(dates), held)
        uploaded = []
        for path in files:
            data = path.read_bytes()
            key = session_file_key(self.prefix, row["folder"], path.name)
            uploaded.append((self.uploader.upload_bytes(key, data, lock, "application/xml"),
                             hashlib.sha256(data).hexdigest()))
        stamp = utc_iso(self.store.clock.now())
        with self.catalog.transaction() as tx:
            for obj, content_sha in uploaded:
                self._record_file(tx, obj, "session-mhl", None, row["id"], content_sha, stamp)
            self.store.custody.record(tx, SessionArchived(
                row["id"], row["recorder"], row["mhl_c4"], self.archive.bucket,
                utc_iso(lock.retain_until), "ON" if held else "OFF",
                tuple(ArchivedFile(o.key, o.version_id, c, o.checksum_sha256)
                      for o, c in uploaded)), self.actor)


    # -- the custody log --------------------------------------------------------------------

    def archive_custody(self) -> list[str]:
        """Archive one segment per signed checkpoint not yet archived; their keys."""
        done_to = self.catalog.query_one("SELECT MAX(last_seq) FROM archive_custody")
        after = int(done_to[0] or 0) if done_to else 0
        keys: list[ArchivedSegment] = []
        for row in self.catalog.query("SELECT * FROM checkpoints WHERE seq > ? ORDER BY seq",
                                      (after,)):
            cp = Checkpoint(row["dock"], row["seq"], row["hash"], row["time"],
                            row["public_key"], row["signature"])
            records = [record_from_row(r).to_json_dict() for r in self.catalog.query(
                "SELECT * FROM custody WHERE seq > ? AND seq <= ? ORDER BY seq",
                (after, cp.seq))]
            if [r["seq"] for r in records] != list(range(after + 1, cp.seq + 1)):
                # A truncated log cannot make a segment its checkpoint vouches for; verify
                # reports it, and nothing after it is archived until it is examined.
                log.error("custody log incomplete; its segment is not archived",
                          extra={"from_seq": after + 1, "to_seq": cp.seq})
                break
            keys.append(self._archive_segment(Segment(cp.dock, after + 1, cp.seq, records, cp)))
            after = cp.seq
        if keys:
            self.store.custody.append(CustodyArchived(self.archive.bucket, tuple(keys)),
                                      self.actor)
        return [k.key for k in keys]

    def _archive_segment(self, segment: Segment) -> ArchivedSegment:
        now = self.store.clock.now()
        lock = Lock(retain_until(segment.checkpoint.time, self.section.retention_days, now),
                    False)
        data = segment.to_bytes()
        key = segment_key(self.prefix, segment.first_seq, segment.last_seq)
        obj = self.uploader.upload_bytes(key, data, lock, "application/json")
        until = utc_iso(obj.retain_until or lock.retain_until)
        content = hashlib.sha256(data).hexdigest()
        with self.catalog.transaction() as tx:
            tx.execute("INSERT INTO archive_custody (last_seq, first_seq, key, bucket, version_id,"
                       " checksum_sha256, content_sha256, retain_until, archived_at)"
                       " VALUES (?,?,?,?,?,?,?,?,?)",
                       (segment.last_seq, segment.first_seq, key, self.archive.bucket,
                        obj.version_id, obj.checksum_sha256, content, until,
                        utc_iso(self.store.clock.now())))
        log.info("custody segment archived", extra={"key": key, "version_id": obj.version_id})
        return ArchivedSegment(key, obj.version_id, segment.first_seq, segment.last_seq, content)


def _mhl_files(mhl_dir: Path) -> list[Path]:
    if not mhl_dir.is_dir():
        return []
    # Skip temp files of an atomic write that a crash left behind.
    return sorted(p for p in mhl_dir.iterdir() if p.is_file() and not p.name.startswith("."))
