"""Several digests of one byte stream, computed in a single pass.

SHA-256 addresses the store; SM3 (GB/T 32905) is offered for Chinese evidence rules;
xxh128 and c4 are what ASC MHL manifests accept (ASC MHL has no SHA-256).
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Protocol

import xxhash

C4_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
C4_LENGTH = 90
SUPPORTED = ("sha256", "sm3", "xxh128", "c4")


class _Hash(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


class MultiHasher:
    """Feeds every chunk to each requested algorithm; ``digests()`` gives text digests."""

    def __init__(self, algorithms: Iterable[str]) -> None:
        self.algorithms = tuple(dict.fromkeys(algorithms))
        unknown = [a for a in self.algorithms if a not in SUPPORTED]
        if unknown:
            raise ValueError(f"unsupported hash algorithm(s): {', '.join(unknown)}")
        self._hashes: dict[str, _Hash] = {a: _new(a) for a in self.algorithms}

    def update(self, chunk: bytes | memoryview) -> None:
        for h in self._hashes.values():
            h.update(chunk)

    def digests(self) -> dict[str, str]:
        """Digest text per algorithm: lowercase hex, except c4 in its own base58 form."""
        out = {}
        for name, h in self._hashes.items():
            out[name] = c4_from_sha512_hex(h.hexdigest()) if name == "c4" else h.hexdigest()
        return out


# Constructors by name (hashlib.new looks the name up each time: per small file it showed).
_NEW: dict[str, Callable[[], _Hash]] = {
    "sha256": hashlib.sha256, "c4": hashlib.sha512, "xxh128": xxhash.xxh3_128,
    "sm3": lambda: hashlib.new("sm3"),
}


def _new(algorithm: str) -> _Hash:
    return _NEW[algorithm]()


def c4_from_sha512_hex(sha512_hex: str) -> str:
    """The C4 ID (SMPTE ST 2114) of a SHA-512 digest: ``c4`` + base58, 90 characters."""
    value = int(sha512_hex, 16)
    groups = []
    # Ten base-58 digits per division of the 512-bit number, two per table lookup within
    # them: one bignum division per digit was a percent of a small-file offload.
    pairs = _C4_PAIRS
    while value:
        value, g = divmod(value, _C4_GROUP)
        g, r0 = divmod(g, 3364)
        g, r1 = divmod(g, 3364)
        g, r2 = divmod(g, 3364)
        g, r3 = divmod(g, 3364)
        groups.append(pairs[g] + pairs[r3] + pairs[r2] + pairs[r1] + pairs[r0])
    groups.reverse()
    # Leading zero digits ("1") of the last group are dropped, then padded back as C4 says.
    return "c4" + "".join(groups).lstrip("1").rjust(C4_LENGTH - 2, "1")


_C4_GROUP = 58 ** 10
_C4_PAIRS = [a + b for a in C4_ALPHABET for b in C4_ALPHABET]  # 58 * hi + lo -> two digits


def digest_bytes(data: bytes | memoryview, algorithms: Iterable[str]) -> dict[str, str]:
    """Convenience: all digests of an in-memory byte string."""
    return {a: f(data) for a, f in _one_shots(algorithms)}


def hexdigest(algorithm: str, data: bytes | memoryview) -> str:
    """One digest text of in-memory bytes (a read-back): without a MultiHasher per file."""
    one = _ONE_SHOT.get(algorithm) or _one_shots([algorithm])[0][1]  # raises: not known
    return one(data)


# Each digest text of in-memory bytes in one call: a MultiHasher per small file (its
# validation, a dict of hash objects, an update each) cost the hash worker more Python
# time, all of it under the GIL the copy needs, than the hashing outside it.
_ONE_SHOT: dict[str, Callable[[bytes | memoryview], str]] = {
    "sha256": lambda data: hashlib.sha256(data).hexdigest(),
    "c4": lambda data: c4_from_sha512_hex(hashlib.sha512(data).hexdigest()),
    "xxh128": xxhash.xxh3_128_hexdigest,
    "sm3": lambda data: hashlib.new("sm3", data).hexdigest(),
}


def _one_shots(algorithms: Iterable[str]) -> list[tuple[str, Callable[[bytes | memoryview], str]]]:
    """(name, one-shot digest) of each of ``algorithms`` once; ValueError for one unknown."""
    wanted = tuple(dict.fromkeys(algorithms))
    unknown = [a for a in wanted if a not in _ONE_SHOT]
    if unknown:
        raise ValueError(f"unsupported hash algorithm(s): {', '.join(unknown)}")
    return [(a, _ONE_SHOT[a]) for a in wanted]


def hash_fd(fd: int, algorithms: Iterable[str], chunk_bytes: int) -> tuple[dict[str, str], int]:
    """Digests and size of what is left to read from the open file ``fd``."""
    hasher = MultiHasher(algorithms)
    size = 0
    view = memoryview(bytearray(chunk_bytes))
    while n := os.readv(fd, [view]):
        hasher.update(view[:n])
        size += n
    return hasher.digests(), size


# Algorithms that each deserve a core of their own while a file streams through; the cheap
# ones ride along with SHA-256. (SHA-512 for c4 runs at about half SHA-256's speed, SM3 at a
# fifth: run serially they, not the disk, would set the offload speed.)
_SOLO = ("c4", "sm3")
# Small files are hashed in groups: every algorithm but SM3 in one job on the shared worker,
# SM3 (a fifth of SHA-256's speed) in one on its own.
_GROUP_SOLO = ("sm3",)
# Files up to this size go through the page cache in the copying thread and are hashed in
# groups; larger ones are read and written with O_DIRECT (content_store, read_ahead).
INLINE_BELOW = 256 << 10
GROUP_FILES = 32
GROUP_BYTES = 2 << 20
"""A group of small files is handed to the workers when it holds this many files or
bytes: one hand-off (a few futex calls) per group instead of per file."""
GROUPS_IN_FLIGHT = 4
"""Groups handed over and not yet hashed before :meth:`ParallelHasher.later` waits: what
is held in memory for hashing stays below ``GROUPS_IN_FLIGHT + 1`` groups' bytes."""


