"""``dockd install``: put dockd's unit, udev rules and example config on a real dock.

Copies the systemd units (``dockd.service``, and the ``dockd-archive`` and ``dockd-prune``
services and timers, which the administrator enables; ExecStart pointed at this
installation's ``dockd``), ``udev-rules/*.rules`` and, when absent, ``config/dockd.toml``;
creates the store and runtime directories; then reloads systemd and udev unless ``--root``
names another tree (an image being built) or ``--no-reload`` is given. Existing config is
never overwritten.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from dockd.errors import UsageError

UNIT_DIR = Path("etc/systemd/system")
RULES_DIR = Path("etc/udev/rules.d")
CONFIG_DIR = Path("etc/dockd")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("install", help="install the systemd unit, udev rules and example config")
    p.add_argument("--root", type=Path, default=Path("/"), help="install into this tree (default /)")
    p.add_argument("--no-reload", action="store_true", help="do not reload systemd and udev")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root: Path = args.root
    if not root.is_dir():
        raise UsageError(f"--root {root} is not a directory")
    files = _packaged_files()
    dockd_bin = Path(sys.executable).with_name("dockd")
    for name, text in files.items():
        if name.endswith((".service", ".timer")):
            unit = text.replace("/opt/dockd/venv/bin/dockd", str(dockd_bin))
            _write(root / UNIT_DIR / name, unit, 0o644)
        elif name.endswith(".rules"):
            _write(root / RULES_DIR / name, text, 0o644)
    config = root / CONFIG_DIR / "dockd.toml"
    if config.exists():
        print(f"kept existing {config}")
    else:
        _write(config, files["dockd.toml"], 0o640)
    for directory in ("var/lib/dockd", "run/dockd"):
        (root / directory).mkdir(parents=True, exist_ok=True, mode=0o750)
    if root == Path("/") and not args.no_reload:
        for cmd in (["systemctl", "daemon-reload"], ["udevadm", "control", "--reload"]):
            if shutil.which(cmd[0]):
                subprocess.run(cmd, check=False)
        print("next: edit /etc/dockd/dockd.toml, then `systemctl enable --now dockd`; "
              "with an [archive] section, also dockd-archive.timer; for retention, "
              "dockd-prune.timer")
    return 0


def _packaged_files() -> dict[str, str]:
    """The units, rules and example config shipped in the package (dockd/data)."""
    data = resources.files("dockd") / "data"
    out = {}
    for entry in data.iterdir():
        if entry.name.endswith((".service", ".timer", ".rules", ".toml")):
            out[entry.name] = entry.read_text(encoding="utf-8")
    if "dockd.service" not in out or "dockd.toml" not in out:
        raise UsageError("this dockd installation lacks its data files (dockd/data)")
    return out


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    print(f"wrote {path}")
