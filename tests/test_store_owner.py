"""A store dockd owns: at open, the store's directories (and its top files) must belong to
root or the user running dockd and be writable by nobody else, and no symbolic link may be
in it; anything else is refused with exit 73 naming the path, before anything is written."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dockd.errors import StoreUnavailableError
from dockd.records.retention import RetentionPolicy, prune
from dockd.store.evidence import EvidenceStore
from dockd.store.ingest import Ingestor
from tests.records_support import T0, SettableClock, ingest, open_clocked_store

Cli = Callable[..., subprocess.CompletedProcess[str]]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]
OTHER_UID = 54321  # no user has it on the test machine
OTHER_GID = 54321
NOBODY = 65534


@pytest.fixture
def stored(dockd_cli: Cli, make_tree: Tree, tmp_path: Path, store_dir: Path) -> Path:
    """A store with one session of files (sessions/REC-1/…, objects/sha256/xx/…)."""
    src = make_tree(tmp_path / "src", {"DCIM/A.MP4": os.urandom(4000), "DCIM/B.MP4": b"b"})
    done = dockd_cli(["ingest", src, "--recorder", "REC-1", "--store", store_dir])
    assert done.returncode == 0, done.stderr
    return store_dir


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``roots`` (links not followed) with its size and mtime."""
    out = {}
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            for name in dirs + files:
                st = os.lstat(Path(dirpath) / name)
                out[str(Path(dirpath) / name)] = (st.st_size, st.st_mtime_ns)
    return out


def test_planted_objects_link_is_refused_and_nothing_is_written_outside(
        dockd_cli: Cli, stored: Path, make_tree: Tree, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (stored / "objects").rename(elsewhere)  # what was stored, moved out of the store
    (stored / "objects").symlink_to(elsewhere)
    src = make_tree(tmp_path / "new", {"DCIM/C.MP4": os.urandom(3000)})
    before = _snapshot(stored, elsewhere)
    done = dockd_cli(["ingest", src, "--recorder", "REC-1", "--store", stored])
    assert done.returncode == 73, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("dockd: error:")]
    assert f"{stored}/objects is a symbolic link (to {elsewhere}) inside the evidence store" in line
    assert "Traceback" not in done.stderr
    assert _snapshot(stored, elsewhere) == before


def _session_folder(store: Path, out: Path) -> None:
    (store / "sessions" / "REC-1").rename(out)
    (store / "sessions" / "REC-1").symlink_to(out)


def _fanout_dir(store: Path, out: Path) -> None:
    out.mkdir()
    (store / "objects/sha256/00").symlink_to(out)


def _keys(store: Path, out: Path) -> None:
    (store / "keys").rename(out)
    (store / "keys").symlink_to(out)


def _top_file(store: Path, out: Path) -> None:
    out.write_bytes(b"1\n")
    (store / "objects.fanout").unlink()
    (store / "objects.fanout").symlink_to(out)


def _scratch(store: Path, out: Path) -> None:
    out.mkdir()
    (store / "tmp" / "1-deadbeef").symlink_to(out)


@pytest.mark.parametrize("plant", [_session_folder, _fanout_dir, _keys, _top_file, _scratch])
def test_a_link_anywhere_in_the_store_is_refused(open_test_store: Callable[..., EvidenceStore],
                                                 stored: Path, tmp_path: Path,
                                                 plant: Callable[[Path, Path], object]) -> None:
    out = tmp_path / "outside"
    plant(stored, out)
    before = _snapshot(stored, out)
    with pytest.raises(StoreUnavailableError, match=r"is a symbolic link .* inside the evidence store"):
        open_test_store()
    assert _snapshot(stored, out) == before


@pytest.mark.parametrize("where", ["", "sessions", "sessions/REC-1", "objects/sha256",
                                   "catalog.sqlite", "tmp"])
def test_a_store_path_owned_by_another_user_is_refused(
        open_test_store: Callable[..., EvidenceStore], stored: Path, where: str) -> None:
    path = stored / where
    os.chown(path, OTHER_UID, -1)
    before = _snapshot(stored)
    with pytest.raises(StoreUnavailableError,
                       match=f"{path} belongs to uid {OTHER_UID}, not to root who runs dockd"):
        open_test_store()
    assert _snapshot(stored) == before


