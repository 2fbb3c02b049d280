"""Content store: stored once by SHA-256, modes, one-pass digests, atomic publish,
read-back verification, a source that changes while read."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import random
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.errors import IntegrityError, StoreUnavailableError
from dockd.store import content_store, fsutil
from dockd.store.content_store import (
    ContentStore,
    SourceChangedError,
    SourceReadError,
    StagedFile,
    StoredObject,
)
from dockd.store.hashing import (
    C4_ALPHABET,
    GROUP_FILES,
    GROUPS_IN_FLIGHT,
    INLINE_BELOW,
    ParallelHasher,
    c4_from_sha512_hex,
    digest_bytes,
)
from dockd.store.mhl import MhlEntry, MhlSpool, write_session_mhl, write_spooled_mhl
from tests.store_support import publish_one


def _store(root: Path, algorithms: tuple[str, ...] = ("sha256",), verify: bool = True,
           chunk: int = 64 << 10) -> ContentStore:
    store = ContentStore(root, algorithms, chunk, verify)
    store.open()
    return store


def _copy_file(store: ContentStore, path: Path) -> StoredObject:
    fd = os.open(path, os.O_RDONLY)
    try:
        return publish_one(store, fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("rename", [True, False], ids=["renameat2", "link"])
def test_stored_once_by_sha256_with_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          rename: bool) -> None:
    """A staged file becomes its object by renameat2(RENAME_NOREPLACE), or by link() where
    the flag is refused: either way once, never replacing, with the store's modes."""
    if not rename:
        monkeypatch.setattr(content_store, "_renameat2", None)
    data = os.urandom(300_000)
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "b").write_bytes(data)
    store = _store(tmp_path / "store")
    first = _copy_file(store, tmp_path / "a")
    second = _copy_file(store, tmp_path / "b")
    assert [p.name for p in store._scratch.iterdir()] == [".lock"]  # type: ignore[union-attr]
    store.close()
    sha = hashlib.sha256(data).hexdigest()
    assert (first.sha256, first.created) == (sha, True)
    assert (second.sha256, second.created) == (sha, False)
    obj = tmp_path / "store" / first.relpath
    assert first.relpath == f"objects/sha256/{sha[:2]}/{sha}"  # one fan-out level
    assert obj.read_bytes() == data
    assert stat.S_IMODE(obj.stat().st_mode) == 0o440
    for d in (obj.parent, obj.parent.parent, tmp_path / "store" / "objects"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o750
    # nothing but the one object
    assert [p.name for p in (tmp_path / "store/objects").rglob("*") if p.is_file()] == [sha]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o337])
def test_objects_get_the_store_mode_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    """A temp file is created with the object's mode; where the umask would take bits off
    it (read at the store's opening from /proc), its mode is set after creating, as before."""
    old = os.umask(umask)
    try:
        assert fsutil.umask_clears(0o440) is bool(umask & 0o440)
        store = _store(tmp_path / "store")
        small, large = os.urandom(65_536), os.urandom(INLINE_BELOW + 1)
        for name, data in (("small", small), ("large", large)):
            (tmp_path / name).write_bytes(data)
            obj = tmp_path / "store" / _copy_file(store, tmp_path / name).relpath
            assert obj.read_bytes() == data
            assert stat.S_IMODE(obj.stat().st_mode) == 0o440
        store.close()
    finally:
        os.umask(old)


@pytest.mark.parametrize("size", [0, 1, 65_536, INLINE_BELOW, 1_000_003])
def test_all_digests_in_one_pass_match_independent_implementations(tmp_path: Path,
                                                                   size: int) -> None:
    """Small files are hashed in groups on the workers, larger ones on the workers chunk by
    chunk (1,000,003: not a multiple of the chunk size)."""
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    store = _store(tmp_path / "store", ("sha256", "sm3", "xxh128", "c4"), chunk=64 << 10)
    obj = _copy_file(store, tmp_path / "f")
    store.close()
    assert obj.digests["sha256"] == hashlib.sha256(data).hexdigest()
    assert obj.digests["sm3"] == hashlib.new("sm3", data).hexdigest()
    assert obj.digests["xxh128"] == xxhash.xxh3_128(data).hexdigest()
    assert obj.digests["c4"] == c4_from_sha512_hex(hashlib.sha512(data).hexdigest())
    assert obj.size == len(data)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.sampled_from([0, 1, 2047, 2048, 65_536, INLINE_BELOW]), min_size=1,
                      max_size=3 * GROUP_FILES),
       order=st.randoms(use_true_random=False))