class Digests(Protocol):
    """A file's digests, maybe still being computed."""

    def digests(self) -> dict[str, str]: ...


class ParallelHasher:
    """Hash worker threads (hashlib and xxhash release the GIL on large buffers), so that
    hashing runs on another core than the copy's reads, writes and bookkeeping — within a
    large file, and across small files, whose digests are only needed when their batch is
    made durable.

    Each algorithm group has a single worker, so every file's chunks are hashed in order.
    """

    def __init__(self, algorithms: Iterable[str]) -> None:
        wanted = tuple(dict.fromkeys(algorithms))
        MultiHasher(wanted)  # validates the names
        shared = [a for a in wanted if a not in _SOLO]
        self.groups = ([shared] if shared else []) + [[a] for a in wanted if a in _SOLO]
        self._workers = [ThreadPoolExecutor(1, thread_name_prefix=f"hash-{g[0]}")
                         for g in self.groups]
        grouped = [a for a in wanted if a not in _GROUP_SOLO]
        # (worker, algorithms) of a small-file group's jobs: the first worker takes every
        # algorithm but SM3 (their ~0.25 ms per 64 KiB file is the copy's own pace); SM3's
        # worker takes SM3.
        self._group_jobs = ([(self._workers[0], tuple(grouped))] if grouped else []) + [
            (w, tuple(g)) for w, g in zip(self._workers, self.groups, strict=True)
            if g[0] in _GROUP_SOLO]
        self._lock = threading.Lock()  # the open group: the copier adds, a reader may hand over
        self._open = _Group(self)
        self._in_flight: collections.deque[_Group] = collections.deque()

    def start(self) -> FileHash:
        """The digests of a new large file, fed chunk by chunk (:meth:`FileHash.update`)."""
        return FileHash([(w, MultiHasher(g))
                         for w, g in zip(self._workers, self.groups, strict=True)])

    def later(self, data: bytes) -> Digests:
        """The digests of a small file's whole content ``data`` (immutable: never copied),
        computed with the files around it. Handing each small file's one chunk to a worker
        had cost more than hashing it in the copying thread (17 futex calls per 64 KiB
        file); handing them over a group at a time costs a few calls per group, and the
        hashing (a quarter of a millisecond per 64 KiB file, c4's SHA-512 most of it) runs
        on the other core while the copy goes on. Waits when :data:`GROUPS_IN_FLIGHT`
        groups are still being hashed (memory stays bounded)."""
        with self._lock:
            group = self._open
            pending = GroupedDigests(group, len(self._group_jobs))
            group.data.append(data)
            group.slots.append(pending)
            group.bytes += len(data)
            full = len(group.data) >= GROUP_FILES or group.bytes >= GROUP_BYTES
            if full:
                self._hand_over()
        if full:
            self._throttle()
        return pending

    def _hand_over(self) -> None:
        """Submit the open group (under ``_lock``): its bytes go with the jobs only, so
        they are freed once hashed."""
        group, self._open = self._open, _Group(self)
        data, group.data = group.data, []
        group.jobs = [w.submit(_hash_group, algorithms, data, group.slots, i)
                      for i, (w, algorithms) in enumerate(self._group_jobs)]
        group.slots = []
        self._in_flight.append(group)

    def _throttle(self) -> None:
        while True:
            with self._lock:
                self._forget_hashed()
                if len(self._in_flight) <= GROUPS_IN_FLIGHT:
                    return
                oldest = self._in_flight[0]
            wait(oldest.jobs)

    def wait(self, group: _Group) -> None:
        """Wait until ``group`` is hashed, handing it over first if it is still open."""
        with self._lock:
            if group is self._open:
                self._hand_over()
            self._forget_hashed()
        for job in group.jobs:
            job.result()

    def flush(self) -> None:
        """Hand the open group over now, however few files it holds (the copy has nothing
        more for a while: its files' digests must not wait for the group to fill)."""
        with self._lock:
            if self._open.data:
                self._hand_over()
            self._forget_hashed()

    @property
    def all_handed_over(self) -> bool:
        """Whether every small file given so far is with the workers (none waits in the open
        group): reading their digests then hands no group over early."""
        return not self._open.data

    def _forget_hashed(self) -> None:
        """Drop the oldest groups already hashed (under ``_lock``)."""
        while self._in_flight and all(j.done() for j in self._in_flight[0].jobs):
            self._in_flight.popleft()

    def close(self) -> None:
        for worker in self._workers:
            worker.shutdown(wait=True)


