"""Several digests of one byte stream, computed in a single pass.

SHA-256 addresses the store; SM3 (GB/T 32905) is offered for Chinese evidence rules;
xxh128 and c4 are what ASC MHL manifests accept (ASC MHL has no SHA-256).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
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


def _new(algorithm: str) -> _Hash:
    if algorithm == "xxh128":
        return xxhash.xxh3_128()
    if algorithm == "c4":
        return hashlib.sha512()
    return hashlib.new(algorithm)


def c4_from_sha512_hex(sha512_hex: str) -> str:
    """The C4 ID (SMPTE ST 2114) of a SHA-512 digest: ``c4`` + base58, 90 characters."""
    value = int(sha512_hex, 16)
    digits = []
    while value:
        value, rem = divmod(value, 58)
        digits.append(C4_ALPHABET[rem])
    return "c4" + "".join(reversed(digits)).rjust(C4_LENGTH - 2, "1")


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

    def start(self, inline: bool = False, one_worker: bool = False) -> FileHash:
        """The digests of a new file. ``inline``: hash in the caller's thread (when the
        result is needed at once and the file is small, waking a worker costs more).
        ``one_worker``: every algorithm on the first worker, one wake-up per chunk instead
        of one per worker (for a small file, the wake-ups cost more than the hashing)."""
        if inline:
            return FileHash([MultiHasher(g) for g in self.groups], None)
        if one_worker:
            return FileHash([MultiHasher([a for g in self.groups for a in g])], self._workers[:1])
        return FileHash([MultiHasher(g) for g in self.groups], self._workers)

    def close(self) -> None:
        for worker in self._workers:
            worker.shutdown(wait=True)


class FileHash:
    """One file's digests, computed on the workers (or inline) as chunks are fed."""

    def __init__(self, hashers: list[MultiHasher],
                 workers: list[ThreadPoolExecutor] | None) -> None:
        self._hashers = hashers
        self._workers = workers
        self._last: list[Future[None]] = []

    def update(self, chunk: memoryview) -> list[Future[None]]:
        """Feed a chunk. Returns the jobs still using it: the caller keeps the buffer
        untouched until they are done."""
        if self._workers is None:
            for hasher in self._hashers:
                hasher.update(chunk)
            return []
        self._last = [w.submit(h.update, chunk)
                      for w, h in zip(self._workers, self._hashers, strict=True)]
        return self._last

    def digests(self) -> dict[str, str]:
        """Wait for the chunks fed so far, then the digest text per algorithm."""
        for future in self._last:
            future.result()  # each worker runs in order: its last job done means all done
        out: dict[str, str] = {}
        for hasher in self._hashers:
            out.update(hasher.digests())
        return out
