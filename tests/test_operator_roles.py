"""Operator identity and roles (issue 14 item 8), with real users and groups.

The actor of a CLI custody record comes from the OS: the real user, or under root the user
sudo names (SUDO_UID); ``--by`` is only what the operator states. Roles are the groups
dockd-admin and dockd-audit; root not acting for anyone may do everything; anyone else
without the group is refused with exit 77 and one line naming it.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockd.identity import ADMIN_GROUP, AUDIT_GROUP, Role, actor, operator, require_role
from tests.conftest import REPO_ROOT, run_dockd, write_tree

PREFIX = "dkt"  # test users: dkt-none, dkt-admin, dkt-audit


@dataclass(frozen=True)
class Users:
    none: int
    admin: int
    audit: int
    audit_gid: int


@pytest.fixture(scope="module")
def users(role_groups: dict[str, int]) -> Iterator[Users]:
    """Three users made for the test (removed after): in no group, in dockd-admin, in
    dockd-audit."""
    made_users = []
    try:
        for name, groups in (("none", []), ("admin", [ADMIN_GROUP]), ("audit", [AUDIT_GROUP])):
            user = f"{PREFIX}-{name}"
            subprocess.run(["userdel", user], capture_output=True, check=False)
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            *(["--groups", ",".join(groups)] if groups else []), user],
                           check=True)
            made_users.append(user)
        uid = {n: pwd.getpwnam(f"{PREFIX}-{n}").pw_uid for n in ("none", "admin", "audit")}
        yield Users(uid["none"], uid["admin"], uid["audit"], role_groups[AUDIT_GROUP])
    finally:
        for user in made_users:
            subprocess.run(["userdel", user], check=False)


@pytest.fixture(scope="module")
def store(users: Users) -> Iterator[Path]:
    """A store (one ingest) that members of dockd-audit may read: 0750 root:dockd-audit,
    in a directory every user can reach (pytest's tmp_path is root-only)."""
    top = Path(tempfile.mkdtemp(prefix="dockd-roles-"))
    top.chmod(0o755)
    src = write_tree(top / "src", {"DCIM/A.MP4": b"a" * 3000, "DCIM/B.MP4": b"b"})
    path = top / "store"
    done = run_dockd(["ingest", src, "--recorder", "REC-1", "--store", path])
    assert done.returncode == 0, done.stderr
    for p in [path, *path.rglob("*")]:
        os.chown(p, 0, users.audit_gid, follow_symlinks=False)
    yield path
    shutil.rmtree(top, ignore_errors=True)


def _as(uid: int, args: list[str | Path], **more: str) -> subprocess.CompletedProcess[str]:
    """``dockd ARGS`` as user ``uid`` with the groups the user database gives them."""
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKD_CONFIG", "SUDO_UID")}
    env.update(PYTHONPATH=str(REPO_ROOT), LANGUAGE="", LC_ALL="", **more)
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={pwd.getpwuid(uid).pw_gid}", "--init-groups",
           sys.executable, "-m", "dockd.cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60,
                          cwd=REPO_ROOT, check=False)


def _sudo(uid: int, args: list[str | Path], **env: str) -> subprocess.CompletedProcess[str]:
    """``dockd ARGS`` as root run for user ``uid`` by sudo (SUDO_UID set)."""
    return run_dockd(args, env={"SUDO_UID": str(uid), "SUDO_USER": pwd.getpwuid(uid).pw_name,
                                **env})


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("dockd: error:")]
    return line


READING = [["catalog"], ["log"], ["verify"], ["hold", "list"], ["case", "list"],
           ["recorders", "list"], ["key", "show"]]
CHANGING = [["hold", "add", "--recorder", "REC-1", "--reason", "r", "--by", "x"],
            ["hold", "release", "1", "--by", "x"], ["prune", "--dry-run"],
            ["case", "tag", "C-1", "--recorder", "REC-1"],
            ["recorders", "add", "REC-9", "--brand", "b", "--model", "m"], ["key", "rotate"],
            ["access", "register", "--case", "C-1", "--requester", "a", "--unit", "u",
             "--reason", "r", "--approved-by", "b"],
            ["export", "--case", "C-1", "--out", "/nonexistent/x"]]


@pytest.mark.parametrize("args", READING + CHANGING, ids=lambda a: " ".join(a[:2]))
def test_a_user_in_no_role_group_is_refused_with_77(users: Users, store: Path,
                                                    args: list[str]) -> None:
    done = _as(users.none, [*args, "--store", store])
    assert done.returncode == 77, done.stderr
    line = _error_line(done)
    group = AUDIT_GROUP if args in READING else ADMIN_GROUP
    assert f"needs group {group}" in line and f"user {PREFIX}-none is not in it" in line
    assert f"usermod -aG {group} {PREFIX}-none" in line


