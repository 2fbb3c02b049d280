"""Several digests of one byte stream, computed in a single pass.

SHA-256 addresses the store; SM3 (GB/T 32905) is offered for Chinese evidence rules;
xxh128 and c4 are what ASC MHL manifests accept (ASC MHL has no SHA-256).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
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
    digits = []
    # Ten base-58 digits per division of the 512-bit number, the rest on machine-size
    # integers: one bignum division per digit was a percent of a small-file offload.
    while value:
        value, group = divmod(value, _C4_GROUP)
        for _ in range(10):
            group, rem = divmod(group, 58)
            digits.append(C4_ALPHABET[rem])
    # Leading zero digits ("1") of the last group are dropped, then padded back as C4 says.
    return "c4" + "".join(reversed(digits)).lstrip("1").rjust(C4_LENGTH - 2, "1")


_C4_GROUP = 58 ** 10


def digest_bytes(data: bytes, algorithms: Iterable[str]) -> dict[str, str]:
    """Convenience: all digests of an in-memory byte string."""
    hasher = MultiHasher(algorithms)
    hasher.update(data)
    return hasher.digests()


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
# For a small file even c4's SHA-512 runs in the caller's thread: handing its one chunk to
# a worker cost more CPU than hashing it (thread wake-ups, GIL hand-offs: 17 futex calls
# per 64 KiB file, strace). SM3, at a fifth of SHA-256's speed, keeps its worker.
_WORKER_EVEN_INLINE = ("sm3",)
# Files up to this size go through the page cache in the copying thread and are hashed in
# one worker job; larger ones are read and written with O_DIRECT (content_store, read_ahead).
INLINE_BELOW = 256 << 10


class ParallelHasher:
    """Hash worker threads (hashlib and xxhash release the GIL on large buffers), so that
    hashing overlaps the copy's reads and writes — within a large file, and across small
    files, whose digests are only needed when their batch is made durable.

    Each algorithm group has a single worker, so every file's chunks are hashed in order.
    """

    def __init__(self, algorithms: Iterable[str]) -> None:
        wanted = tuple(dict.fromkeys(algorithms))
        MultiHasher(wanted)  # validates the names
        shared = [a for a in wanted if a not in _SOLO]
        self.groups = ([shared] if shared else []) + [[a] for a in wanted if a in _SOLO]
        self._workers = [ThreadPoolExecutor(1, thread_name_prefix=f"hash-{g[0]}")
                         for g in self.groups]

    def start(self, inline: bool = False) -> FileHash:
        """The digests of a new file. ``inline`` is for a small file (one chunk or a few):
        every algorithm but SM3 runs in the caller's thread, SM3 on its worker, given the
        chunk's immutable bytes, so the caller never waits to reuse its buffer. Handing a
        small file's one chunk to a worker and waiting for the buffer to be free again had
        cost more than its hashing (the copying thread waited for it a quarter of its time,
        py-spy on 64 KiB files); handing it over without waiting still cost more CPU than
        c4's SHA-512 of it (1,000 × 64 KiB: 10 % less CPU with c4 inline)."""
        if inline:
            here = [a for g in self.groups for a in g if a not in _WORKER_EVEN_INLINE]
            solo = [(w, MultiHasher(g)) for w, g in zip(self._workers, self.groups, strict=True)
                    if g[0] in _WORKER_EVEN_INLINE]
            return FileHash([MultiHasher(here)] if here else [], solo, copy=True)
        return FileHash([], [(w, MultiHasher(g))
                             for w, g in zip(self._workers, self.groups, strict=True)])

    def close(self) -> None:
        for worker in self._workers:
            worker.shutdown(wait=True)


class FileHash:
    """One file's digests: some algorithms computed in the caller's thread as chunks are
    fed, the others on worker threads (each in order on its single worker)."""

    def __init__(self, inline: list[MultiHasher],
                 on_workers: list[tuple[ThreadPoolExecutor, MultiHasher]],
                 copy: bool = False) -> None:
        self._inline = inline
        self._on_workers = on_workers
        self._copy = copy
        self._last: list[Future[None]] = []

    def update(self, chunk: memoryview | bytes) -> list[Future[None]]:
        """Feed a chunk. Returns the jobs still using it: the caller keeps the buffer
        untouched until they are done (none when the workers were given a copy; ``bytes``
        are immutable and given as they are)."""
        for hasher in self._inline:
            hasher.update(chunk)
        if not self._on_workers:
            return []
        data: bytes | memoryview = bytes(chunk) if self._copy else chunk
        self._last = [w.submit(h.update, data) for w, h in self._on_workers]
        return [] if self._copy else self._last

    def digests(self) -> dict[str, str]:
        """Wait for the chunks fed so far, then the digest text per algorithm."""
        for future in self._last:
            future.result()  # each worker runs in order: its last job done means all done
        out: dict[str, str] = {}
        for hasher in self._inline:
            out.update(hasher.digests())
        for _worker, hasher in self._on_workers:
            out.update(hasher.digests())
        return out