def test_small_files_hashed_in_groups_give_each_file_its_own_digests(
        sizes: list[int], order: random.Random) -> None:
    """Small files handed to the workers a group at a time: each file's digests are its
    own bytes', read in any order — a file of a group still open hands it over — and no
    more groups wait to be hashed than the bound."""
    hasher = ParallelHasher(("sha256", "sm3", "xxh128", "c4"))
    try:
        files = [os.urandom(size) for size in sizes]
        pending = []
        for data in files:
            pending.append(hasher.later(data))
            assert len(hasher._in_flight) <= GROUPS_IN_FLIGHT
        indexes = list(range(len(files)))
        order.shuffle(indexes)
        for i in indexes:
            data = files[i]
            assert pending[i].digests() == {
                "sha256": hashlib.sha256(data).hexdigest(),
                "sm3": hashlib.new("sm3", data).hexdigest(),
                "xxh128": xxhash.xxh3_128(data).hexdigest(),
                "c4": c4_from_sha512_hex(hashlib.sha512(data).hexdigest())}
    finally:
        hasher.close()


def test_c4_of_empty_input_is_the_published_value() -> None:
    # C4 ID of the empty string, from the SMPTE ST 2114 reference implementation.
    assert digest_bytes(b"", ["c4"])["c4"] == (
        "c459dsjfscH38cYeXXYogktxf4Cd9ibshE3BHUo6a58hBXmRQdZrAkZzsWcbWtDg5oQstpDuni4Hirj75GEmTc1sFT")


@settings(max_examples=300, deadline=None)
@given(digest=st.one_of(st.binary(min_size=64, max_size=64),
                        st.integers(0, 64).map(lambda n: bytes(64 - n) + b"\xff" * n)))
def test_c4_base58_equals_the_digit_by_digit_conversion(digest: bytes) -> None:
    """The C4 text is made ten base-58 digits per bignum division: the same text as one
    division per digit (ST 2114's own description), leading zero digits included."""
    value, digits = int.from_bytes(digest, "big"), ""
    while value:
        value, rem = divmod(value, 58)
        digits = C4_ALPHABET[rem] + digits
    assert c4_from_sha512_hex(digest.hex()) == "c4" + digits.rjust(88, "1")


def test_no_temp_file_left_after_success_or_failure(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 1000)
    store = _store(tmp_path / "store")
    _copy_file(store, tmp_path / "f")
    scratch = store._scratch
    assert scratch is not None
    assert [p.name for p in scratch.iterdir()] == [".lock"]
    # a failing source: a directory fd is not a regular file
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    with pytest.raises(SourceReadError) as info:
        publish_one(store, fd)
    os.close(fd)
    assert info.value.reason == "not_regular"
    assert [p.name for p in scratch.iterdir()] == [".lock"]
    store.close()
    # no temp data: only the store's lock files (the publication lock since a batch was published)
    assert sorted(p.name for p in (tmp_path / "store/tmp").iterdir()) == [".publish.lock",
                                                                         ".setup.lock"]


def test_stale_scratch_of_a_dead_process_is_removed_but_a_live_one_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "store"
    live = _store(root)
    dead = root / "tmp" / "99999-deadbeef"
    dead.mkdir()
    (dead / ".lock").touch()
    (dead / "abc.part").write_bytes(b"half a file")
    no_lock = root / "tmp" / "99998-cafe"
    no_lock.mkdir()
    other = _store(root)
    assert not dead.exists() and not no_lock.exists()
    assert live._scratch is not None and live._scratch.exists()
    other.close()
    live.close()


@pytest.mark.parametrize("readback_hash", ["xxh128", "sha256"])
def test_read_back_mismatch_is_an_integrity_error(tmp_path: Path, readback_hash: str) -> None:
    store = ContentStore(tmp_path / "store", ("sha256",), 64 << 10, True, readback_hash)
    store.open()
    held, written = b"what the disk holds", b"what was written!!"
    (tmp_path / "t").write_bytes(held)
    wrong = StagedFile(tmp_path / "t", digest_bytes(written, ["sha256", readback_hash]), len(held))
    with pytest.raises(IntegrityError, match=f"read-back.*{readback_hash}"):
        store.verify_staged(wrong)
    longer = StagedFile(tmp_path / "t", digest_bytes(held[:-1], ["sha256", readback_hash]),
                        len(held) - 1)
    with pytest.raises(IntegrityError, match="read-back"):
        store.verify_staged(longer)  # the disk gives back a byte more than was written
    right = StagedFile(tmp_path / "t", digest_bytes(held, ["sha256", readback_hash]), len(held))
    store.verify_staged(right)
    store.close()


