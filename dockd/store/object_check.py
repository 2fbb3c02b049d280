"""Verification's pass over the stored files: every live item re-hashed from the disk,
every file under ``objects/`` accounted for.

One walk of the object directories in their own (sorted) order, merged with the catalog's
items read in the same order, one fan-out directory at a time: a file is read once, the
disk is read in directory order, and what is kept in memory is one directory's names and a
bounded window of files being hashed — not one entry per object. The files are hashed on
worker threads (hashlib releases the GIL), several at once, so the disk has more than one
request to serve and both cores hash; results are taken in catalog order, so the problems
come out in a stable order.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dockd.store.catalog import Catalog
from dockd.store.content_store import OBJECTS_DIR, object_relpath, read_fanout
from dockd.store.hashing import MultiHasher

_HEX = frozenset("0123456789abcdef")
_CHUNK = 1 << 20
_IN_FLIGHT_PER_WORKER = 8


@dataclass(frozen=True, slots=True)
class ObjectFinding:
    """A problem with a stored file (same kinds as :class:`dockd.store.verify.Problem`)."""

    kind: str  # missing | unreadable | altered | extra | catalog_path
    subject: str
    detail: str


@dataclass
class ObjectTally:
    items_checked: int = 0
    bytes_checked: int = 0


def check_objects(root: Path, catalog: Catalog, report: Callable[[ObjectFinding], None],
                  on_item: Callable[[int], None] | None = None,
                  workers: int | None = None) -> ObjectTally:
    """Re-hash every live item's object and report every file under ``objects/`` that no
    live item names. ``catalog`` should be a connection of the caller's thread."""
    fanout = read_fanout(root)
    tally = ObjectTally()
    rows = catalog.conn.execute("SELECT sha256, size, sm3, path FROM items"
                                " WHERE deleted_at IS NULL ORDER BY sha256")
    count = workers or max(2, min(4, (os.cpu_count() or 2) + 1))
    pool = ThreadPoolExecutor(count, thread_name_prefix="verify-hash")
    window: deque[tuple[tuple[str, int, str | None, str], Future[_Hashed]]] = deque()

    def settle() -> None:
        row, future = window.popleft()
        _judge(row, future.result(), tally, report, on_item)

    try:
        for prefix, names, items in _merge(_object_dirs(root / OBJECTS_DIR, fanout),
                                           _by_prefix(rows, fanout), fanout):
            present = set(names)
            for sha, size, sm3, path in items:
                expected = object_relpath(sha, fanout)
                if path != expected:
                    report(ObjectFinding("catalog_path", sha,
                                         f"catalog names {path}, expected {expected}"))
                if sha not in present:
                    tally.items_checked += 1
                    report(ObjectFinding("missing", sha, f"{expected} is gone"))
                    continue
                algorithms = ("sha256", "sm3") if sm3 else ("sha256",)
                window.append(((sha, size, sm3, expected),
                               pool.submit(_hash, root / expected, algorithms)))
                if len(window) >= count * _IN_FLIGHT_PER_WORKER:
                    settle()
            catalogued = {sha for sha, _size, _sm3, _path in items}
            for name in names:
                if name not in catalogued:
                    where = os.path.normpath(f"{OBJECTS_DIR}/{prefix}/{name}")
                    report(ObjectFinding("extra", name, f"{where} is not in the catalog"))
        while window:
            settle()
    finally:
        for _row, future in window:
            future.cancel()
        pool.shutdown(wait=True)
    return tally


@dataclass(frozen=True, slots=True)
class _Hashed:
    digests: dict[str, str] | None
    size: int
    error: OSError | None


def _judge(row: tuple[str, int, str | None, str], hashed: _Hashed, tally: ObjectTally,
           report: Callable[[ObjectFinding], None],
           on_item: Callable[[int], None] | None) -> None:
    sha, size, sm3, expected = row
    tally.items_checked += 1
    if hashed.error is not None:
        if isinstance(hashed.error, FileNotFoundError):
            report(ObjectFinding("missing", sha, f"{expected} is gone"))
        else:
            report(ObjectFinding("unreadable", sha, str(hashed.error)))
        return
    assert hashed.digests is not None
    tally.bytes_checked += hashed.size
    if hashed.size != size or hashed.digests["sha256"] != sha:
        report(ObjectFinding("altered", sha, f"{expected}: now {hashed.size} bytes with sha256 "
                                             f"{hashed.digests['sha256']}"))
    elif sm3 and hashed.digests["sm3"] != sm3:
        report(ObjectFinding("altered", sha, "SM3 differs"))
    if on_item is not None:
        on_item(hashed.size)