class _Group:
    """Small files handed to the hash workers together."""

    __slots__ = ("bytes", "data", "jobs", "owner", "slots")

    def __init__(self, owner: ParallelHasher) -> None:
        self.owner = owner
        self.data: list[bytes] = []
        self.slots: list[GroupedDigests] = []
        self.bytes = 0
        self.jobs: list[Future[None]] = []


def _hash_group(algorithms: tuple[str, ...], data: list[bytes],
                slots: list[GroupedDigests], index: int) -> None:
    """On a worker: each file's digests (and their text: c4's base58 too) for one job."""
    one_shots = _one_shots(algorithms)
    for chunk, slot in zip(data, slots, strict=True):
        slot.parts[index] = {a: f(chunk) for a, f in one_shots}


class GroupedDigests:
    """A small file's digests, computed on the workers with its group's."""

    __slots__ = ("_group", "parts")

    def __init__(self, group: _Group, jobs: int) -> None:
        self._group: _Group | None = group
        self.parts: list[dict[str, str]] = [{}] * jobs  # one per job, set on the worker

    def digests(self) -> dict[str, str]:
        """Wait for the group (handed over now if still open), then the digest texts."""
        group = self._group
        if group is not None:
            group.owner.wait(group)
            self._group = None  # nothing of the group is kept once read
        out: dict[str, str] = {}
        for part in self.parts:
            out.update(part)
        return out


class FileHash:
    """A large file's digests, computed on the worker threads (each algorithm group in
    order on its single worker) as its chunks are fed."""

    def __init__(self, on_workers: list[tuple[ThreadPoolExecutor, MultiHasher]]) -> None:
        self._on_workers = on_workers
        self._last: list[Future[None]] = []

    def update(self, chunk: memoryview | bytes) -> list[Future[None]]:
        """Feed a chunk. Returns the jobs still using it: the caller keeps the buffer
        untouched until they are done."""
        self._last = [w.submit(h.update, chunk) for w, h in self._on_workers]
        return self._last

    def digests(self) -> dict[str, str]:
        """Wait for the chunks fed so far, then the digest text per algorithm."""
        for future in self._last:
            future.result()  # each worker runs in order: its last job done means all done
        out: dict[str, str] = {}
        for _worker, hasher in self._on_workers:
            out.update(hasher.digests())
        return out
