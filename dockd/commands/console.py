"""``dockd console``: the dock's live full-screen view (from the daemon's state channel)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path

from dockd.commands.common import add_config_options, config_from_args
from dockd.commands.helptext import epilog
from dockd.errors import UsageError
from dockd.i18n import _

log = logging.getLogger("dockd.console")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("console", help=_("live view of the dock's bays (q or Ctrl-C quits)"),
                       epilog=epilog(["dockd console", "LANGUAGE=zh_CN dockd console",
                                      "dockd console --kiosk   # dockd-console.service on tty1"],
                                     (0, 2, 69, 78)))
    add_config_options(p, store=False)
    p.add_argument("--socket", metavar="PATH", type=Path,
                   help=_("state channel (default: daemon.status_socket)"))
    p.add_argument("--kiosk", action="store_true",
                   help=_("on the dock's own text console (dockd-console.service): a Chinese view "
                        "runs inside fbterm, or falls back to English where fbterm cannot run"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the live console until the user quits."""
    if not sys.stdout.isatty():
        raise UsageError(_("dockd console needs a terminal; use `dockd status` (or --json) for"
                           " output to a file or pipe"))
    if args.kiosk:
        _enter_kiosk()
    config = config_from_args(args)
    path = args.socket or config.daemon.status_socket
    from dockd.report.console import run_console

    return run_console(path, tz=config.dock.tz)


def _enter_kiosk() -> None:
    """Re-run inside fbterm, or switch to English, as :func:`plan_kiosk` decides."""
    from dockd.report.kiosk import plan_kiosk

    argv = [sys.executable, "-m", "dockd.cli", *sys.argv[1:]]
    plan = plan_kiosk(argv, os.environ, shutil.which, os.path.exists)
    os.environ.update(plan.env)
    if plan.note:
        log.warning(plan.note)
    if plan.exec_argv is not None:
        os.execv(plan.exec_argv[0], list(plan.exec_argv))