def test_an_object_fanout_dir_owned_by_another_user_is_refused(
        open_test_store: Callable[..., EvidenceStore], stored: Path) -> None:
    leaf = next((stored / "objects/sha256").iterdir())
    os.chown(leaf, OTHER_UID, -1)
    with pytest.raises(StoreUnavailableError, match=f"directory {leaf} belongs to uid {OTHER_UID}"):
        open_test_store()


@pytest.mark.parametrize("where, mode, gid, words", [
    ("sessions", 0o777, None, "(mode 0777) is writable by everyone"),
    ("", 0o757, None, "(mode 0757) is writable by everyone"),
    ("objects", 0o770, OTHER_GID, f"(mode 0770) is writable by group {OTHER_GID}"),
    ("locks", 0o750, None, None),  # the default: accepted
    ("locks", 0o770, 0, None),  # root's group may write: accepted
])
def test_a_store_path_writable_by_others_is_refused(
        open_test_store: Callable[..., EvidenceStore], stored: Path, where: str, mode: int,
        gid: int | None, words: str | None) -> None:
    path = stored / where
    if gid is not None:
        os.chown(path, -1, gid)
    path.chmod(mode)
    if words is None:
        open_test_store().close()
        return
    before = _snapshot(stored)
    with pytest.raises(StoreUnavailableError) as caught:
        open_test_store()
    assert f"{path} {words}" in str(caught.value).replace("directory ", "")
    assert _snapshot(stored) == before


def test_a_store_owned_by_the_user_running_dockd_is_accepted(dockd_cli: Cli,
                                                             make_tree: Tree) -> None:
    """Not root: a user's own store (a developer's dock) is theirs to use."""
    top = Path(tempfile.mkdtemp(prefix="dockd-own-"))  # pytest's tmp_path is root-only
    try:
        top.chmod(0o755)
        src = make_tree(top / "src", {"A.MP4": b"a"})
        for p in (src, src / "A.MP4"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        store = top / "store"
        store.mkdir(mode=0o750)
        os.chown(store, NOBODY, NOBODY)
        for _ in range(2):  # made, then opened again with its directories in place
            done = dockd_cli(["ingest", src, "--recorder", "R1", "--store", store], user=NOBODY)
            assert done.returncode == 0, done.stderr
        # root running dockd on it is what the check is for: refused
        done = dockd_cli(["ingest", src, "--recorder", "R1", "--store", store])
        assert done.returncode == 73 and "belongs to nobody, not to root" in done.stderr
    finally:
        shutil.rmtree(top, ignore_errors=True)


# -- below a recorder's session folder: checked where a path is used, not at open ------------
# (the open's cost does not grow with the store: it lists no session folder)

def _today_folder(store: Path) -> Path:
    (day,) = (store / "sessions" / "REC-1").iterdir()  # the fixture's one session day
    return day


def test_a_link_planted_as_the_day_folder_is_refused_before_the_session_writes(
        dockd_cli: Cli, stored: Path, make_tree: Tree, tmp_path: Path) -> None:
    day = _today_folder(stored)
    elsewhere = tmp_path / "elsewhere"
    day.rename(elsewhere)
    day.symlink_to(elsewhere)
    sessions = len(list(elsewhere.iterdir()))
    src = make_tree(tmp_path / "new", {"DCIM/C.MP4": os.urandom(3000)})
    before = _snapshot(elsewhere)
    done = dockd_cli(["ingest", src, "--recorder", "REC-1", "--store", stored])
    assert done.returncode == 73, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("dockd: error:")]
    assert f"{day} is a symbolic link (to {elsewhere}) inside the evidence store" in line
    assert _snapshot(elsewhere) == before and len(list(elsewhere.iterdir())) == sessions
    log = dockd_cli(["log", "--store", stored, "--type", "session.started", "--json"])
    assert log.returncode == 0 and len(json.loads(log.stdout)) == 1  # the fixture's only