@pytest.mark.parametrize(("size", "direct"), [
    (65_536, True), (INLINE_BELOW + 40_000, True), (INLINE_BELOW + 40_000, False),
], ids=["small", "larger, O_DIRECT", "larger, no direct I/O"])
def test_the_read_back_reads_the_disk_not_the_files_cached_pages(
        tmp_path: Path, loop_mounts, size: int, direct: bool) -> None:  # type: ignore[no-untyped-def]
    """The read-back must read the medium: a staged file's bytes are changed on the disk
    under the file system (its cached pages keep the copy's bytes); the read-back — with
    O_DIRECT for a larger file, through the cache after dropping the file's pages for a
    small one or where the file system has no direct I/O — sees the change."""
    mnt = loop_mounts.make(32)
    store = _store(mnt / "store", algorithms=("sha256", "xxh128"))
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        staged = store.stage(fd)
    finally:
        os.close(fd)
    assert staged.digests["sha256"] == hashlib.sha256(data).hexdigest()
    store.sync()
    assert Path(staged.tmp_path).read_bytes() == data  # in the page cache (larger files are
    # written with O_DIRECT: read once to put them there)
    extents = subprocess.run(["filefrag", "-v", staged.tmp_path], capture_output=True,
                             text=True, check=True).stdout
    block = int(re.search(r"blocks of (\d+) bytes", extents).group(1))  # type: ignore[union-attr]
    first = int(re.search(r"^\s*0:\s+0\.\.\s*\d+:\s+(\d+)\.\.", extents,  # type: ignore[union-attr]
                          re.M).group(1))
    with open(loop_mounts.base / f"{mnt.name}.img", "r+b") as image:
        image.seek(first * block)
        image.write(bytes(512))  # the disk now holds other bytes at the file's start
    assert Path(staged.tmp_path).read_bytes() == data  # the page cache still has the copy
    store._readback_direct = direct
    with pytest.raises(IntegrityError, match="read-back"):
        store.verify_staged(staged)
    store.discard(staged)
    store.close()


def test_verify_after_copy_reads_the_written_file_back(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f").write_bytes(b"y" * 100_000)
    calls: list[int] = []
    for verify, expected in ((True, 1), (False, 0)):
        calls.clear()
        store = _store(tmp_path / f"store{verify}", verify=verify)
        real = store.verify_staged_all

        def spy(staged: list[StagedFile], real=real):  # type: ignore[no-untyped-def]
            calls.extend(s.size for s in staged)
            return real(staged)

        monkeypatch.setattr(store, "verify_staged_all", spy)
        _copy_file(store, tmp_path / "f")
        store.close()
        assert len(calls) == expected


def test_appended_while_read_is_never_stored_under_a_wrong_hash(tmp_path: Path) -> None:
    """A writer thread appends during the copy: either a SourceChangedError, or a stored
    object whose name is the SHA-256 of exactly its bytes."""
    src = tmp_path / "growing.mp4"
    src.write_bytes(os.urandom(4 << 20))
    store = _store(tmp_path / "store", chunk=64 << 10)
    stop = threading.Event()

    def writer() -> None:
        with open(src, "ab") as fh:
            while not stop.is_set():
                fh.write(os.urandom(4096))
                fh.flush()
                time.sleep(0.0005)

    changed = 0
    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(5):
            try:
                obj = _copy_file(store, src)
            except SourceChangedError:
                changed += 1
                continue
            stored = (tmp_path / "store" / obj.relpath).read_bytes()
            assert hashlib.sha256(stored).hexdigest() == obj.sha256
            assert len(stored) == obj.size
    finally:
        stop.set()
        t.join()
    assert changed >= 1  # the writer really did race the reader
    scratch = store._scratch
    assert scratch is not None and [p.name for p in scratch.iterdir()] == [".lock"]
    store.close()


def test_change_during_read_raises_source_changed(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"a" * (1 << 20))
    store = _store(tmp_path / "store", chunk=64 << 10)
    fd = os.open(src, os.O_RDONLY)
    seen = []

    def progress(n: int) -> None:
        if not seen:
            with open(src, "ab") as fh:
                fh.write(b"more")
        seen.append(n)

    with pytest.raises(SourceChangedError):
        publish_one(store, fd, progress)
    os.close(fd)
    assert not any((tmp_path / "store/objects").rglob("*.part"))
    assert not [p for p in (tmp_path / "store/objects").rglob("*") if p.is_file()]
    store.close()


def _is_direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)


