"""``dockd status``: the dock and its bays, from the daemon's read-only state channel."""

from __future__ import annotations

import argparse

from dockd.commands.common import add_config_options, add_json_option, config_from_args, print_json
from dockd.commands.helptext import epilog
from dockd.errors import UnavailableError
from dockd.i18n import _
from dockd.identity import Role
from dockd.report.state_channel import read_state


class DaemonUnreachableError(UnavailableError):
    """The daemon's state channel cannot be read."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("status", help=_("show the dock's bays (from the running daemon)"),
                       epilog=epilog(["dockd status", "dockd status --json"], (0, 2, 69, 77, 78)))
    add_config_options(p, store=False)
    p.add_argument("--socket", metavar="PATH", help=_("state channel (default: daemon.status_socket)"))
    add_json_option(p)
    p.set_defaults(func=run, role=Role.AUDIT)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    path = args.socket or config.daemon.status_socket
    try:
        state = read_state(path)
    except (OSError, ValueError) as exc:
        raise DaemonUnreachableError(_("dockd is not answering on {path}: {error}")
                                     .format(path=path, error=exc)) from None
    if args.json:
        print_json(state)
    else:
        from dockd.report.console_view import render_status_text

        print(render_status_text(state, tz=config.dock.tz))
    return 0