def test_the_refusal_speaks_the_dock_language(users: Users, store: Path) -> None:
    done = _as(users.none, ["hold", "list", "--store", store], LANG="zh_CN.UTF-8")
    assert done.returncode == 77
    assert _error_line(done) == (
        f"dockd: error: dockd hold list 需要用户组 {AUDIT_GROUP}（或 {ADMIN_GROUP}）：用户 "
        f"{PREFIX}-none 不在该组；请管理员执行 `usermod -aG {AUDIT_GROUP} {PREFIX}-none` "
        "将其加入（之后重新登录）")


@pytest.mark.parametrize("args", CHANGING, ids=lambda a: " ".join(a[:2]))
def test_an_auditor_may_not_change_records(users: Users, store: Path, args: list[str]) -> None:
    for done in (_as(users.audit, [*args, "--store", store]),
                 _sudo(users.audit, [*args, "--store", store])):  # sudo does not lift it
        assert done.returncode == 77, done.stderr
        assert f"needs group {ADMIN_GROUP}: user {PREFIX}-audit is not in it" in _error_line(done)


def test_an_auditor_reads_the_store(users: Users, store: Path) -> None:
    # The daemon keeps the catalog open: its WAL index (-shm) is there for readers to share.
    keep = sqlite3.connect(store / "catalog.sqlite")
    keep.execute("SELECT count(*) FROM items").fetchone()
    try:
        done = _as(users.audit, ["catalog", "--store", store, "--json"])
        assert done.returncode == 0, done.stderr
        assert len(json.loads(done.stdout)) == 2
        done = _as(users.audit, ["log", "--store", store])
        assert done.returncode == 0 and "file.ingested" in done.stdout
    finally:
        keep.close()


def test_the_actor_is_the_user_sudo_ran_the_command_for(users: Users, store: Path) -> None:
    """An admin through sudo: allowed, and the record's actor is them, whatever --by says
    and whatever DOCKD_ACTOR the environment carries."""
    done = _sudo(users.admin, ["hold", "add", "--recorder", "REC-1", "--reason", "court",
                               "--by", "Chief Wang", "--store", store, "--json"],
                 DOCKD_ACTOR="dockd")
    assert done.returncode == 0, done.stderr
    log = json.loads(run_dockd(["log", "--store", store, "--json", "--type", "hold.added"]).stdout)
    assert log[-1]["actor"] == f"cli:{PREFIX}-admin"
    assert log[-1]["payload"]["stated_by"] == "Chief Wang"
    done = _sudo(users.audit, ["verify", "--store", store])
    assert done.returncode == 0, done.stderr
    last = json.loads(run_dockd(["log", "--store", store, "--json"]).stdout)[-1]
    assert (last["type"], last["actor"]) == ("verify.completed", f"cli:{PREFIX}-audit")


def test_root_not_acting_for_anyone_may_do_everything(store: Path) -> None:
    done = run_dockd(["hold", "list", "--store", store])
    assert done.returncode == 0, done.stderr
    done = run_dockd(["recorders", "add", "REC-7", "--brand", "b", "--model", "m", "--store", store])
    assert done.returncode == 0, done.stderr
    last = json.loads(run_dockd(["log", "--store", store, "--json"]).stdout)[-1]
    assert (last["type"], last["actor"]) == ("recorder.enrolled", "cli:root")


def test_identity_in_process(users: Users, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKD_ACTOR", raising=False)
    monkeypatch.delenv("SUDO_UID", raising=False)
    assert operator().uid == 0 and actor() == "cli:root"
    monkeypatch.setenv("DOCKD_ACTOR", "dockd-prune")
    assert actor() == "dockd-prune"  # root's own service
    monkeypatch.setenv("SUDO_UID", str(users.audit))
    me = operator()
    assert (me.uid, me.name, me.via_sudo) == (users.audit, f"{PREFIX}-audit", True)
    assert AUDIT_GROUP in me.groups and me.may(Role.AUDIT) and not me.may(Role.ADMIN)
    assert actor() == f"cli:{PREFIX}-audit"  # DOCKD_ACTOR is not for someone sudo runs
    assert require_role(Role.AUDIT, "dockd log") == me
    monkeypatch.setenv("SUDO_UID", "0")  # sudo to root from root: root
    assert operator().uid == 0 and not operator().via_sudo
    monkeypatch.setenv("SUDO_UID", "not-a-number")
    assert operator().uid == 0
