"""``dockd verify`` on a read-only store (an examiner's write-blocked copy), on a real
read-only bind mount: every check runs, the result and its exit code are as on a writable
store, the report says the verification could not be recorded, and not one byte of the
store changes (no custody event, no lock, no SQLite -wal/-shm file)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_dockd, write_tree

NOT_RECORDED = "is read-only: this verification could not be recorded in its custody log"


def _config(where: Path, store: Path, key: Path) -> Path:
    path = where / "dockd.toml"
    path.write_text(f'[dock]\nid = "dock-ro"\nstore_dir = "{store}"\nsigning_key = "{key}"\n')
    return path


@pytest.fixture
def made(tmp_path: Path) -> tuple[Path, Path]:
    """(store, signing key): a store made by the CLI, two sessions and a verify."""
    src = write_tree(tmp_path / "src", {f"DCIM/{i:03d}.MP4": os.urandom(400 + 131 * i)
                                        for i in range(6)})
    store, key = tmp_path / "store", tmp_path / "custody.ed25519"
    config = _config(tmp_path, store, key)
    for args in (["ingest", src, "--recorder", "REC-1"], ["ingest", src, "--recorder", "REC-2"],
                 ["verify"]):
        done = run_dockd([*args, "--config", config])
        assert done.returncode == 0, done.stderr
    return store, key


class ReadOnlyMount:
    """``src`` bind-mounted read-only at ``dst`` (the kernel refuses every write: EROFS)."""

    def __init__(self, src: Path, dst: Path) -> None:
        dst.mkdir()
        subprocess.run(["mount", "--bind", str(src), str(dst)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], check=True)
        except BaseException:
            subprocess.run(["umount", str(dst)], check=True)
            raise
        self.path = dst

    def close(self) -> None:
        subprocess.run(["umount", str(self.path)], check=True)


@pytest.fixture
def mount_ro(tmp_path: Path) -> Iterator[list[ReadOnlyMount]]:
    mounts: list[ReadOnlyMount] = []
    yield mounts
    for m in mounts:
        m.close()


def _snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: each file's SHA-256 and mode, each directory's mode."""
    out: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if path.is_file() and not path.is_symlink():
                out[rel] = f"{st.st_mode:o} {hashlib.sha256(path.read_bytes()).hexdigest()}"
            else:
                out[rel] = f"{st.st_mode:o}"
    return out


def _verify(store: Path, key: Path, where: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_dockd(["verify", "--config", _config(where, store, key), *extra])


def _error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("dockd: error:")]


