"""``dockd run``: the daemon."""

from __future__ import annotations

import argparse

from dockd.commands.common import add_config_options, config_from_args


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run the dock daemon (systemd Type=notify)")
    add_config_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dockd.daemon import Daemon

    config = config_from_args(args)
    return Daemon(config).run()