_buffers = threading.local()


def _hash(path: Path, algorithms: tuple[str, ...]) -> _Hashed:
    """On a worker: the digests and size of the file at ``path`` (no symlink followed)."""
    view: memoryview | None = getattr(_buffers, "view", None)
    if view is None:  # one buffer per worker, reused for every file it hashes
        view = _buffers.view = memoryview(bytearray(_CHUNK))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        return _Hashed(None, 0, exc)
    try:
        hasher = MultiHasher(algorithms)
        size = 0
        while n := os.readv(fd, [view]):
            hasher.update(view[:n])
            size += n
        return _Hashed(hasher.digests(), size, None)
    except OSError as exc:
        return _Hashed(None, 0, exc)
    finally:
        os.close(fd)


def _by_prefix(rows: Iterator[tuple[str, int, str | None, str]], fanout: int
               ) -> Iterator[tuple[str, list[tuple[str, int, str | None, str]]]]:
    """The catalog's items (sorted by sha256) grouped by their fan-out directory."""
    prefix, group = "", []  # type: str, list[tuple[str, int, str | None, str]]
    for row in rows:
        sha = row[0]
        here = _prefix_of(sha, fanout)
        if here != prefix and group:
            yield prefix, group
            group = []
        prefix = here
        group.append((sha, row[1], row[2], row[3]))
    if group:
        yield prefix, group


def _prefix_of(sha: str, fanout: int) -> str:
    return "/".join(sha[2 * i:2 * i + 2] for i in range(fanout))


def _object_dirs(top: Path, fanout: int, rel: str = "") -> Iterator[tuple[str, list[str]]]:
    """(``ab`` or ``ab/cd``, file names in it) for each fan-out directory, sorted; anything
    not in the fan-out's shape is given under the path it has, so it is reported extra."""
    here = top / rel if rel else top
    if fanout == 0:
        names: list[str] = []
        strays: list[str] = []
        with os.scandir(here) as it:
            for entry in it:
                (names if entry.is_file(follow_symlinks=False) else strays).append(entry.name)
        yield rel, sorted(names)
        for stray in sorted(strays):
            yield from _stray(top, here / stray)
        return
    for name in _sorted_names(here):
        path = here / name
        if not (len(name) == 2 and set(name) <= _HEX and path.is_dir()
                and not path.is_symlink()):
            yield from _stray(top, path)
            continue
        yield from _object_dirs(top, fanout - 1, f"{rel}/{name}" if rel else name)


def _stray(top: Path, path: Path) -> Iterator[tuple[str, list[str]]]:
    """Files at or below ``path``, which is not where any object lives."""
    if not path.is_dir() or path.is_symlink():
        yield str(path.parent.relative_to(top)), [path.name]
        return
    for dirpath, _dirs, files in os.walk(path):
        if files:
            yield str(Path(dirpath).relative_to(top)), sorted(files)


def _sorted_names(directory: Path) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []


def _merge(dirs: Iterator[tuple[str, list[str]]],
           items: Iterator[tuple[str, list[tuple[str, int, str | None, str]]]], fanout: int
           ) -> Iterator[tuple[str, list[str], list[tuple[str, int, str | None, str]]]]:
    """Both streams sorted by directory: one (dir, names, items) per directory either has.
    Stray directories (not of the fan-out's shape) never match an item's and sort anywhere:
    they are given with no items."""
    pending_dir = next(dirs, None)
    pending_items = next(items, None)
    while pending_dir is not None or pending_items is not None:
        if pending_dir is not None and not _is_fanout(pending_dir[0], fanout):
            yield pending_dir[0], pending_dir[1], []
            pending_dir = next(dirs, None)
        elif pending_items is None or (pending_dir is not None
                                       and pending_dir[0] < pending_items[0]):
            assert pending_dir is not None
            yield pending_dir[0], pending_dir[1], []
            pending_dir = next(dirs, None)
        elif pending_dir is None or pending_items[0] < pending_dir[0]:
            yield pending_items[0], [], pending_items[1]
            pending_items = next(items, None)
        else:
            yield pending_dir[0], pending_dir[1], pending_items[1]
            pending_dir, pending_items = next(dirs, None), next(items, None)


def _is_fanout(prefix: str, fanout: int) -> bool:
    parts = prefix.split("/")
    return len(parts) == fanout and all(len(p) == 2 and set(p) <= _HEX for p in parts)
