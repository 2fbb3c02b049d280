"""Shared pytest fixtures.

Several areas of dockd add fixtures here; keep each one generic, documented and named for
what it gives. The evidence-core fixtures are in the section "evidence store" below.
"""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from dockd.clock import SystemClock
from dockd.config import Config, parse_config
from dockd.store.evidence import EvidenceStore, open_store

REPO_ROOT = Path(__file__).resolve().parent.parent

# No per-example deadline: it is a timed assert, and on a 2-core machine shared with the
# daemon tests' subprocesses a first example (schema compilation, imports) can take 300 ms.
# Speed is measured in bench/, never asserted in tests.
settings.register_profile("dockd", deadline=None)
settings.load_profile("dockd")


def pytest_configure(config: pytest.Config) -> None:
    """The tests run as root acting for no one: under ``sudo ./dev test`` the CLI would
    otherwise check the roles of the user sudo ran it for (dockd.identity). A test that
    wants sudo's variables sets them itself."""
    for name in ("SUDO_UID", "SUDO_GID", "SUDO_USER", "DOCKD_ACTOR"):
        os.environ.pop(name, None)


# An xdist worker starts with COLUMNS=80 and LINES=24 in its environment, which a serial run
# does not have; every program a test starts would inherit them and draw at 80×24 whatever
# its terminal's size (the console in a 160-column tmux pane did). Workers drop them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


# ---------------------------------------------------------------------------------------
# running the real CLI
# ---------------------------------------------------------------------------------------


