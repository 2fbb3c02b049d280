"""The content store: each distinct file stored once, named by its SHA-256.

Layout under the store root::

    objects/sha256/ab/cd/abcd…   the stored files, mode 0440, directories 0750
    tmp/<pid>-<token>/            one scratch directory per process, flock-ed while alive

A file is copied and hashed in one pass into a temp file on the store's filesystem,
fsync-ed, optionally re-read from disk and compared, and only then linked under its
hash name (link, not rename, so an existing object is never replaced).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from dockd.errors import IntegrityError, StoreUnavailableError
from dockd.store.fsutil import (
    DIR_MODE,
    FILE_MODE,
    blocking_lock,
    fsync_dir,
    make_dirs,
    make_dirs_durable,
    raise_store_error,
    try_lock,
    write_all,
)
from dockd.store.hashing import MultiHasher

OBJECTS_DIR = "objects/sha256"
TMP_DIR = "tmp"
_LOCK_NAME = ".lock"
_SETUP_LOCK_NAME = ".setup.lock"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredObject:
    """A file now durable in the store."""

    sha256: str
    size: int
    digests: dict[str, str]
    relpath: str
    created: bool


class SourceChangedError(Exception):
    """The source file changed size or mtime while it was read (the recorder still writing)."""


class SourceReadError(Exception):
    """The source file could not be read to the end; ``reason`` is a custody-log word."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class ContentStore:
    """Writes files into the store. One per process (it owns a scratch directory)."""

    def __init__(self, root: Path, algorithms: Iterable[str], chunk_bytes: int,
                 verify_after_copy: bool) -> None:
        self.root = root
        self.algorithms = tuple(algorithms)
        self.chunk_bytes = chunk_bytes
        self.verify_after_copy = verify_after_copy
        self._scratch: Path | None = None
        self._scratch_lock: int | None = None
        # One buffer for the life of the store: allocating megabytes per file costs more
        # than copying a small file.
        self._buf = bytearray(chunk_bytes)

    # -- life cycle -------------------------------------------------------------------

    def open(self) -> None:
        """Create the layout, prove the store is writable, clear dead processes' scratch."""
        try:
            make_dirs(self.root, DIR_MODE)
            make_dirs(self.root / OBJECTS_DIR, DIR_MODE)
            make_dirs(self.root / TMP_DIR, DIR_MODE)
            # Cleaning and creating a scratch directory happen under one lock, so a process
            # that is opening never sees its brand-new (not yet flock-ed) scratch removed by
            # another process's cleanup.
            with blocking_lock(self.root / TMP_DIR / _SETUP_LOCK_NAME):
                self.clean_stale_scratch()
                scratch = self.root / TMP_DIR / f"{os.getpid()}-{secrets.token_hex(4)}"
                os.mkdir(scratch, 0o700)
                lock_fd = os.open(scratch / _LOCK_NAME,
                                  os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise StoreUnavailableError(
                    f"the evidence store {self.root} is not writable: {exc.strerror}"
                ) from None
            raise_store_error(exc, f"preparing {self.root}")
            raise
        self._scratch_lock = lock_fd
        self._scratch = scratch

    def close(self) -> None:
        """Remove this process's scratch directory."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        if self._scratch_lock is not None:
            os.close(self._scratch_lock)
            self._scratch_lock = None

    def clean_stale_scratch(self) -> list[Path]:
        """Remove scratch directories whose process is gone (their flock is free)."""
        removed = []
        tmp_root = self.root / TMP_DIR
        for entry in sorted(tmp_root.iterdir()) if tmp_root.is_dir() else []:
            if entry == self._scratch or entry.name.startswith("."):
                continue  # our own scratch, or the setup lock
            fd = try_lock(entry / _LOCK_NAME)
            if fd is None and (entry / _LOCK_NAME).exists():
                continue  # a live process owns it
            try:
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed.append(entry)
                log.info("removed leftover temp data", extra={"path": str(entry)})
            finally:
                if fd is not None:
                    os.close(fd)
        return removed

    # -- objects ----------------------------------------------------------------------

    @staticmethod
    def object_relpath(sha256: str) -> str:
        return f"{OBJECTS_DIR}/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def object_path(self, sha256: str) -> Path:
        return self.root / self.object_relpath(sha256)

    def copy_in(self, src_fd: int, progress: Callable[[int], None] | None = None) -> StoredObject:
        """Copy the open regular file ``src_fd`` into the store, hashing in the same pass.

        Raises SourceChangedError if the file changed while read, SourceReadError if it could
        not be read, StoreFullError / StoreUnavailableError for the store's side. A failure
        leaves nothing behind in the store.
        """
        if self._scratch is None:
            raise RuntimeError("ContentStore.open() was not called")
        before = os.fstat(src_fd)
        if not stat.S_ISREG(before.st_mode):
            raise SourceReadError("not_regular", "not a regular file")
        tmp_path = self._scratch / f"{secrets.token_hex(8)}.part"
        try:
            tmp_fd = os.open(tmp_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise_store_error(exc, "creating a temp file")
            raise
        try:
            digests, size = self._copy_and_hash(src_fd, tmp_fd, progress, before.st_size)
            after = os.fstat(src_fd)
            if (size != before.st_size or after.st_size != before.st_size
                    or after.st_mtime_ns != before.st_mtime_ns):
                raise SourceChangedError(
                    f"size {before.st_size}→{after.st_size} (read {size}), "
                    f"mtime {before.st_mtime_ns}→{after.st_mtime_ns}"
                )
            try:
                os.fsync(tmp_fd)
            except OSError as exc:
                raise_store_error(exc, "flushing a file to disk")
            if self.verify_after_copy:
                self._verify_written(tmp_fd, digests["sha256"], size)
            return self._publish(tmp_fd, tmp_path, digests, size)
        finally:
            os.close(tmp_fd)
            tmp_path.unlink(missing_ok=True)

    def _copy_and_hash(self, src_fd: int, tmp_fd: int, progress: Callable[[int], None] | None,
                       limit: int) -> tuple[dict[str, str], int]:
        # Read no more than the size seen at open: a file the recorder keeps appending to
        # would otherwise be read forever; growth is caught by the fstat after the copy.
        hasher = MultiHasher(self.algorithms)
        whole = memoryview(self._buf)
        size = 0
        while size < limit:
            view = whole[:min(len(whole), limit - size)]
            try:
                n = os.readv(src_fd, [view])
            except OSError as exc:
                reason = "vanished" if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO) \
                    else "read_error"
                raise SourceReadError(reason, f"read failed after {size} bytes: {exc.strerror}") \
                    from None
            if n == 0:
                break
            chunk = view[:n]
            hasher.update(chunk)
            try:
                write_all(tmp_fd, chunk)
            except OSError as exc:
                raise_store_error(exc, "writing a file")
            size += n
            if progress is not None:
                progress(n)
        return hasher.digests(), size

    def _verify_written(self, fd: int, sha256: str, size: int) -> None:
        # Drop the cached pages so the re-read comes from the disk, not from memory.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        check = MultiHasher(["sha256"])
        view = memoryview(self._buf)
        offset = 0
        while True:
            n = os.preadv(fd, [view], offset)
            if n == 0:
                break
            check.update(view[:n])
            offset += n
        if offset != size or check.digests()["sha256"] != sha256:
            raise IntegrityError(
                f"read-back of the copy differs from the source (sha256 {sha256}): "
                "the store's disk may be failing"
            )

    def _publish(self, tmp_fd: int, tmp_path: Path, digests: dict[str, str],
                 size: int) -> StoredObject:
        sha = digests["sha256"]
        relpath = self.object_relpath(sha)
        final = self.root / relpath
        if final.exists():
            return StoredObject(sha, size, digests, relpath, created=False)
        try:
            os.fchmod(tmp_fd, FILE_MODE)
            make_dirs_durable(final.parent, DIR_MODE)
            try:
                # link() never replaces: if a concurrent ingest won the race, keep its file.
                os.link(tmp_path, final)
                created = True
            except FileExistsError:
                created = False
            fsync_dir(final.parent)
        except OSError as exc:
            raise_store_error(exc, "linking a file into the store")
            raise
        return StoredObject(sha, size, digests, relpath, created=created)
