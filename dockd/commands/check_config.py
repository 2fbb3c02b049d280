"""``dockd check-config``: every problem of a config at once, before the daemon meets them.

First what the config package finds in the file (types, ranges, unknown keys: all of them,
not only the first); then what only this machine can tell: the files the config names
(recorder passwords, MQTT credentials and certificates, archive credentials and CA) exist
and are readable by this user, and every bay's USB port exists on this dock's hubs. Each
problem is one line naming its key; exit 78 when there is any, 0 when there is none.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from dockd.commands.common import add_json_option, print_json
from dockd.commands.helptext import epilog
from dockd.config import Config, check_config_file, resolve_config_path
from dockd.config.records import PDF_FONT_PACKAGE
from dockd.errors import ConfigError
from dockd.i18n import _

SYS_ROOT = Path("/sys")
_PORT = re.compile(r"^(\d+)-(\d+(?:\.\d+)*)$")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("check-config", help=_("list every problem of a config (exit 78 if any)"),
                       description=_("Check a config file and what it names on this machine: "
                                   "every problem at once, one line each."),
                       epilog=epilog(["dockd check-config",
                                      "dockd check-config --config /etc/dockd/dockd.toml --json"],
                                     (0, 2, 78)))
    p.add_argument("--config", metavar="PATH",
                   help=_("config file (default: $DOCKD_CONFIG or /etc/dockd/dockd.toml)"))
    p.add_argument("--sys-root", metavar="DIR", type=Path, default=SYS_ROOT,
                   help=_("where sysfs is, for the bays' USB ports (default /sys)"))
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = resolve_config_path(args.config)
    config, problems = check_config_file(path)
    found = [*problems.messages, *machine_problems(config, args.sys_root)]
    name = str(path) if path else "(no config file: the defaults)"
    if args.json:
        print_json({"config": name, "ok": not found, "problems": found})
    elif found:
        for line in found:
            print(f"dockd: config: {line}", file=sys.stderr)
        print(_("dockd: {name}: {n} problem(s)").format(name=name, n=len(found)), file=sys.stderr)
    else:
        print(_("{name}: OK").format(name=name))
    return ConfigError.exit_code if found else 0


def machine_problems(config: Config, sys_root: Path = SYS_ROOT) -> list[str]:
    """What the config names that this machine does not have, one message per problem."""
    out: list[str] = []
    for i, model in enumerate(config.daemon.models):
        if model.password_file is not None:
            out += _readable(f"daemon.models[{i}].password_file", model.password_file)
    mqtt = config.mqtt
    if mqtt.enabled:
        from dockd.report.mqtt.credentials import read_credentials

        if mqtt.credentials_file is not None:
            out += _check(lambda: read_credentials(mqtt.credentials_file))  # type: ignore[arg-type]
        for key in ("ca_file", "cert_file", "key_file"):
            value: Path | None = getattr(mqtt, key)
            if value is not None:
                out += _readable(f"mqtt.{key}", value)
    if config.archive is not None:
        from dockd.records.archive.credentials import load_credentials

        archive = config.archive
        # Path() stands for a credentials_file the section lacks: that is already the config's
        # own problem ("missing"); reading "." would only add a confusing second line.
        if archive.credentials_file != Path():
            out += _check(lambda: load_credentials(archive.credentials_file),
                          "archive.credentials_file")
        if archive.ca_bundle is not None:
            out += _readable("archive.ca_bundle", archive.ca_bundle)
    font = config.records.pdf_font
    if not font.is_file() or not os.access(font, os.R_OK):
        out.append(f"records.pdf_font: {font} is missing or unreadable: install the Debian"
                   f" package {PDF_FONT_PACKAGE} or name a TrueType font with Chinese glyphs;"
                   " without it every export and PDF report is refused")
    if config.daemon.device_source == "udev":
        for i, bay in enumerate(config.daemon.bays):
            node = hub_port(bay.port)
            if node is None or not usb_port_exists(bay.port, sys_root):
                where = f"no {node[0]}-port{node[1]}" if node else "not a port path"
                out.append(f"daemon.bays[{i}].port: {bay.port!r} (bay {bay.number}) is not a USB "
                           f"port of this dock ({where} under {sys_root}/bus/usb/devices); "
                           "see `udevadm info` of a docked recorder")
    return out


def hub_port(port: str) -> tuple[str, int] | None:
    """The hub and port number of a USB port path: ``1-1.3`` → (``1-1``, 3), ``2-4`` →
    (``usb2``, 4); None when ``port`` is not a port path."""
    match = _PORT.match(port)
    if not match:
        return None
    bus, path = match.group(1), match.group(2).split(".")
    hub = f"usb{bus}" if len(path) == 1 else f"{bus}-{'.'.join(path[:-1])}"
    return hub, int(path[-1])


def usb_port_exists(port: str, sys_root: Path = SYS_ROOT) -> bool:
    """True when the USB port path is a port of a hub on this machine (the hub's interface
    lists it as ``<hub>-port<n>``), whether or not anything is plugged into it."""
    node = hub_port(port)
    if node is None:
        return False
    hub, number = node
    devices = glob.escape(str(sys_root / "bus" / "usb" / "devices"))
    return bool(glob.glob(f"{devices}/{glob.escape(hub)}/*/{glob.escape(hub)}-port{number}"))


def _readable(key: str, path: Path) -> list[str]:
    if not path.exists():
        return [f"{key}: {path} does not exist"]
    if not path.is_file():
        return [f"{key}: {path} is not a file"]
    if not os.access(path, os.R_OK):
        return [f"{key}: {path} is not readable by this user"]
    return []


def _check(reader: Callable[[], object], key: str = "") -> list[str]:
    try:
        reader()
    except ConfigError as exc:
        text = str(exc)
        return [text if not key or text.startswith(key) else f"{key}: {text}"]
    return []
