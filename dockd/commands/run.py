"""``dockd run``: the daemon."""

from __future__ import annotations

import argparse

from dockd.commands.common import add_config_options, config_from_args
from dockd.commands.helptext import STORE_CODES, epilog
from dockd.i18n import _, keep_english


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help=_("run the dock daemon (systemd Type=notify)"), epilog=epilog([
        "systemctl start dockd   # as installed", "dockd run --config /etc/dockd/dockd.toml"],
        (*STORE_CODES, 69)))
    add_config_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dockd.daemon import Daemon

    # Its fault details (device errors) go into custody events and MQTT payloads: English.
    keep_english()
    config = config_from_args(args)
    return Daemon(config).run()