def test_intact_read_only_store_reports_without_writing(made: tuple[Path, Path], tmp_path: Path,
                                                         mount_ro: list[ReadOnlyMount]) -> None:
    store, key = made
    mount_ro.append(ReadOnlyMount(store, tmp_path / "ro"))
    ro = mount_ro[0].path
    before = _snapshot(ro)
    assert "catalog.sqlite" in before and not any(n.endswith(("-wal", "-shm")) for n in before)
    done = _verify(ro, key, tmp_path)
    assert done.returncode == 0, done.stderr
    assert _error_lines(done.stderr) == []
    assert ": intact" in done.stdout and f"the store {ro} {NOT_RECORDED}" in done.stdout
    as_json = _verify(ro, key, tmp_path, "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["ok"] is True and report["recorded"] is False
    assert report["items_checked"] == 6 and report["checkpoints_checked"] >= 3
    zh = run_dockd(["verify", "--config", _config(tmp_path, ro, key)],
                   env={"LANGUAGE": "zh_CN", "LANG": "zh_CN.UTF-8"})
    assert zh.returncode == 0 and "为只读：本次校验无法记入其监管链记录" in zh.stdout, zh
    assert _snapshot(ro) == before
    # The same store writable: the verification is recorded there (and only there).
    records = len(json.loads(run_dockd(["log", "--store", store, "--json"]).stdout))
    done = _verify(store, key, tmp_path, "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["recorded"] is True
    log = json.loads(run_dockd(["log", "--store", store, "--json"]).stdout)
    assert len(log) == records + 1 and log[-1]["type"] == "verify.completed"


def test_tampered_read_only_store_exit_1_naming_each_problem(made: tuple[Path, Path],
                                                              tmp_path: Path,
                                                              mount_ro: list[ReadOnlyMount]
                                                              ) -> None:
    store, key = made
    victim = next((store / "objects").rglob("*"))
    while victim.is_dir():
        victim = next(victim.iterdir())
    data = bytearray(victim.read_bytes())
    data[10] ^= 0xFF
    victim.chmod(0o640)
    victim.write_bytes(bytes(data))
    # An attacker (triggers dropped) makes one recording's sighting vanish.
    db = sqlite3.connect(store / "catalog.sqlite", isolation_level=None)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    gone = db.execute("SELECT sha256 FROM sightings WHERE sha256 != ? LIMIT 1",
                      (victim.name,)).fetchone()[0]
    db.execute("DELETE FROM sightings WHERE sha256 = ? AND recorder = 'REC-2'", (gone,))
    db.close()
    assert not Path(f"{store}/catalog.sqlite-wal").exists()
    mount_ro.append(ReadOnlyMount(store, tmp_path / "ro"))
    ro = mount_ro[0].path
    before = _snapshot(ro)
    done = _verify(ro, key, tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"  altered: {victim.name}" in done.stdout
    assert "  unlogged_removal: seq " in done.stdout
    assert f"the store {ro} {NOT_RECORDED}" in done.stdout
    assert _error_lines(done.stderr) == [
        f"dockd: error: verification found 2 problem(s) in {ro}"], done.stderr
    report = json.loads(_verify(ro, key, tmp_path, "--json").stdout)
    assert {p["kind"] for p in report["problems"]} == {"altered", "unlogged_removal"}
    assert report["recorded"] is False
    assert _snapshot(ro) == before


def test_without_the_key_the_checkpoints_key_is_used_and_said(made: tuple[Path, Path],
                                                              tmp_path: Path,
                                                              mount_ro: list[ReadOnlyMount]
                                                              ) -> None:
    """An examiner's copy travels without the dock's private key: the checkpoints are
    checked against the key they name, and the report says which, to compare."""
    store, _key = made
    mount_ro.append(ReadOnlyMount(store, tmp_path / "ro"))
    ro = mount_ro[0].path
    before = _snapshot(ro)
    done = _verify(ro, tmp_path / "no-such.key", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "note: no signing key readable at" in done.stdout and "compare it with" in done.stdout
    assert not (tmp_path / "no-such.key").exists()  # never made
    assert _snapshot(ro) == before


def test_pending_write_ahead_log_is_read_or_refused_never_ignored(
        made: tuple[Path, Path], tmp_path: Path, mount_ro: list[ReadOnlyMount]) -> None:
    """A copy taken while the catalog's -wal held transactions not yet in the database:
    with its -shm they are read (SQLite's immutable mode would silently drop them); without
    it, one line, exit 73, nothing written."""
    store, key = made
    src = write_tree(tmp_path / "src2", {"DCIM/NEW.MP4": os.urandom(999)})
    reader = sqlite3.connect(store / "catalog.sqlite", isolation_level=None)
    try:
        reader.execute("BEGIN")  # a read snapshot: the ingest's WAL cannot be checkpointed
        reader.execute("SELECT COUNT(*) FROM items").fetchone()
        done = run_dockd(["ingest", src, "--recorder", "REC-3", "--config",
                          _config(tmp_path, store, key)])
        assert done.returncode == 0, done.stderr
        copy = tmp_path / "copy"  # cp -a: the session folders' hard links stay links
        subprocess.run(["cp", "-a", str(store), str(copy)], check=True)
        reader.execute("COMMIT")
    finally:
        reader.close()
    assert (copy / "catalog.sqlite-wal").stat().st_size > 0
    bare = tmp_path / "bare"
    subprocess.run(["cp", "-a", str(copy), str(bare)], check=True)
    (bare / "catalog.sqlite-shm").unlink()
    mount_ro.append(ReadOnlyMount(copy, tmp_path / "ro"))
    mount_ro.append(ReadOnlyMount(bare, tmp_path / "ro-bare"))
    ro, ro_bare = mount_ro[0].path, mount_ro[1].path
    before, before_bare = _snapshot(ro), _snapshot(ro_bare)
    done = _verify(ro, key, tmp_path, "--json")
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout)["items_checked"] == 7  # the WAL's new item is in
    done = _verify(ro_bare, key, tmp_path)
    assert done.returncode == 73, done.stderr
    assert _error_lines(done.stderr) == [
        f"dockd: error: the catalog {ro_bare}/catalog.sqlite is on a read-only file system and"
        f" its write-ahead log ({ro_bare}/catalog.sqlite-wal, "
        f"{(ro_bare / 'catalog.sqlite-wal').stat().st_size} bytes) holds transactions that "
        "cannot be read there without its -shm file; copy the store (cp -a) to writable media "
        "and verify the copy"]
    assert _snapshot(ro) == before and _snapshot(ro_bare) == before_bare
