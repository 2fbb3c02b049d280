"""A damaged catalog or a store the user may not read: one line, never a traceback.

catalog, log and ingest exit 73 with ``dockd: error: the catalog … is damaged (…); restore
it from …``; verify reports the damage as an integrity problem (exit 1). A user who may not
read the store gets exit 73 naming the path that stopped them and the group to join.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.cli import main
from tests.conftest import run_dockd, write_tree

NOBODY = 65534
COMMANDS = (["catalog", "--json"], ["catalog"], ["log"], ["log", "--json"], ["verify", "--json"])
DAMAGED = "is damaged ("
RESTORE = "restore it from the store's backup"


@pytest.fixture(scope="module")
def real_store() -> Iterator[tuple[Path, Path]]:
    """(store, source): a store made by the CLI (two sessions, a verify: checkpoints) and
    a source volume to ingest again."""
    root = Path(tempfile.mkdtemp(prefix="dockd-damaged-"))
    src = write_tree(root / "src", {f"DCIM/{i:03d}.MP4": os.urandom(300 + 97 * i)
                                    for i in range(12)})
    store = root / "store"
    for args in (["ingest", src, "--recorder", "REC-1"], ["ingest", src, "--recorder", "REC-2"],
                 ["verify"]):
        done = run_dockd([*args, "--store", store])
        assert done.returncode == 0, done.stderr
    yield store, src
    shutil.rmtree(root, ignore_errors=True)


def _damaged_copy(store: Path, where: Path, damage: Callable[[bytearray], bytes]) -> Path:
    copy = where / "store"
    shutil.copytree(store, copy)
    catalog = copy / "catalog.sqlite"
    catalog.write_bytes(damage(bytearray(catalog.read_bytes())))
    return copy


def _header(data: bytearray) -> bytes:
    data[:100] = b"\x00" * 100
    return bytes(data)


def _truncated(data: bytearray) -> bytes:
    return bytes(data[: len(data) // 3])


def _schema_flipped(data: bytearray) -> bytes:
    # sqlite_master's cells hold the schema's text: a flipped byte in each statement.
    offset = data.find(b"CREATE")
    assert offset > 0
    while offset > 0:
        data[offset + 1] ^= 0x5A
        offset = data.find(b"CREATE", offset + 6)
    return bytes(data)


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("dockd: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.mark.parametrize("damage", [_header, _truncated, _schema_flipped])
def test_damaged_catalog_one_line_73_and_verify_exit_1(real_store: tuple[Path, Path],
                                                       tmp_path: Path,
                                                       damage: Callable[[bytearray], bytes]) -> None:
    store, src = real_store
    copy = _damaged_copy(store, tmp_path, damage)
    before = (copy / "catalog.sqlite").read_bytes()
    for args in (["catalog"], ["log"], ["ingest", src, "--recorder", "REC-3"]):
        done = run_dockd([*args, "--store", copy])
        assert done.returncode == 73, (args, done.stderr)
        line = _one_error_line(done.stderr)
        assert f"the catalog {copy}/catalog.sqlite {DAMAGED}" in line and RESTORE in line
    done = run_dockd(["verify", "--store", copy])
    assert done.returncode == 1, done.stderr
    line = _one_error_line(done.stderr)
    assert line.startswith("dockd: error: verification failed: the catalog") and DAMAGED in line
    zh = run_dockd(["log", "--store", copy], env={"LANG": "zh_CN.UTF-8", "LANGUAGE": "",
                                                   "LC_ALL": ""})
    assert zh.returncode == 73
    assert f"目录数据库 {copy}/catalog.sqlite 已损坏（" in _one_error_line(zh.stderr)
    # Nothing was stored: the catalog is as it was and no object was added.
    assert (copy / "catalog.sqlite").read_bytes() == before
    assert sorted(p.name for p in (copy / "objects").rglob("*") if p.is_file()) == \
        sorted(p.name for p in (store / "objects").rglob("*") if p.is_file())


def test_verify_names_damage_the_queries_do_not_touch(real_store: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    """An index page damaged: the listings still work, verify names catalog_damaged."""
    store, _src = real_store
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    conn = sqlite3.connect(copy / "catalog.sqlite")
    (root_page,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE type='index' AND "
                                "name='sightings_by_recorder'").fetchone()
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray((copy / "catalog.sqlite").read_bytes())
    start = (root_page - 1) * page_size
    data[start + 8: start + page_size] = b"\xff" * (page_size - 8)
    (copy / "catalog.sqlite").write_bytes(bytes(data))
    assert run_dockd(["catalog", "--store", copy]).returncode == 0
    done = run_dockd(["verify", "--store", copy, "--json"])
    assert done.returncode == 1, done.stderr
    (damage,) = [p for p in json.loads(done.stdout)["problems"] if p["kind"] == "catalog_damaged"]
    assert damage["subject"] == "catalog.sqlite" and f"tree page {root_page}" in damage["detail"]


@pytest.mark.parametrize("args", [["log"], ["log", "--json"]])
def test_a_custody_payload_that_is_no_longer_json_is_one_line(
        real_store: tuple[Path, Path], tmp_path: Path, args: list[str]) -> None:
    """A flipped byte inside a stored payload (SQLite still reads the page): the log says
    which record was altered, exit 1, never a JSONDecodeError traceback (seen once in the
    byte-flip property test)."""
    store, _src = real_store
    conn = sqlite3.connect(store / "catalog.sqlite")
    (payload,) = conn.execute("SELECT payload FROM custody WHERE seq = 1").fetchone()
    conn.close()

    def spoil_first_payload(data: bytearray) -> bytes:
        at = bytes(data).find(payload.encode())
        assert at > 0 and payload.startswith("{")
        data[at] = ord("x")
        return bytes(data)

    copy = _damaged_copy(store, tmp_path, spoil_first_payload)
    code, stderr = _run_main([*args, "--store", str(copy)])
    assert code == 1, stderr
    assert "seq 1 has a payload that is not JSON" in _one_error_line(stderr)


def _run_main(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, err.getvalue()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
                      min_size=1, max_size=40),
       cut=st.none() | st.floats(0, 1, exclude_max=True))
def test_byte_flips_never_a_traceback(real_store: tuple[Path, Path],
                                      flips: list[tuple[float, int]], cut: float | None) -> None:
    store, src = real_store

    def damage(data: bytearray) -> bytes:
        for where, xor in flips:
            data[int(where * len(data))] ^= xor
        return bytes(data[: int(cut * len(data))] if cut is not None else data)

    with tempfile.TemporaryDirectory() as where:
        copy = _damaged_copy(store, Path(where), damage)
        for args in [*COMMANDS, ["ingest", str(src), "--recorder", "REC-3"]]:
            code, stderr = _run_main([*args, "--store", str(copy)])  # raises on a bug
            allowed = {"verify": {0, 1}, "log": {0, 1, 73}}.get(args[0], {0, 73})
            assert code in allowed, (args, code, stderr)
            if code:
                line = _one_error_line(stderr)
                if code == 73:
                    assert DAMAGED in line and RESTORE in line, line


# -- permissions ---------------------------------------------------------------------------

@pytest.fixture
def shared_store(real_store: tuple[Path, Path]) -> Iterator[Path]:
    """A copy of the store where an unprivileged user can reach it: 0750 root:root in a
    0755 directory (pytest's tmp_path is root-only)."""
    parent = Path(tempfile.mkdtemp(prefix="dockd-perm-"))
    parent.chmod(0o755)
    store = parent / "store"
    shutil.copytree(real_store[0], store)
    yield store
    shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.parametrize("args", [["catalog"], ["log"], ["verify"], ["ingest", "/", "--recorder", "R"]])
def test_a_user_outside_the_group_is_told_which_group_to_join(shared_store: Path,
                                                               role_groups: dict[str, int],
                                                               args: list[str]) -> None:
    # An auditor (the role lets them ask) whom the store's modes stop.
    done = run_dockd([*args, "--store", shared_store], user=NOBODY,
                     groups=[role_groups["dockd-audit"]])
    assert done.returncode == 73, done.stderr
    line = _one_error_line(done.stderr)
    assert f"permission denied on {shared_store} (owner root, group root, mode 0750)" in line
    assert "for user nobody" in line
    zh = run_dockd([*args, "--store", shared_store], user=NOBODY,
                   groups=[role_groups["dockd-audit"]],
                   env={"LANG": "zh_CN.UTF-8", "LANGUAGE": "", "LC_ALL": ""})
    assert f"用户 nobody 无权访问 {shared_store}（属主 root，属组 root，权限 0750）：" in \
        _one_error_line(zh.stderr)
    if args[0] == "ingest":  # a write: only the owner may
        assert "only root may write it; run the command as root (sudo)" in line
    else:
        assert "join group root (usermod -aG root nobody" in line


def test_a_group_member_who_cannot_write_is_told_to_use_root(shared_store: Path,
                                                             role_groups: dict[str, int]) -> None:
    for path in [shared_store, *shared_store.rglob("*")]:
        os.chown(path, 0, NOBODY, follow_symlinks=False)
    for args in (["catalog"], ["verify"]):
        done = run_dockd([*args, "--store", shared_store], user=NOBODY,
                         groups=[NOBODY, role_groups["dockd-audit"]])
        assert done.returncode == 73, done.stderr
        line = _one_error_line(done.stderr)
        assert "group nogroup" in line and "run the command as root (sudo)" in line, line
        assert "join group" not in line