def test_a_day_folder_owned_by_another_user_is_refused_before_the_session_writes(
        open_test_store: Callable[..., EvidenceStore], stored: Path, make_tree: Tree,
        tmp_path: Path) -> None:
    day = _today_folder(stored)
    os.chown(day, OTHER_UID, -1)
    store = open_test_store()  # the open does not look there
    src = make_tree(tmp_path / "new", {"DCIM/C.MP4": os.urandom(3000)})
    with pytest.raises(StoreUnavailableError,
                       match=f"directory {day} belongs to uid {OTHER_UID}, not to root"):
        Ingestor(store, "t").ingest(src, "REC-1")
    assert store.catalog.query_one("SELECT COUNT(*) FROM sessions")[0] == 1


def _plant_in_old_session(store: Path, out: Path) -> Path:
    """The old session's DCIM folder (its links to the objects) moved out, a link left."""
    (dcim,) = (store / "sessions").glob("*/*/*/DCIM")
    dcim.rename(out)
    dcim.symlink_to(out)
    return dcim


def test_prune_removes_nothing_through_a_link_planted_in_a_session_folder(tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store = open_clocked_store(tmp_path / "store", clock)
    try:
        ingest(store, tmp_path / "src", {"DCIM/a.mp4": b"A" * 100})
        out = tmp_path / "outside"
        dcim = _plant_in_old_session(store.root, out)
        before = _snapshot(out)
        assert [p.name for p in out.iterdir()] == ["a.mp4"]  # a hard link of the object
        clock.t = T0 + dt.timedelta(days=91)
        with pytest.raises(StoreUnavailableError,
                           match=f"{dcim} is a symbolic link .* inside the evidence store"):
            prune(store, RetentionPolicy(untagged_days=90, case_days=365), False, "test")
        assert _snapshot(out) == before
    finally:
        store.close()


def test_a_redock_relinks_nothing_through_a_link_planted_in_a_session_folder(
        tmp_path: Path) -> None:
    """A pruned item docked again gets its earlier session links back: never through a link."""
    clock = SettableClock(T0)
    store = open_clocked_store(tmp_path / "store", clock)
    try:
        ingest(store, tmp_path / "src", {"DCIM/a.mp4": b"A" * 100})
        clock.t = T0 + dt.timedelta(days=91)
        assert len(prune(store, RetentionPolicy(untagged_days=90, case_days=365), False,
                         "test").deleted) == 1
        out = tmp_path / "outside"
        dcim = _plant_in_old_session(store.root, out)
        assert list(out.iterdir()) == []  # prune removed the link
        with pytest.raises(StoreUnavailableError,
                           match=f"{dcim} is a symbolic link .* inside the evidence store"):
            ingest(store, tmp_path / "src2", {"DCIM/a.mp4": b"A" * 100})
        assert list(out.iterdir()) == []
    finally:
        store.close()


def test_prune_removes_nothing_outside_the_store_through_a_catalog_path_that_climbs_out(
        tmp_path: Path) -> None:
    """A sighting's session_path altered in the catalog to climb out of the store, towards a
    hard link of the object put outside: prune refuses it, naming the altered catalog."""
    clock = SettableClock(T0)
    store = open_clocked_store(tmp_path / "store", clock)
    try:
        ingest(store, tmp_path / "src", {"DCIM/a.mp4": b"A" * 100})
        out = tmp_path / "outside"
        out.mkdir()
        (sha,) = [r[0] for r in store.catalog.query("SELECT sha256 FROM items")]
        os.link(store.content.object_path(sha), out / "a.mp4")  # the same file: prune's test
        (folder,) = [r[0] for r in store.catalog.query("SELECT folder FROM sessions")]
        climb = "../" * (folder.count("/") + 2) + "outside/a.mp4"
        with sqlite3.connect(store.catalog.path) as conn:  # as a tamperer would
            for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type ="
                                           " 'trigger' AND tbl_name = 'sightings'").fetchall():
                conn.execute(f'DROP TRIGGER "{trigger}"')
            conn.execute("UPDATE sightings SET session_path = ?", (climb,))
        clock.t = T0 + dt.timedelta(days=91)
        with pytest.raises(StoreUnavailableError, match="leaves or bends around the store: "
                           "the catalog was altered"):
            prune(store, RetentionPolicy(untagged_days=90, case_days=365), False, "test")
        assert (out / "a.mp4").read_bytes() == b"A" * 100
    finally:
        store.close()
