"""Upload one stored file to the archive, checked by SHA-256 and resumable after a crash.

A file up to ``multipart_threshold_bytes`` goes up in one PUT whose
``x-amz-checksum-sha256`` is the store's own digest: the bucket refuses the bytes unless
they hash to what the catalog says. A larger file goes up in parts, each with its own
SHA-256; the upload id and every accepted part are committed to the catalog as soon as
the bucket has them, so a process killed half-way resumes with the parts already there.
The whole file is re-hashed as the parts are read (also the parts uploaded before a
crash), and the upload is only completed when that digest is the catalog's.

Before writing, the latest version of the key is looked at: if it is our object with our
digest and a long enough COMPLIANCE lock (a crash after the upload, before the catalog
noted it), that version is adopted instead of writing a second one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dockd.clock import Clock, parse_utc_iso, utc_iso
from dockd.errors import IntegrityError
from dockd.i18n import _
from dockd.records.archive.objectstore import (
    LOCK_MODE,
    Lock,
    RemoteObject,
    S3Archive,
    UploadedPart,
    composite_checksum,
    sha256_b64,
)
from dockd.store.catalog import Catalog, Transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadProgress:
    """After each part the bucket accepted (and the catalog recorded)."""

    key: str
    part_number: int
    parts_total: int
    resumed_parts: int  # parts found already uploaded when this process started the file


ProgressCallback = Callable[[UploadProgress], None]


class Uploader:
    """Puts files into one bucket, keeping multipart state in ``catalog``."""

    def __init__(self, catalog: Catalog, archive: S3Archive, clock: Clock, part_bytes: int,
                 multipart_threshold: int, on_progress: ProgressCallback | None = None) -> None:
        self.catalog = catalog
        self.archive = archive
        self.clock = clock
        self.part_bytes = part_bytes
        self.multipart_threshold = multipart_threshold
        self.on_progress = on_progress
        self.parts_uploaded = 0  # parts sent by this process: what a resume saves is visible

    def upload(self, key: str, path: Path, sha256_hex: str, size: int, lock: Lock,
               content_type: str) -> RemoteObject:
        """Make ``key`` hold exactly the file at ``path`` (``size`` bytes, ``sha256_hex``)
        under ``lock``; the version that does. Caller clears the upload state (see
        :func:`forget_upload`) in the transaction that records the result."""
        pending = self.catalog.query_one("SELECT * FROM archive_uploads WHERE key=? AND bucket=?",
                                         (key, self.archive.bucket))
        if pending is not None:
            return self._resume(key, path, sha256_hex, size, pending, content_type)
        existing = self._adoptable(key, sha256_hex, size, lock.retain_until)
        if existing is not None:
            return existing
        if size <= self.multipart_threshold:
            with path.open("rb") as body:
                return self.archive.put(key, body, size, sha256_hex, lock, content_type)
        return self._multipart(key, path, sha256_hex, size, lock, content_type)

    def upload_bytes(self, key: str, data: bytes, lock: Lock, content_type: str) -> RemoteObject:
        """Make ``key`` hold ``data`` (small files: manifests) under ``lock``."""
        sha = hashlib.sha256(data).hexdigest()
        existing = self._adoptable(key, sha, len(data), lock.retain_until)
        if existing is not None:
            return existing
        return self.archive.put(key, io.BytesIO(data), len(data), sha, lock, content_type)

    # -- multipart ------------------------------------------------------------------------

    def _multipart(self, key: str, path: Path, sha256_hex: str, size: int, lock: Lock,
                   content_type: str) -> RemoteObject:
        upload_id = self.archive.create_multipart(key, sha256_hex, lock, content_type)
        # A crash before this commit leaves an upload the bucket alone knows of; a bucket
        # lifecycle rule (AbortIncompleteMultipartUpload) clears those (docs/archive.md).
        with self.catalog.transaction() as tx:
            tx.execute("INSERT INTO archive_uploads (key, bucket, upload_id, sha256, size,"
                       " part_bytes, retain_until, legal_hold, started_at)"
                       " VALUES (?,?,?,?,?,?,?,?,?)",
                       (key, self.archive.bucket, upload_id, sha256_hex, size, self.part_bytes,
                        utc_iso(lock.retain_until), int(lock.legal_hold),
                        utc_iso(self.clock.now())))
        return self._send_parts(key, path, sha256_hex, size, upload_id, self.part_bytes, {})

    def _resume(self, key: str, path: Path, sha256_hex: str, size: int, row: sqlite3.Row,
                content_type: str) -> RemoteObject:
        upload_id = str(row["upload_id"])
        part_bytes = int(row["part_bytes"])
        if row["sha256"] != sha256_hex or int(row["size"]) != size:
            raise IntegrityError(_("an unfinished upload of {key} is for other content ({sha256}); the "
                                   "catalog is inconsistent").format(key=key, sha256=row['sha256']))
        server = self.archive.list_parts(key, upload_id)
        if server is None:
            # The bucket no longer knows the upload: completed just before a crash, or
            # aborted/expired. Adopt the completed object, else start over.
            until = parse_utc_iso(str(row["retain_until"]))
            adopted = self._adoptable(key, sha256_hex, size, until)
            forget_upload(self.catalog, key, upload_id)
            if adopted is not None:
                return adopted
            lock = Lock(until, bool(row["legal_hold"]))
            return self._multipart(key, path, sha256_hex, size, lock, content_type)
        done: dict[int, UploadedPart] = {}
        for part in self.catalog.query("SELECT * FROM archive_upload_parts WHERE upload_id=?",
                                       (upload_id,)):
            number = int(part["part_number"])
            # Keep a part only if the bucket has it as we recorded it.
            if server.get(number) == (part["etag"], int(part["size"])):
                done[number] = UploadedPart(number, part["etag"], part["checksum_sha256"],
                                            int(part["size"]))
        log.info("resuming an archive upload",
                 extra={"key": key, "upload_id": upload_id, "parts_done": len(done)})
        return self._send_parts(key, path, sha256_hex, size, upload_id, part_bytes, done)

    def _send_parts(self, key: str, path: Path, sha256_hex: str, size: int, upload_id: str,
                    part_bytes: int, done: dict[int, UploadedPart]) -> RemoteObject:
        total = max(1, -(-size // part_bytes))
        whole = hashlib.sha256()
        digests: list[bytes] = []
        parts: list[UploadedPart] = []
        resumed = len(done)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for number in range(1, total + 1):
                data = os.pread(fd, part_bytes, (number - 1) * part_bytes)
                whole.update(data)
                digest = hashlib.sha256(data).digest()
                digests.append(digest)
                if number in done:
                    part = done[number]
                    if part.checksum_sha256 != sha256_b64(digest.hex()):
                        self._give_up(key, upload_id)
                        raise IntegrityError(_("part {number} of {path} changed since it was uploaded; "
                                               "the stored file is not what it was").format(
                                               number=number, path=path))
                    parts.append(part)
                    continue
                part = self.archive.upload_part(key, upload_id, number, data, digest)
                with self.catalog.transaction() as tx:
                    tx.execute("INSERT OR REPLACE INTO archive_upload_parts (upload_id,"
                               " part_number, etag, checksum_sha256, size) VALUES (?,?,?,?,?)",
                               (upload_id, number, part.etag, part.checksum_sha256, part.size))
                self.parts_uploaded += 1
                parts.append(part)
                if self.on_progress is not None:
                    self.on_progress(UploadProgress(key, number, total, resumed))
        finally:
            os.close(fd)
        if whole.hexdigest() != sha256_hex:
            self._give_up(key, upload_id)
            raise IntegrityError(_("{path} no longer has SHA-256 {sha256_hex} (read {hexdigest}); not "
                                   "archived — run dockd verify").format(
                                   path=path, sha256_hex=sha256_hex, hexdigest=whole.hexdigest()))
        expected = composite_checksum(digests)
        completed = self.archive.complete_multipart(key, upload_id, parts)
        if completed is None:
            pending = self.catalog.query_one("SELECT retain_until FROM archive_uploads WHERE key=?",
                                             (key,))
            until = parse_utc_iso(pending[0]) if pending else self.clock.now()
            adopted = self._adoptable(key, sha256_hex, size, until)
            if adopted is None:
                raise IntegrityError(_("the archive lost the multipart upload of {key} while completing "
                                       "it; run dockd archive sync again").format(key=key))
            return adopted
        version_id, checksum = completed
        if checksum and checksum != expected:
            raise IntegrityError(_("the archive assembled {key} with checksum {checksum}, expected "
                                   "{expected}").format(key=key, checksum=checksum, expected=expected))
        row = self.catalog.query_one("SELECT retain_until, legal_hold FROM archive_uploads"
                                     " WHERE key=?", (key,))
        until = parse_utc_iso(row[0]) if row else self.clock.now()
        return RemoteObject(key, version_id, checksum or expected, size, sha256_hex, LOCK_MODE,
                            until, bool(row[1]) if row else False)

    def _give_up(self, key: str, upload_id: str) -> None:
        self.archive.abort_multipart(key, upload_id)
        forget_upload(self.catalog, key, upload_id)

    # -- adoption -------------------------------------------------------------------------

    def _adoptable(self, key: str, sha256_hex: str, size: int,
                   retain_until: dt.datetime) -> RemoteObject | None:
        current = self.archive.head(key)
        if current is None:
            return None
        if (current.content_sha256 == sha256_hex and current.size == size
                and current.lock_mode == LOCK_MODE and current.retain_until is not None
                and current.retain_until >= retain_until - dt.timedelta(seconds=1)):
            log.info("adopting an archived version uploaded before a crash",
                     extra={"key": key, "version_id": current.version_id})
            return current
        return None


def forget_upload(catalog: Catalog, key: str, upload_id: str | None = None) -> None:
    """Drop the multipart state of ``key`` (all of it, or of one upload id)."""
    with catalog.transaction() as tx:
        forget_upload_in(tx, key, upload_id)


def forget_upload_in(tx: Transaction, key: str, upload_id: str | None = None) -> None:
    """:func:`forget_upload` inside the caller's transaction."""
    execute = tx.execute
    ids = [upload_id] if upload_id else [r[0] for r in execute(
        "SELECT upload_id FROM archive_uploads WHERE key=?", (key,)).fetchall()]
    for uid in ids:
        execute("DELETE FROM archive_upload_parts WHERE upload_id=?", (uid,))
    execute("DELETE FROM archive_uploads WHERE key=?", (key,))
