"""``dockd console``: the dock's live full-screen view (from the daemon's state channel)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dockd.commands.common import add_config_options, config_from_args
from dockd.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("console", help="live view of the dock's bays (q or Ctrl-C quits)")
    add_config_options(p, store=False)
    p.add_argument("--socket", metavar="PATH", type=Path,
                   help="state channel (default: daemon.status_socket)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the live console until the user quits."""
    if not sys.stdout.isatty():
        raise UsageError("dockd console needs a terminal; use `dockd status` (or --json) for output "
                         "to a file or pipe")
    path = args.socket or config_from_args(args).daemon.status_socket
    from dockd.report.console import run_console

    return run_console(path)
