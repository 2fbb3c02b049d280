"""The Debian package in a fresh Debian 12 root (issue 15, part 1).

``packaging/build-deb.sh`` builds the .deb from this tree; mmdebstrap builds a minimal
bookworm root from Debian's archive with nothing but the package's declared dependencies
(plus man-db, which ``systemd-analyze verify`` uses to check the units' ``man:`` pages).
Inside that root, with no network (``unshare --net``): ``dpkg -i``, ``dockd --version``, the
users, groups, modes and enabled units the maintainer scripts promise, every bundled shared
library resolvable, ``systemd-analyze verify`` of every installed unit, an offline ingest
and verify, and ``dpkg --purge`` leaving the root as it was (but the evidence store, which
is kept and named).

The root is cached as a tarball in ``$DOCKD_TEST_CACHE`` (default ``~/.cache/dockd``), keyed
by the package's dependencies, so only the first run downloads (about a minute); each test
run unpacks a fresh copy. ``DOCKD_TEST_DEB=path.deb`` tests a package built beforehand
instead of building one (about two minutes, most of it pip and compression).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockd import __version__
from dockd.cli import build_parser
from dockd.manpages import _subcommands
from tests.conftest import REPO_ROOT

pytestmark = [
    pytest.mark.deb,
    # Minutes, not seconds: out of the quick suite (-m "not slow"); ./dev test and CI run it.
    pytest.mark.slow,
    # Building the package (and, the first time, the root) happens in the first test's setup.
    pytest.mark.timeout(1500),
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mmdebstrap need root"),
]

SUITE = "bookworm"
# man-db: systemd-analyze verify runs man(1) for every man: page a unit names.
EXTRA_PACKAGES = ("man-db",)
# A new recipe (packages, variant) must not reuse an old root.
ROOT_RECIPE = "minbase-1"
UNITS = ("dockd.service", "dockd-console.service", "dockd-archive.service", "dockd-archive.timer",
         "dockd-prune.service", "dockd-prune.timer")
# What dpkg, the users' database and man-db may leave behind after a purge; run/systemd is
# systemd-analyze's own state. An empty /opt that no package owns (base-files does not) is
# removed by dpkg with the package's last file in it: dpkg's rule for directories, not ours.
PURGE_MAY_LEAVE = re.compile(
    r"^(var/lib/dpkg/|var/log/|var/cache/man/|var/cache/debconf/|var/lib/systemd/deb-systemd-"
    r"|etc/(passwd|group|shadow|gshadow)-?$|etc/\.pwd\.lock$|tmp/|proc/|dev/|run/systemd(/|$)"
    r"|opt$)")


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package under test: built from this tree unless DOCKD_TEST_DEB names one."""
    given = os.environ.get("DOCKD_TEST_DEB")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("deb")
    # gzip at level 1 instead of the release's xz at 6: the same files in the same members,
    # a larger file, and ~2 CPU-s instead of 30-90 (xz -1 still took ~20). What is checked
    # here is the package's contents and how it installs, not its compression.
    built = subprocess.run([REPO_ROOT / "packaging" / "build-deb.sh", "--out", out],
                           capture_output=True, text=True, timeout=900,
                           env={**os.environ, "DPKG_DEB_COMPRESSOR_TYPE": "gzip",
                                "DPKG_DEB_COMPRESSOR_LEVEL": "1"})
    assert built.returncode == 0, built.stderr[-4000:]
    return Path(built.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def root_tar(deb: Path) -> Path:
    """A minimal Debian 12 root with the package's dependencies, cached across runs."""
    depends = _control(deb, "Depends")
    packages = sorted({_first_alternative(d) for d in depends.split(",")} | set(EXTRA_PACKAGES))
    key = hashlib.sha256(f"{ROOT_RECIPE} {SUITE} {' '.join(packages)}".encode()).hexdigest()[:16]
    cache = Path(os.environ.get("DOCKD_TEST_CACHE", Path.home() / ".cache" / "dockd"))
    tar = cache / f"debian12-root-{key}.tar"
    if tar.exists():
        return tar
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob("debian12-root-*.tar"):
        old.unlink()
    sources = cache / "debian.sources.list"
    sources.write_text(_debian_sources())
    partial = tar.with_suffix(".partial.tar")
    made = subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "--mode=root",
                           f"--include={','.join(packages)}", SUITE, partial, sources],
                          capture_output=True, text=True, timeout=900)
    assert made.returncode == 0, made.stderr[-4000:]
    partial.rename(tar)
    return tar


