"""The content store: each distinct file stored once, named by its SHA-256.

Layout under the store root::

    objects/sha256/ab/cd/abcd…   the stored files, mode 0440, directories 0750
    tmp/<pid>-<token>/            one scratch directory per process, flock-ed while alive

A file is copied and hashed in one pass (hash workers overlap the reads and writes) into a
temp file on the store's file system. Files are then made durable in batches by
:meth:`ContentStore.publish_batch`, the one owner of that sequence: one ``syncfs`` for the
batch, each file optionally re-read from the disk and compared, moved to its hash name
(``renameat2`` with ``RENAME_NOREPLACE``, else ``link``: an existing object is never
replaced), a second ``syncfs``, and only
then the caller's catalog commit. A batch being linked is announced in an intent file
first, so that a crash before the commit can be undone at the next start.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import itertools
import json
import logging
import mmap
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import Path

from dockd.errors import IntegrityError, StoreUnavailableError
from dockd.store.direct_write import (
    ALIGN,
    ChunkWriter,
    aligned_buffer,
    enable_direct,
    pread_all,
    pwrite_all,
)
from dockd.store.fsutil import (
    DIR_MODE,
    FILE_MODE,
    blocking_lock,
    link_making_dirs,
    make_dirs,
    raise_store_error,
    try_lock,
    umask_clears,
    write_file_atomic,
)
from dockd.store.guard import DENIED, check_store_tree, permission_denied
from dockd.store.hashing import (
    INLINE_BELOW,
    Digests,
    FileHash,
    ParallelHasher,
    hexdigest,
)
from dockd.store.session_folder import SESSIONS_DIR, SessionFolder

OBJECTS_DIR = "objects/sha256"
FANOUT_FILE = "objects.fanout"
FANOUT_LEVELS = 1
"""Directory levels between ``objects/sha256`` and an object, for new stores: one
(``ab/abcd…``, 256 directories). Stores made before this (``ab/cd/abcd…``, 65,536
directories, so a new directory for nearly every object up to a few hundred thousand:
a quarter of the committer's time on small files) keep their two levels; the number is in
``objects.fanout``."""
TMP_DIR = "tmp"
_LOCK_NAME = ".lock"
_SETUP_LOCK_NAME = ".setup.lock"
_PUBLISH_LOCK_NAME = ".publish.lock"
_INTENT_NAME = "batch.intent"
INTENT_PREFIX = ".intent-"
_RING = 4  # copy buffers: one being read, the others being hashed and written
_READBACK_WINDOW = 32  # small staged files asked of the disk at once by the read-back
HEAD_BYTES = 128
"""A staged file's first bytes kept from its copy: what mutagen looks at to pick a
container (dockd.store.metadata), so a file no container claims is never opened again."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class StoredObject:
    """A file now durable in the store."""

    sha256: str
    size: int
    digests: dict[str, str]
    relpath: str
    created: bool


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class ToPublish:
    """A staged file for :meth:`ContentStore.publish_batch`; ``folder_path`` is the
    recorder's path to link it under in the session folder (None: no link)."""

    staged: StagedFile
    folder_path: bytes | None


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class Published:
    """A file of a batch now linked into the store (durable; committed once ``commit``
    returns). ``index`` is its place in the batch."""

    index: int
    obj: StoredObject
    session_path: str | None  # where it was linked in the session folder, if it was


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """A batch made durable and read back (:meth:`ContentStore.check_batch`), not yet in
    the store: ``good`` are the files before the first whose writes failed
    (``write_error``), ``verified`` and ``rejected`` index them."""

    files: Sequence[ToPublish]
    good: Sequence[ToPublish]
    verified: list[int]
    rejected: list[Rejected]
    write_error: Exception | None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A file of a batch whose read-back differed from what was copied: not linked."""

    index: int
    error: IntegrityError


class SourceChangedError(Exception):
    """The source file changed size or mtime while it was read (the recorder still writing)."""


class SourceReadError(Exception):
    """The source file could not be read to the end; ``reason`` is a custody-log word."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def not_listed_at_open(rel: str, levels: int) -> bool:
    """Directories whose entries the ownership check at open does not list, so that it costs
    the same at any store size (only their own owner and mode are checked): the object
    fan-out directories (they hold only objects, put there by ``renameat2(RENAME_NOREPLACE)``
    or ``link``, neither of which follows or replaces a name) and each recorder's session
    folders (whatever is written or removed below them is checked where it is used:
    :func:`dockd.store.guard.check_store_path`)."""
    if rel.startswith(f"{SESSIONS_DIR}/"):
        return rel.count("/") == 1
    return rel.startswith(f"{OBJECTS_DIR}/") and rel.count("/") == OBJECTS_DIR.count("/") + levels


class ContentStore:
    """Writes files into the store. One per process (it owns a scratch directory)."""

    def __init__(self, root: Path, algorithms: Iterable[str], chunk_bytes: int,
                 verify_after_copy: bool, readback_hash: str = "xxh128") -> None:
        self.root = root
        # The read-back compares against the digest taken from the source in the copy pass.
        self.algorithms = tuple(dict.fromkeys([*algorithms, readback_hash]))
        self.chunk_bytes = chunk_bytes
        self.verify_after_copy = verify_after_copy
        self.readback_hash = readback_hash
        self._scratch: Path | None = None
        self._scratch_lock: int | None = None
        self._scratch_fd: int | None = None  # temp files are made relative to it
        self._temp_names = itertools.count()  # unique within this process's scratch
        self._copier_dirs = itertools.count()
        self._owns_scratch = True  # False in a copier process (attach_scratch)
        self._root_prefix = f"{root}/"
        self.fanout = FANOUT_LEVELS  # until open() reads the store's own
        # Buffers and worker threads live as long as the store: allocating megabytes or
        # starting threads per file costs more than copying a small file.
        # Two rings: copies run on the ingest's thread while the batch before is read back
        # on its checker thread; they must never share a buffer.
        self._copy_ring = _BufferRing(_RING, chunk_bytes)
        self._check_ring: _BufferRing | None = None  # made at the first read-back
        self._small_check_buffer: mmap.mmap | None = None  # a small file's read-back
        self._readback_direct = True  # larger files' read-back, until the fs refuses it
        self._hasher = ParallelHasher(self.algorithms)
        self._check_hasher = ParallelHasher([readback_hash])
        self._writer = ChunkWriter()
        self._chmod_staged = True  # a temp file's mode set after creating it (open() says)

    # -- life cycle -------------------------------------------------------------------

    def open(self) -> None:
        """Refuse a store dockd does not own (:func:`check_store_tree`), create the layout,
        prove the store is writable, clear dead processes' scratch."""
        try:
            levels = read_fanout(self.root)
        except OSError:
            levels = FANOUT_LEVELS  # no store yet, or one this user may not read: said next
        check_store_tree(self.root, lambda rel: not_listed_at_open(rel, levels))
        try:
            make_dirs(self.root, DIR_MODE)
            make_dirs(self.root / OBJECTS_DIR, DIR_MODE)
            make_dirs(self.root / TMP_DIR, DIR_MODE)
            # Cleaning and creating a scratch directory happen under one lock, so a process
            # that is opening never sees its brand-new (not yet flock-ed) scratch removed by
            # another process's cleanup.
            with blocking_lock(self.root / TMP_DIR / _SETUP_LOCK_NAME):
                self.clean_stale_scratch()
                self.fanout = settle_fanout(self.root)
                scratch = self.root / TMP_DIR / f"{os.getpid()}-{secrets.token_hex(4)}"
                os.mkdir(scratch, 0o700)
                lock_fd = os.open(scratch / _LOCK_NAME,
                                  os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in DENIED:
                raise permission_denied(Path(exc.filename or self.root), write=True) from None
            if exc.errno == errno.EROFS:
                raise StoreUnavailableError(
                    f"the evidence store {self.root} is not writable: {exc.strerror}"
                ) from None
            raise_store_error(exc, f"preparing {self.root}")
            raise
        self._scratch_lock = lock_fd
        self._scratch = scratch
        self._scratch_fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._chmod_staged = umask_clears(FILE_MODE)

    def close(self) -> None:
        """Remove this process's scratch directory and stop the worker threads."""
        self._hasher.close()
        self._check_hasher.close()
        self._writer.close()
        if self._scratch_fd is not None:
            os.close(self._scratch_fd)
            self._scratch_fd = None
        if self._scratch is not None and self._owns_scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch = None
        if self._scratch_lock is not None:
            os.close(self._scratch_lock)
            self._scratch_lock = None

    def copier_directory(self) -> tuple[Path, int, int]:
        """A new directory of this process's scratch for a copier process
        (:mod:`dockd.store.copier`) to stage into: its path, a descriptor of it, and the
        scratch directory's lock, for the copier to hold as well (the scratch is then
        removed by no start while either process lives)."""
        if self._scratch is None or self._scratch_lock is None:
            raise RuntimeError("ContentStore.open() was not called")
        path = self._scratch / f"copier-{next(self._copier_dirs)}"
        try:
            os.mkdir(path, 0o700)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise_store_error(exc, "preparing a copier's directory")
            raise
        return path, fd, self._scratch_lock

    def attach_scratch(self, path: Path, fd: int) -> None:
        """In a copier process: stage into ``path`` (open as ``fd``), a directory the
        session's process made in its scratch (:meth:`copier_directory`) and removes."""
        self._scratch, self._scratch_fd, self._owns_scratch = path, fd, False
        self._chmod_staged = umask_clears(FILE_MODE)

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
                intent = entry / _INTENT_NAME
                if intent.exists():
                    # A batch was being linked when that process died: keep the record for
                    # the store's recovery (dockd.store.evidence.undo_intents).
                    os.replace(intent, tmp_root / f"{INTENT_PREFIX}{secrets.token_hex(6)}.json")
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

    def object_relpath(self, sha256: str) -> str:
        """Where the object named ``sha256`` lives, relative to the store's root."""
        return object_relpath(sha256, self.fanout)

    def object_path(self, sha256: str) -> Path:
        return self.root / self.object_relpath(sha256)

    def stage(self, src_fd: int, progress: Callable[[int], None] | None = None,
              before: os.stat_result | None = None) -> StagedFile:
        """Copy and hash ``src_fd`` into a temp file of this process's scratch directory;
        ``before`` is its ``fstat`` if the caller has just taken it.

        Not yet durable (see :meth:`sync`) and not yet in the store (see :meth:`link_staged`);
        callers batch many staged files into one sync.
        """
        if self._scratch is None or self._scratch_fd is None:
            raise RuntimeError("ContentStore.open() was not called")
        before = before or os.fstat(src_fd)
        if not stat.S_ISREG(before.st_mode):
            raise SourceReadError("not_regular", "not a regular file")
        # A counter names it (the scratch directory is this process's alone), made relative
        # to the scratch directory's fd, its path a plain string: per small file, random
        # names and pathlib had cost more than the kernel's work of creating it.
        name = f"{next(self._temp_names)}.part"
        tmp_path = f"{self._scratch}/{name}"
        try:
            # Created read-only for its owner and group, opened for writing all the same
            # (open(2): a new file's mode applies to later opens).
            tmp_fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE,
                             dir_fd=self._scratch_fd)
        except OSError as exc:
            raise_store_error(exc, "creating a temp file")
            raise
        writes: list[Future[None]] = []  # direct writes still queued on the writer thread
        try:
            if self._chmod_staged:  # else created with the mode the object will have
                os.fchmod(tmp_fd, FILE_MODE)
            head: list[bytes] = []  # the file's first bytes, for the media probe
            file_hash: Digests
            if before.st_size <= INLINE_BELOW:
                file_hash, size = self._copy_small(src_fd, tmp_fd, progress, before.st_size,
                                                   head)
            else:
                file_hash, size = self._copy_and_hash(src_fd, tmp_fd, progress, before.st_size,
                                                      writes, head)
            after = os.fstat(src_fd)
            if (size != before.st_size or after.st_size != before.st_size
                    or after.st_mtime_ns != before.st_mtime_ns):
                raise SourceChangedError(
                    f"size {before.st_size}→{after.st_size} (read {size}), "
                    f"mtime {before.st_mtime_ns}→{after.st_mtime_ns}"
                )
        except BaseException:
            wait(writes)  # no write may land in a closed (or reused) descriptor
            os.close(tmp_fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
            raise
        # The copy does not wait for its last writes: the next file is read while they go
        # to the disk, and the writer closes the temp file after them.
        written: Future[None] | None = None
        if writes:
            written = self._writer.close_after(tmp_fd, writes)
        else:
            os.close(tmp_fd)
        return StagedFile(tmp_path, file_hash, size, written, head[0] if head else b"")

    def publish_batch(self, files: Sequence[ToPublish], folder: SessionFolder | None,
                      commit: Callable[[list[Published], list[Rejected]], None]) -> None:
        """Make a batch of staged files durable and put them in the store: the one place
        that owns the whole sequence, in this order, so that a crash at any point loses
        nothing and doubles nothing (docs/store.md, "Durability"):

        1. ``syncfs`` once the staged files' queued writes are done: their bytes are on disk
           (a file whose writes failed cuts the batch there: the files before it go on, and
           the write error is raised at the end);
        2. with a read-back, each is read again from the disk and compared (a mismatch is
           ``Rejected``, never linked);
        3. under the publication lock, an intent record names what is about to be linked;
        4. each file is linked under its hash name (never replacing an object) and, where it
           has a ``folder_path``, into the session ``folder``;
        5. a second ``syncfs`` makes the links durable;
        6. ``commit(published, rejected)`` records the batch in the catalog (the caller's
           single transaction); if it raises, what this batch linked is unlinked again;
        7. the intent record is cleared, and the temp names removed.

        A crash between 3 and 7 leaves the intent: the next opening of the store undoes the
        objects that no catalog item names (:func:`dockd.store.evidence.undo_intents`).
        ``commit`` is called even when every file was rejected, so the rejections are
        recorded. Raises the store's errors (full, unavailable) and whatever ``commit`` raises.
        """
        self.publish_checked(self.check_batch(files), folder, commit)

    def check_batch(self, files: Sequence[ToPublish]) -> CheckedBatch:
        """Steps 1 and 2 of :meth:`publish_batch`: nothing in the store changes, so a
        batch can be checked while the one before it is linked and committed. When it
        raises, the batch's temp files are discarded."""
        try:
            good, write_error = self._until_write_error(files)
            self.sync()
            rejected: list[Rejected] = []
            verified = list(range(len(good)))
            if self.verify_after_copy and good:
                errors = self.verify_staged_all([f.staged for f in good])
                rejected = [Rejected(i, e) for i, e in enumerate(errors) if e is not None]
                verified = [i for i, e in enumerate(errors) if e is None]
        except BaseException:
            self._discard_all(files)
            raise
        return CheckedBatch(files, good, verified, rejected, write_error)

    def publish_checked(self, checked: CheckedBatch, folder: SessionFolder | None,
                        commit: Callable[[list[Published], list[Rejected]], None]) -> None:
        """Steps 3 to 7 of :meth:`publish_batch` for a batch :meth:`check_batch` checked;
        its temp files are discarded whatever happens."""
        try:
            if checked.verified:
                self._link_and_commit(checked.good, checked.verified, checked.rejected, folder,
                                      commit)
            elif checked.rejected:
                commit([], checked.rejected)
        finally:
            self._discard_all(checked.files)
        if checked.write_error is not None:
            raise checked.write_error

    def _discard_all(self, files: Sequence[ToPublish]) -> None:
        for f in files:
            if not f.staged.moved:  # moved to its object name: no temp name left
                self.discard(f.staged)

    def _link_and_commit(self, files: Sequence[ToPublish], verified: list[int],
                         rejected: list[Rejected], folder: SessionFolder | None,
                         commit: Callable[[list[Published], list[Rejected]], None]) -> None:
        """Steps 3 to 7 of :meth:`publish_batch`."""
        with self.publication_lock():
            self.write_intent([files[i].staged.digests["sha256"] for i in verified],
                              folder.path if folder is not None else None)
            published: list[Published] = []
            try:
                for i in verified:
                    published.append(self._publish_one(i, files[i], folder))
                self.sync()
                commit(published, rejected)
            except BaseException:
                self._unpublish(published, folder)
                raise
            finally:
                self.clear_intent()

    @staticmethod
    def _until_write_error(files: Sequence[ToPublish]) -> tuple[Sequence[ToPublish],
                                                                 Exception | None]:
        """The staged files before the first whose queued writes failed (a copy does not
        wait for its last writes), and that error: as when a copy itself fails, what was
        complete before it is published, then the error is raised (a full store stops the
        session with ``store_full``)."""
        for i, item in enumerate(files):
            try:
                item.staged.wait_written()
            except Exception as exc:
                return files[:i], exc
        return files, None

    def _publish_one(self, index: int, item: ToPublish, folder: SessionFolder | None) -> Published:
        obj = self.link_staged(item.staged)
        session_path = None
        if folder is not None and item.folder_path is not None:
            session_path = folder.link(item.folder_path, self._root_prefix + obj.relpath)
        return Published(index, obj, session_path)

    def _unpublish(self, published: list[Published], folder: SessionFolder | None) -> None:
        """Undo the links of a batch whose commit failed: no object without its item."""
        for item in published:
            if folder is not None and item.session_path is not None:
                (folder.path / item.session_path).unlink(missing_ok=True)
            if item.obj.created:
                self.object_path(item.obj.sha256).unlink(missing_ok=True)

    def sync(self, staged: Iterable[StagedFile] = ()) -> None:
        """Make everything written to the store's file system durable (one ``syncfs``),
        once the queued writes of ``staged`` are done (a failed one raises its store error)."""
        for item in staged:
            item.wait_written()
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            syncfs(fd)
        except OSError as exc:
            raise_store_error(exc, "flushing the store to disk")
        finally:
            os.close(fd)

    def verify_staged(self, staged: StagedFile) -> None:
        """Re-read a synced staged file from the disk; IntegrityError if it differs."""
        error = self.verify_staged_all([staged])[0]
        if error is not None:
            raise error

    def verify_staged_all(self, staged: list[StagedFile]) -> list[IntegrityError | None]:
        """Re-read synced staged files from the disk, not from memory: larger files with
        O_DIRECT (from the disk into the buffer, past the page cache); small ones (and all,
        on a file system without direct I/O) through the cache, their cached pages dropped
        first and asked of the disk a window at a time, so it serves them together instead
        of one round trip each (read with O_DIRECT one by one, a 64 KiB file's read-back had
        waited 0.4–0.6 ms for the disk on the shared machine). One result per file: None
        when the read-back equals what was hashed from the source, else the IntegrityError."""
        results: list[IntegrityError | None] = []
        for start in range(0, len(staged), _READBACK_WINDOW):
            window = staged[start:start + _READBACK_WINDOW]
            fds: list[int] = []
            try:
                for item in window:
                    fds.append(self._open_for_read_back(item))
                read_back = [self._read_back(fd, item) for fd, item in zip(fds, window, strict=True)]
            finally:
                for fd in fds:
                    os.close(fd)
            results += [self._compare(item, size, check) for item, (size, check)
                        in zip(window, read_back, strict=True)]
        return results

    def _open_for_read_back(self, item: StagedFile) -> int:
        """A staged file opened so that reading it reads the disk: with O_DIRECT for a
        larger file, else its cached pages dropped and asked of the disk again."""
        if item.size > INLINE_BELOW and self._readback_direct:
            try:
                return os.open(item.tmp_path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECT)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._readback_direct = False  # a file system without direct I/O
        fd = os.open(item.tmp_path, os.O_RDONLY | os.O_CLOEXEC)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        return fd

    def _compare(self, staged: StagedFile, size: int, check: str) -> IntegrityError | None:
        name = self.readback_hash
        if size != staged.size or check != staged.digests[name]:
            return IntegrityError(
                f"read-back of the copy differs from the source ({name}; sha256 "
                f"{staged.digests['sha256']}): the store's disk may be failing"
            )
        return None

    def _read_back(self, fd: int, staged: StagedFile) -> tuple[int, str]:
        """(bytes read, their ``readback_hash`` digest), reading past the expected size by
        at least a byte: a longer file must show as a mismatch."""
        if staged.size <= INLINE_BELOW:
            # A small file in one read into a buffer of its own, hashed here: no ring, no
            # worker, no bytes object; a short read goes on until the end.
            if self._small_check_buffer is None:
                self._small_check_buffer = aligned_buffer(_aligned(INLINE_BELOW + 1))
            view = memoryview(self._small_check_buffer)
            want = _aligned(staged.size + 1)
            got = pread_all(fd, view[:want], 0)
            while 0 < got <= staged.size:
                more = pread_all(fd, view[got:want], got)
                if not more:
                    break
                got += more
            return got, hexdigest(self.readback_hash, view[:got])

        def read(view: memoryview, offset: int) -> int:
            return pread_all(fd, view, offset)

        limit = _aligned(staged.size + 1)
        check = self._check_hasher.start()
        if self._check_ring is None:  # none without a read-back: it would only add to the RSS
            self._check_ring = _BufferRing(_RING, self.chunk_bytes)
        size = self._pump(self._check_ring, read, limit, check)
        return size, check.digests()[self.readback_hash]

    def flush_hashing(self) -> None:
        """Have the small files staged so far hashed now (:meth:`ParallelHasher.flush`)."""
        self._hasher.flush()

    @property
    def hashing_handed_over(self) -> bool:
        """Whether every file staged so far is with the hash workers: reading their
        digests now hands no half-full group over (see :mod:`dockd.store.copier`)."""
        return self._hasher.all_handed_over

    def link_staged(self, staged: StagedFile) -> StoredObject:
        """Give a staged file its hash name (never replacing an existing object). Durable
        after the next :meth:`sync`."""
        sha = staged.digests["sha256"]
        relpath = self.object_relpath(sha)
        try:
            # Neither replaces: an object already stored (or just stored by a
            # concurrent ingest) is kept as it is, and the temp file is discarded.
            created, staged.moved = _move_making_dirs(staged.tmp_path, self._root_prefix + relpath)
        except OSError as exc:
            raise_store_error(exc, "linking a file into the store")
            raise
        return StoredObject(sha, staged.size, staged.digests, relpath, created=created)

    def discard(self, staged: StagedFile) -> None:
        """Remove a staged file's temp name (its object, if linked, stays)."""
        try:
            os.unlink(staged.tmp_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            # Only after another failure (a read-only or failing store): the temp file is in
            # this process's scratch directory, which the next opening of the store removes.
            # Raising here would hide the failure that matters.
            log.warning("temp file left for the next start to remove",
                        extra={"path": staged.tmp_path, "error": exc.strerror})

    def publication_lock(self) -> contextlib.AbstractContextManager[int]:
        """Held while objects are linked and committed, and while a crashed process's
        unfinished batch is undone, so the two never interleave."""
        return blocking_lock(self.root / TMP_DIR / _PUBLISH_LOCK_NAME)

    def write_intent(self, shas: list[str], folder: Path | None) -> None:
        """Before linking a batch: record what is about to be linked, so that a crash before
        its catalog commit can be undone (see :func:`dockd.store.evidence.undo_intents`)."""
        assert self._scratch is not None
        data = json.dumps({"shas": shas,
                           "folder": str(folder) if folder is not None else None}).encode()
        try:
            write_file_atomic(self._scratch / _INTENT_NAME, data, mode=0o600)
        except OSError as exc:  # a full store: nothing of the batch is linked yet
            raise_store_error(exc, "recording the batch about to be linked")
            raise

    def clear_intent(self) -> None:
        if self._scratch is not None:
            (self._scratch / _INTENT_NAME).unlink(missing_ok=True)

    def _copy_small(self, src_fd: int, tmp_fd: int, progress: Callable[[int], None] | None,
                    limit: int, head: list[bytes]) -> tuple[Digests, int]:
        """A small file's copy: read whole (one ``read`` for most), written with one
        ``pwrite`` through the page cache, and its bytes — the very object written — handed
        to the hash workers with the files around it (:meth:`ParallelHasher.later`); no
        buffer ring, no writer thread. Per file this is a third of the general loop's
        Python work, for the files a recorder has most of."""
        size = 0
        chunks: list[bytes] = []
        while size < limit:  # no more than the size seen at open (see _copy_and_hash)
            try:
                chunk = os.read(src_fd, limit - size)
            except OSError as exc:
                reason = "vanished" if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO) \
                    else "read_error"
                raise SourceReadError(reason, f"read failed after {size} bytes: "
                                              f"{exc.strerror}") from None
            if not chunk:
                break
            try:
                pwrite_all(tmp_fd, chunk, size)
            except OSError as exc:
                raise_store_error(exc, "writing a file")
            chunks.append(chunk)
            size += len(chunk)
            if progress is not None:
                progress(len(chunk))
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        head.append(data[:HEAD_BYTES])
        return self._hasher.later(data), size

    def _copy_and_hash(self, src_fd: int, tmp_fd: int, progress: Callable[[int], None] | None,
                       limit: int, writes: list[Future[None]],
                       head: list[bytes]) -> tuple[FileHash, int]:
        # Read no more than the size seen at open: a file the recorder keeps appending to
        # would otherwise be read forever; growth is caught by the fstat after the copy.
        # Small files are read and written in this thread through the page cache: one write,
        # and the batch's syncfs takes many at once. Larger ones are written direct, on the
        # writer, and read direct too: from the recorder's disk into the copy buffer with no
        # page-cache copy in between (it was half the kernel time of an offload, measured).
        direct = limit > INLINE_BELOW and enable_direct(tmp_fd)
        src_direct = limit > INLINE_BELOW and enable_direct(src_fd)
        if limit > INLINE_BELOW and not src_direct:
            os.posix_fadvise(src_fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # a wider read-ahead

        def read(view: memoryview, offset: int) -> int:
            try:
                # pread_all goes back to the page cache for what direct I/O refuses.
                n = pread_all(src_fd, view, offset) if src_direct else os.readv(src_fd, [view])
                if not offset:
                    head.append(bytes(view[:min(n, HEAD_BYTES)]))
                return n
            except OSError as exc:
                reason = "vanished" if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO) \
                    else "read_error"
                raise SourceReadError(reason, f"read failed after {offset} bytes: "
                                              f"{exc.strerror}") from None

        def write(chunk: memoryview, offset: int) -> Future[None] | None:
            if direct:
                return self._writer.submit(tmp_fd, chunk, offset)
            try:
                pwrite_all(tmp_fd, chunk, offset)
            except OSError as exc:
                raise_store_error(exc, "writing a file")
            return None

        # A large file's digests are not waited for: they are read when its batch is made
        # durable, by which time the workers have long finished them.
        file_hash = self._hasher.start()
        size = self._pump(self._copy_ring, read, limit, file_hash, write=write, progress=progress,
                          writes=writes)
        return file_hash, size

    def _pump(self, ring: _BufferRing, read: Callable[[memoryview, int], int], limit: int,
              file_hash: FileHash,
              write: Callable[[memoryview, int], Future[None] | None] | None = None,
              progress: Callable[[int], None] | None = None,
              writes: list[Future[None]] | None = None) -> int:
        """Stream up to ``limit`` bytes through the buffer ring: while one chunk is hashed
        (worker threads) and written (writer thread), the next is read. A buffer is reused
        only when every job using it is done. Returns the number of bytes read. The write
        jobs not yet finished are left in ``writes`` (a write error seen is raised); when it
        raises, every write of this file is done."""
        writes = [] if writes is None else writes
        size = 0
        try:
            while size < limit:
                slot = ring.take()
                _raise_write_error(writes)  # stop early on a full or failing store
                wanted = min(self.chunk_bytes, limit - size)
                # Asked for to a whole block (direct I/O takes no less), used up to ``limit``.
                view = memoryview(ring.buffers[slot])[:min(self.chunk_bytes, _aligned(wanted))]
                n = min(read(view, size), wanted)
                if n == 0:
                    break
                chunk = view[:n]
                ring.busy[slot] = file_hash.update(chunk)
                written = write(chunk, size) if write is not None else None
                if written is not None:
                    ring.busy[slot].append(written)
                    writes.append(written)
                size += n
                if progress is not None:
                    progress(n)
            _raise_write_error(writes)
        except BaseException:
            wait(writes)  # the caller closes the file next: no write of it may be queued
            raise
        return size


def object_relpath(sha256: str, fanout: int) -> str:
    """An object's path relative to the store's root, for a fan-out of ``fanout`` levels."""
    levels = "".join(f"{sha256[2 * i:2 * i + 2]}/" for i in range(fanout))
    return f"{OBJECTS_DIR}/{levels}{sha256}"


def read_fanout(root: Path) -> int:
    """The store's fan-out: from ``objects.fanout``. A store without that file was made
    before it (it has a catalog already, or objects): the two levels of the first layout,
    whose items' paths the catalog keeps; a new store gets the current one."""
    try:
        text = (root / FANOUT_FILE).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        # Here, not at the top: the copier process imports this module and never opens the
        # catalog, and sqlite3 is 2 MB of its memory.
        from dockd.store.catalog import CATALOG_FILE
        if (root / CATALOG_FILE).exists():
            return 2
        try:
            with os.scandir(root / OBJECTS_DIR) as it:
                legacy = any(True for _ in it)
        except FileNotFoundError:
            legacy = False
        return 2 if legacy else FANOUT_LEVELS
    if text not in ("1", "2"):
        raise StoreUnavailableError(
            f"{root / FANOUT_FILE} says {text[:20]!r}: not a fan-out this dockd knows (1 or 2)")
    return int(text)


def settle_fanout(root: Path) -> int:
    """:func:`read_fanout`, written down the first time (under the store's setup lock), so
    the layout never changes under a store."""
    fanout = read_fanout(root)
    if not (root / FANOUT_FILE).exists():
        write_file_atomic(root / FANOUT_FILE, f"{fanout}\n".encode(), mode=0o440)
    return fanout


class _BufferRing:
    """Page-aligned buffers used in turn. Each remembers the hash and write jobs still
    using it, kept across files: a small file's hashing runs on while the next file is
    read into the next buffer. A buffer is handed out again only when they are done."""

    def __init__(self, count: int, size: int) -> None:
        self.buffers = [aligned_buffer(size) for _ in range(count)]
        self.busy: list[list[Future[None]]] = [[] for _ in self.buffers]
        self._turn = 0

    def take(self) -> int:
        """The next buffer's index, once nothing uses it any more."""
        slot = self._turn % len(self.buffers)
        self._turn += 1
        wait(self.busy[slot])
        return slot


def _aligned(size: int) -> int:
    """``size`` rounded up to a whole number of direct I/O blocks."""
    return -(-size // ALIGN) * ALIGN


def _raise_write_error(writes: list[Future[None]]) -> None:
    """A finished write that failed becomes the store's error (full, read-only, I/O).
    Finished writes are dropped from ``writes``, so a long file is not checked over and
    over (a 4 GiB recording is 4,096 chunks)."""
    pending = []
    for future in writes:
        if not future.done():
            pending.append(future)
        elif (exc := future.exception()) is not None:
            if isinstance(exc, OSError):
                raise_store_error(exc, "writing a file")
            raise exc
    writes[:] = pending


class StagedFile:
    """A file copied into the scratch directory, not yet in the store. Its digests may
    still be computing on the hash workers; reading :attr:`digests` waits for them."""

    def __init__(self, tmp_path: str, digests: dict[str, str] | Digests, size: int,
                 written: Future[None] | None = None, head: bytes = b"") -> None:
        self.tmp_path = tmp_path
        self.moved = False  # renamed to its object name: the temp name is gone
        self.head = head  # its first bytes (up to HEAD_BYTES), read in the copy
        self.size = size
        self._digests = digests
        self._written = written

    def wait_written(self) -> None:
        """Wait until its queued writes are done and its temp file closed; a failed write
        raises its store error (full, read-only, I/O)."""
        if self._written is not None:
            try:
                self._written.result()
            except OSError as exc:
                raise_store_error(exc, "writing a file")
                raise

    @property
    def digests(self) -> dict[str, str]:
        if not isinstance(self._digests, dict):
            self._digests = self._digests.digests()
        return self._digests


def syncfs(fd: int) -> None:
    """syncfs(2): flush the whole file system holding ``fd`` (one journal commit for a
    batch of files, where an fsync per file costs one each)."""
    if _libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_renameat2 = getattr(_libc, "renameat2", None)  # glibc 2.28 and later


def _move_making_dirs(temp: str, new: str) -> tuple[bool, bool]:
    """Move a staged file to its object name unless that name exists, creating the
    fan-out directory if missing: (created, the temp name is gone). Not created when the
    name exists (the temp file then stays, to be discarded). ``renameat2(RENAME_NOREPLACE)``:
    atomic and never replacing, like ``link()``, and the temp name is gone with it (a link
    and then an unlink had been two directory updates per file). Where the kernel or file
    system refuses the flag, a link, which never replaces either."""
    if _renameat2 is not None:
        for _attempt in range(2):
            if _renameat2(_AT_FDCWD, os.fsencode(temp), _AT_FDCWD, os.fsencode(new),
                          _RENAME_NOREPLACE) == 0:
                return True, True
            err = ctypes.get_errno()
            if err == errno.EEXIST:
                return False, False
            if err == errno.ENOENT and not os.path.isdir(os.path.dirname(new)):
                make_dirs(Path(new).parent, DIR_MODE)
                continue
            if err not in (errno.EINVAL, errno.ENOSYS):
                raise OSError(err, os.strerror(err), temp, None, new)
            break
    return link_making_dirs(temp, new), False