def run_dockd(args: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None,
              timeout: float = 60, user: int | None = None, groups: Sequence[int] = (),
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``dockd ARGS`` as a real subprocess of this venv's Python and capture its output.

    ``env`` entries are added to (not replacing) the environment, minus ``DOCKD_CONFIG``
    unless given. ``user`` runs it as that uid/gid through ``setpriv`` (root ignores file
    modes, so permission tests need an unprivileged user), with ``groups`` as its only
    supplementary groups (e.g. a role group of :func:`role_groups`).
    """
    full_env = {k: v for k, v in os.environ.items() if k != "DOCKD_CONFIG"}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(REPO_ROOT)
    cmd: list[str] = [sys.executable, "-m", "dockd.cli", *map(str, args)]
    if user is not None:
        supplementary = f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", supplementary, *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=cwd or REPO_ROOT, check=False)


@pytest.fixture(scope="session")
def role_groups() -> dict[str, int]:
    """The role groups of dockd.identity (``dockd-admin``, ``dockd-audit``) by name, with
    their gids. Made when the machine has none, and left in place: they are what
    ``dockd install`` makes, and another test run on the machine may be using them."""
    gids = {}
    for name in ("dockd-admin", "dockd-audit"):
        try:
            gids[name] = grp.getgrnam(name).gr_gid
        except KeyError:
            subprocess.run(["groupadd", "--system", name], capture_output=True, check=False)
            gids[name] = grp.getgrnam(name).gr_gid  # made here, or by a run beside this one
    return gids


@pytest.fixture
def dockd_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The :func:`run_dockd` helper, as a fixture."""
    return run_dockd


# ---------------------------------------------------------------------------------------
# evidence store
# ---------------------------------------------------------------------------------------


def write_tree(root: Path, files: Mapping[str | bytes, bytes]) -> Path:
    """Create ``root`` with ``files`` (relative path, str or raw bytes → content)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        raw = rel if isinstance(rel, bytes) else rel.encode()
        path = os.path.join(os.fsencode(root), raw)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
    return root


@pytest.fixture
def make_tree() -> Callable[[Path, Mapping[str | bytes, bytes]], Path]:
    """The :func:`write_tree` helper, as a fixture: ``make_tree(root, {path: bytes})``."""
    return write_tree


def store_config_for(store_dir: Path, **ingest: Any) -> Config:
    """A Config for ``store_dir`` built through the real parser; ``ingest`` sets ``[ingest]``."""
    return parse_config({"dock": {"id": "dock-test", "store_dir": str(store_dir)},
                         "ingest": dict(ingest)})


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """Where a test's evidence store lives (not created: dockd creates it)."""
    return tmp_path / "store"


@pytest.fixture
def open_test_store(store_dir: Path) -> Iterator[Callable[..., EvidenceStore]]:
    """``open_test_store(**ingest_settings)`` opens the test's store with the real
    ``open_store``; every store opened is closed at teardown."""
    opened: list[EvidenceStore] = []

    def opener(directory: Path | None = None, **ingest: Any) -> EvidenceStore:
        store = open_store(store_config_for(directory or store_dir, **ingest), SystemClock())
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


def write_config_file(path: Path, text: str) -> Path:
    """Write a TOML config file and return its path."""
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------
# real file systems (we run as root; loop mounts work on this machine)
# ---------------------------------------------------------------------------------------


class LoopMounts:
    """Creates small loop-mounted file systems; unmounts and removes them at teardown."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.mounts: list[Path] = []

    def make(self, size_mib: int, fstype: str = "ext4", name: str | None = None) -> Path:
        """A fresh ``fstype`` file system of ``size_mib`` MiB, mounted read-write.

        Fails the test (never skips) when the machine cannot do it: the suite relies on it.
        """
        name = name or f"fs-{uuid.uuid4().hex[:8]}"
        image = self.base / f"{name}.img"
        mnt = self.base / name
        mnt.mkdir(parents=True)
        with open(image, "wb") as fh:
            fh.truncate(size_mib << 20)
        mkfs = {"ext4": ["mkfs.ext4", "-q", "-F", "-m", "0"], "xfs": ["mkfs.xfs", "-q", "-f"],
                "btrfs": ["mkfs.btrfs", "-q", "-f"]}[fstype]
        self._must([*mkfs, str(image)], f"mkfs.{fstype}")
        self._must(["mount", "-o", "loop", str(image), str(mnt)], "mount -o loop")
        self.mounts.append(mnt)
        return mnt

    def remount(self, mnt: Path, options: str) -> None:
        """``mount -o remount,OPTIONS``."""
        self._must(["mount", "-o", f"remount,{options}", str(mnt)], f"remount {options}")

    def bind(self, source: Path, target: Path) -> None:
        """``mount --bind SOURCE TARGET`` (unmounted at teardown)."""
        self._must(["mount", "--bind", str(source), str(target)], "mount --bind")
        self.mounts.append(target)

    def cleanup(self) -> None:
        for mnt in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)
        self.mounts.clear()

    @staticmethod
    def _must(cmd: list[str], what: str) -> None:
        if shutil.which(cmd[0]) is None:
            pytest.fail(f"{cmd[0]} is not installed; ./dev installs it (needed for {what})")
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"{what} failed (this suite runs as root on a machine with loop "
                        f"devices): {' '.join(cmd)}: {done.stderr.strip()}")


@pytest.fixture
def loop_mounts(tmp_path: Path) -> Iterator[LoopMounts]:
    """Factory of loop-mounted file systems (see :class:`LoopMounts`)."""
    mounts = LoopMounts(tmp_path / "loop")
    mounts.base.mkdir()
    try:
        yield mounts
    finally:
        mounts.cleanup()


# ---------------------------------------------------------------------------------------
# outside tools
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ascmhl_debug() -> Path:
    """The ASC MHL reference tool, installed by ./dev into .venv-tools (own Click pin).

    Missing means the environment is incomplete: fail with the fix, never skip.
    """
    tool = REPO_ROOT / ".venv-tools" / "bin" / "ascmhl-debug"
    if not os.access(tool, os.X_OK):
        pytest.fail(f"{tool} is missing: run ./dev test (it installs ascmhl==1.2 into .venv-tools)")
    return tool


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    """Path of ffmpeg (installed by ./dev); fails clearly when absent."""
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.fail("ffmpeg is missing: run ./dev test (it apt-installs ffmpeg)")
    return path


# ---------------------------------------------------------------------------------------
# parallel runs (pytest-xdist: ./dev test runs three workers with --dist loadgroup)
# ---------------------------------------------------------------------------------------

# Test files whose tests share something that must be set up once or used by one test at a
# time. Each group is one unit of work: one worker runs its tests one after the other. Every
# other test is a unit of its own (it uses its own tmp dir, free ports, losetup -f).
# (xdist's own xdist_group mark does not reach its scheduler under pytest 9: xdist renames
# the node through an attribute pytest 9 no longer reads, so the groups are named here.)
# The HIL files are one group too, by their names (serial_group).
SERIAL_GROUPS: dict[str, str] = {
    # the package and the Debian root are built once (module fixtures, one cache file)
    "tests/test_deb_package.py": "deb",
    # one bureau (daemons, broker, ledger, TLS server) and one browser for the module
    "tests/test_ledger_web.py": "ledger-web",
    # each test takes "the first free loop number from 240": two at once could take the same
    "tests/test_udev_netlink.py": "private-loop-devices",
    # the module makes and removes users with fixed names (dkt-*); the role groups are made
    # once per machine (role_groups), so their two users run in turn
    "tests/test_operator_roles.py": "role-users",
    "tests/test_store_damaged.py": "role-users",
}


HIL_GROUP = "hil-guest"


def serial_group(nodeid: str) -> str | None:
    """The group of a test (by its node id), None for a test that runs alone. The
    tests/hil/test_hil_*.py files share one guest, in an order (tests/hil/conftest.py), and
    one guest at a time fits 2 cores, so they are all one group."""
    path = nodeid.split("::", 1)[0]
    if path.startswith("tests/hil/test_hil_"):
        return HIL_GROUP
    return SERIAL_GROUPS.get(path)


# The groups that are the longest chains, handed out before everything else so that they
# start at once, each on a worker of its own, while the short tests fill in around them:
# the HIL guest (minutes of emulation) and the package build. (xdist would hand out the
# units with the most tests first, which says nothing of how long they take.)
FIRST_GROUPS = (HIL_GROUP, "deb")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadgroup``: each SERIAL_GROUPS group is one unit, every other test alone;
    the FIRST_GROUPS first, then xdist's order."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return serial_group(nodeid) or nodeid

        def _assign_work_unit(self, node: Any) -> None:
            for group in reversed(FIRST_GROUPS):
                if group in self.workqueue:
                    self.workqueue.move_to_end(group, last=False)
            super()._assign_work_unit(node)

    return GroupScheduling(config, log)


# Beside the HIL guest, a worker's tests (and the daemons, brokers and commands they start)
# run at a much lower CPU priority: the guest is QEMU emulating a machine, the longest chain
# of a parallel run, and its scenarios wait on the guest's own timing; on 2 cores it must not
# be the one that waits for a core. Only the order in which the cores serve them changes.
# At 15 (weight 36 against the guest's 1024) two other workers fill what the guest leaves
# idle, and the scenarios take the time they take alone; at 5 (weight 335) a third worker
# made them 1.6-2x slower (docs/BENCHMARKS.md, "The test suite").
NICE_BESIDE_HIL = 15


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """In an xdist worker: priority 0 for a HIL test, NICE_BESIDE_HIL for any other (set
    before the test's fixtures start their processes, which inherit it)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    wanted = 0 if serial_group(item.nodeid) == HIL_GROUP else NICE_BESIDE_HIL
    if os.getpriority(os.PRIO_PROCESS, 0) != wanted:
        os.setpriority(os.PRIO_PROCESS, 0, wanted)  # back to 0 needs root: the suite runs as root