@pytest.fixture
def root(root_tar: Path, tmp_path: Path) -> Iterator[Path]:
    """A fresh copy of the cached root."""
    path = tmp_path / "root"
    path.mkdir()
    subprocess.run(["tar", "-C", path, "-xpf", root_tar], check=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_package_declares_its_files_conffile_and_debian_only_dependencies(deb: Path) -> None:
    assert deb.name == f"dockd_{__version__}_amd64.deb"
    assert _control(deb, "Version") == __version__
    listing = subprocess.run(["dpkg-deb", "--contents", deb], capture_output=True, text=True,
                             check=True).stdout
    paths = {line.split()[5].removeprefix(".") for line in listing.splitlines()}
    for unit in UNITS:
        assert f"/lib/systemd/system/{unit}" in paths
    expected = {"/usr/lib/sysusers.d/dockd.conf", "/usr/lib/tmpfiles.d/dockd.conf",
                "/lib/udev/rules.d/70-dockd-recorders.rules", "/etc/dockd/dockd.toml",
                "/usr/bin/dockd", "/opt/dockd/venv/bin/dockd", "/usr/share/doc/dockd/README.md",
                "/usr/share/doc/dockd/docs/runtime.md", "/usr/share/doc/dockd/copyright",
                "/usr/share/man/man1/dockd.1.gz"}
    assert expected <= paths, expected - paths
    # one man page per command, generated from the parser this tree has
    for name, _help, _sub in _subcommands(build_parser()):
        assert f"/usr/share/man/man1/dockd-{name}.1.gz" in paths, name
    control = _control_files(deb)
    assert control["conffiles"].split() == ["/etc/dockd/dockd.toml"]
    assert "shlibs" not in control, "the wheels' private libraries must not be offered to others"
    # the interpreter and libraries come from Debian; nothing is fetched at install time
    depends = [_first_alternative(d) for d in _control(deb, "Depends").split(",")]
    assert "python3.11" in depends and "libusb-1.0-0" in depends
    assert not any("pip" in d or "python3-" in d for d in depends), depends


def test_install_run_verify_and_purge_offline_in_a_fresh_debian_12(root: Path, deb: Path) -> None:
    before = _tree(root)
    shutil.copy(deb, root / "tmp" / deb.name)

    installed = _chroot(root, f"dpkg -i /tmp/{deb.name}")
    assert installed.returncode == 0, installed.stdout + installed.stderr

    version = _chroot(root, "dockd --version")
    assert version.returncode == 0 and version.stdout.strip() == f"dockd {__version__}", version

    # sysusers.d, tmpfiles.d and postinst: users, groups, modes
    facts = _chroot(root, "getent passwd dockd | cut -d: -f7; getent group dockd-admin dockd-audit "
                          "| cut -d: -f1; stat -c '%n %a %U:%G' /etc/dockd /etc/dockd/dockd.toml "
                          "/var/lib/dockd /run/dockd")
    assert facts.returncode == 0, facts.stderr
    assert facts.stdout.split("\n") == [
        "/usr/sbin/nologin", "dockd-admin", "dockd-audit",
        "/etc/dockd 750 root:dockd", "/etc/dockd/dockd.toml 640 root:dockd",
        "/var/lib/dockd 750 root:dockd", "/run/dockd 750 root:dockd", ""]

    # dockd.service enabled; the screen and the timers installed but not enabled
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert (wants / "dockd.service").is_symlink()
    assert not (wants / "dockd-console.service").exists()
    assert not list((root / "etc/systemd/system").glob("timers.target.wants/dockd-*"))

    # every bundled shared library finds what it links against in this root
    ldd = _chroot(root, "find /opt/dockd -name '*.so*' -type f -exec ldd {} + | grep 'not found' "
                        "|| true")
    assert ldd.stdout == "", ldd.stdout

    # systemd's own checker, with the man: pages of Documentation= looked up
    units = " ".join(f"/lib/systemd/system/{u}" for u in UNITS)
    verified = _chroot(root, f"systemd-analyze verify {units}")
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr
    for unit in UNITS:
        for doc in re.findall(r"file://(\S+)", (root / "lib/systemd/system" / unit).read_text()):
            assert (root / doc.lstrip("/")).is_file(), (unit, doc)

    # it runs: an offline ingest into the default store and a verify of it
    card = root / "tmp" / "card" / "DCIM"
    card.mkdir(parents=True)
    (card / "A0001.MP4").write_bytes(os.urandom(4096))
    ran = _chroot(root, "dockd ingest /tmp/card --recorder SN-DEB-1 --json >/dev/null && dockd verify")
    assert ran.returncode == 0, ran.stdout + ran.stderr

    purged = _chroot(root, "dpkg --purge dockd")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    # the evidence store is kept, and said so; everything else of the package is gone
    assert "kept the evidence store /var/lib/dockd" in purged.stderr
    assert (root / "var/lib/dockd").is_dir()
    shutil.rmtree(root / "var/lib/dockd")
    after = _tree(root)
    appeared = sorted(p for p in after - before if not PURGE_MAY_LEAVE.match(p))
    vanished = sorted(p for p in before - after if not PURGE_MAY_LEAVE.match(p))
    assert appeared == [] and vanished == [], (appeared[:20], vanished[:20])


# --- helpers ---------------------------------------------------------------------------

def _chroot(root: Path, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` under /bin/sh inside ``root``: own mount, PID and (empty) network namespaces."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
           "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork",
                           f"--mount-proc={root / 'proc'}", "chroot", root, "/bin/sh", "-ec", script],
                          capture_output=True, text=True, env=env, timeout=300)


def _tree(root: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            out.add(name if rel == "." else f"{rel}/{name}")
    return out


def _control(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "--field", deb, field], capture_output=True, text=True,
                          check=True).stdout.strip()


def _control_files(deb: Path) -> dict[str, str]:
    out = {}
    listing = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True, check=True)
    names = subprocess.run(["tar", "-t"], input=listing.stdout, capture_output=True, check=True)
    for name in names.stdout.decode().split():
        name = name.removeprefix("./")
        if name:
            out[name] = subprocess.run(["dpkg-deb", "--info", deb, name], capture_output=True,
                                       text=True).stdout
    return out


def _first_alternative(dependency: str) -> str:
    return dependency.split("|")[0].split("(")[0].strip()


def _debian_sources() -> str:
    """The host's Debian archive entries (whatever mirror this machine uses) as sources.list."""
    query = ["apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE) $(COMPONENT)",
             "Created-By: Packages", "Origin: Debian"]
    lines = subprocess.run(query, capture_output=True, text=True, check=True).stdout
    if not lines.strip():  # a machine that never ran apt-get update knows no origins yet
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        lines = subprocess.run(query, capture_output=True, text=True, check=True).stdout
    entries = sorted({f"deb {line}" for line in lines.splitlines()
                      if line.split()[1:2] and line.split()[1].startswith(SUITE)})
    assert entries, "the host has no Debian 12 archive in its apt sources"
    return "\n".join(entries) + "\n"
