"""``dockd install``: put dockd's unit, udev rules and example config on a real dock.

The route for a dock installed with pip; the Debian package (``./dev deb``) installs the same
files by itself. Copies the systemd units (``dockd.service``; the ``dockd-archive`` and
``dockd-prune`` services and timers and the dock's screen ``dockd-console.service``, which
the administrator enables; ExecStart pointed at this installation's ``dockd``),
``udev-rules/*.rules``, the sysusers.d and tmpfiles.d entries (user and group ``dockd``, the
role groups ``dockd-admin`` and ``dockd-audit``, ``/run/dockd``) and, when absent,
``config/dockd.toml``; creates the store and runtime directories; then, unless ``--root``
names another tree (an image being built: its first boot creates the users) or
``--no-reload`` is given, creates the users and groups, gives the config and directories to
group ``dockd`` and reloads systemd and udev. Existing config is never overwritten.
"""

from __future__ import annotations

import argparse
import grp
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from dockd.commands.helptext import epilog
from dockd.errors import UsageError
from dockd.i18n import _

UNIT_DIR = Path("etc/systemd/system")
RULES_DIR = Path("etc/udev/rules.d")
CONFIG_DIR = Path("etc/dockd")
SYSUSERS = Path("etc/sysusers.d/dockd.conf")
TMPFILES = Path("etc/tmpfiles.d/dockd.conf")
SERVICE_GROUP = "dockd"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("install", help=_("install the systemd unit, udev rules and example config"),
                       epilog=epilog(["sudo dockd install", "dockd install --root /tmp/image"
                                      " --no-reload   # into an image being built"],
                                     (0, 2, 73)))
    p.add_argument("--root", type=Path, default=Path("/"), help=_("install into this tree (default /)"))
    p.add_argument("--no-reload", action="store_true", help=_("do not reload systemd and udev"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root: Path = args.root
    if not root.is_dir():
        raise UsageError(_("--root {root} is not a directory").format(root=root))
    files = _packaged_files()
    dockd_bin = Path(sys.executable).with_name("dockd")
    for name, text in files.items():
        if name.endswith((".service", ".timer")):
            unit = text.replace("/opt/dockd/venv/bin/dockd", str(dockd_bin))
            _write(root / UNIT_DIR / name, unit, 0o644)
        elif name.endswith(".rules"):
            _write(root / RULES_DIR / name, text, 0o644)
        elif name.endswith(".sysusers"):
            _write(root / SYSUSERS, text, 0o644)
        elif name.endswith(".tmpfiles"):
            _write(root / TMPFILES, text, 0o644)
    config = root / CONFIG_DIR / "dockd.toml"
    if config.exists():
        print(f"kept existing {config}")
    else:
        _write(config, files["dockd.toml"], 0o640)
    for directory in ("var/lib/dockd", "run/dockd"):
        (root / directory).mkdir(parents=True, exist_ok=True, mode=0o750)
    if root == Path("/") and not args.no_reload:
        _create_users()
        for cmd in (["systemctl", "daemon-reload"], ["udevadm", "control", "--reload"]):
            if shutil.which(cmd[0]):
                subprocess.run(cmd, check=False)
        print("next: edit /etc/dockd/dockd.toml, then `systemctl enable --now dockd`; "
              "with an [archive] section, also dockd-archive.timer; for retention, "
              "dockd-prune.timer; for the dock's screen on tty1, dockd-console")
    return 0


def _create_users() -> None:
    """Users and groups from sysusers.d, /run/dockd from tmpfiles.d; then the config and
    directories the service shares with group dockd."""
    for cmd in (["systemd-sysusers", f"/{SYSUSERS}"], ["systemd-tmpfiles", "--create", f"/{TMPFILES}"]):
        if shutil.which(cmd[0]) is None:
            raise UsageError(_("{command} is missing: dockd install needs systemd")
                             .format(command=cmd[0]))
        subprocess.run(cmd, check=True)
    gid = grp.getgrnam(SERVICE_GROUP).gr_gid
    for path, mode in ((Path("/") / CONFIG_DIR, 0o750), (Path("/") / CONFIG_DIR / "dockd.toml", 0o640),
                       (Path("/var/lib/dockd"), 0o750)):
        os.chown(path, 0, gid)
        path.chmod(mode)


def _packaged_files() -> dict[str, str]:
    """The units, rules and example config shipped in the package (dockd/data)."""
    data = resources.files("dockd") / "data"
    out = {}
    for entry in data.iterdir():
        if entry.name.endswith((".service", ".timer", ".rules", ".toml", ".sysusers", ".tmpfiles")):
            out[entry.name] = entry.read_text(encoding="utf-8")
    if "dockd.service" not in out or "dockd.toml" not in out:
        raise UsageError(_("this dockd installation lacks its data files (dockd/data)"))
    return out


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    print(f"wrote {path}")