@pytest.mark.parametrize(("size", "chunk", "stays_direct"), [
    (2 << 20, 1 << 20, True),
    ((2 << 20) + 4097, 1 << 20, True),  # the tail is asked for to a whole block
    (INLINE_BELOW + 1, 1 << 20, True),
    ((2 << 20) + 4097, 100_000, False),  # unaligned offsets: the page cache takes over
])
def test_larger_files_are_read_past_the_page_cache_byte_exact(
        tmp_path: Path, size: int, chunk: int, stays_direct: bool) -> None:
    """Files over INLINE_BELOW are read with O_DIRECT (just written, so still dirty in the
    page cache: the kernel must flush them first); what direct I/O refuses falls back."""
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    store = _store(tmp_path / "store", algorithms=("sha256", "c4"), chunk=chunk)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        obj = publish_one(store, fd)
        assert _is_direct(fd) == stays_direct
    finally:
        os.close(fd)
        store.close()
    assert (tmp_path / "store" / obj.relpath).read_bytes() == data
    assert obj.digests == digest_bytes(data, ["sha256", "c4", "xxh128"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(min_value=INLINE_BELOW - 5000, max_value=3 << 20),
       chunk=st.sampled_from([64 << 10, 100_000, 1 << 20]), seed=st.integers(0, 2**32 - 1))
def test_any_size_and_chunk_stores_exact_bytes_under_their_hash(size: int, chunk: int,
                                                                seed: int) -> None:
    """Around and past the direct-I/O threshold, with aligned and unaligned chunk sizes:
    what is stored is the source's bytes, named by their SHA-256, with the read-back on."""
    data = random.Random(seed).randbytes(size)
    base = Path(tempfile.mkdtemp(prefix="dockd-size-"))
    try:
        (base / "f").write_bytes(data)
        store = _store(base / "store", chunk=chunk)
        try:
            obj = _copy_file(store, base / "f")
        finally:
            store.close()
        assert obj.sha256 == hashlib.sha256(data).hexdigest() and obj.size == size
        assert (base / "store" / obj.relpath).read_bytes() == data
    finally:
        shutil.rmtree(base)


def test_a_store_made_with_two_fan_out_levels_keeps_them(tmp_path: Path) -> None:
    """Stores in the field were made with ``ab/cd/abcd…``: such a store (it has a catalog,
    no ``objects.fanout``) opens with its two levels and goes on using them; a new store
    gets one level; the choice is written down once; a value dockd does not know stops it."""
    old = tmp_path / "old"
    (old / "objects" / "sha256" / "ab" / "cd").mkdir(parents=True)
    (old / "catalog.sqlite").touch()
    (tmp_path / "f").write_bytes(b"evidence")
    sha = hashlib.sha256(b"evidence").hexdigest()
    for root, levels in ((old, 2), (tmp_path / "new", 1)):
        store = _store(root)
        obj = _copy_file(store, tmp_path / "f")
        store.close()
        assert obj.relpath == "objects/sha256/" + "".join(
            f"{sha[2 * i:2 * i + 2]}/" for i in range(levels)) + sha
        assert (root / "objects.fanout").read_text() == f"{levels}\n"
        again = _store(root)  # the written choice wins from now on
        assert again.object_relpath(sha) == obj.relpath
        again.close()
    (old / "objects.fanout").chmod(0o640)
    (old / "objects.fanout").write_text("3\n")
    with pytest.raises(StoreUnavailableError, match="fan-out"):
        _store(old)


def test_spooled_mhl_is_the_manifest_of_its_entries_across_block_ends(tmp_path: Path) -> None:
    """The spool keeps finished ``<hash>`` elements and reads them back in 1 MiB blocks:
    names of multi-byte characters cut by a block's end come out whole, and the manifest
    is byte for byte the one made from the entries themselves."""
    now = dt.datetime(2026, 12, 7, 16, 0, 0, 123456, tzinfo=dt.UTC)
    entries = [MhlEntry(f"DCIM/{'王&<>' * (i % 97)}{i}.MP4", i, now - dt.timedelta(days=1),
                        {"xxh128": f"{i:032x}", "c4": "c4" + "1" * 88}, now)
               for i in range(4000)]  # about 2.5 MiB of elements
    spool = MhlSpool(tmp_path, ["xxh128", "c4"])
    for entry in entries:
        spool.append(entry)
    spooled = write_spooled_mhl(tmp_path / "spooled", spool, now)
    spool.close()
    listed = write_session_mhl(tmp_path / "listed", entries, ["xxh128", "c4"], now)
    assert spooled == listed
    (a,), (b,) = ((tmp_path / d / "ascmhl").glob("0001_*.mhl") for d in ("spooled", "listed"))
    assert a.read_bytes().replace(b"spooled", b"listed") == b.read_bytes()
    assert a.read_text(encoding="utf-8").count("<hash>") == 4000
