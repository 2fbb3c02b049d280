"""The command line: parses, calls the core, prints, exits.

Each command group lives in ``dockd/commands/<name>.py`` with a ``register(subparsers)``
function; this module only wires them and turns expected errors into one line on stderr
and the error's exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from dockd import __version__
from dockd.commands.helptext import (
    EXIT_TEXTS,
    HelpFormatter,
    epilog,
    group_epilog,
    translate_argparse_error,
)
from dockd.errors import DockdError, UsageError
from dockd.i18n import _
from dockd.identity import require_role
from dockd.logs import setup_logging

# Each command's name and its module in dockd/commands, in the order `dockd --help` lists
# them. A run of one command imports only its module: importing all of them cost a third
# of a second of CPU at every start (py-spy), a tenth of a small offload's run.
COMMANDS = {
    "ingest": "ingest", "catalog": "catalog", "log": "log", "verify": "verify", "key": "key",
    "recorders": "recorders", "run": "run", "status": "status", "console": "console",
    "demo": "demo", "install": "install", "check-config": "check_config",
    "archive": "archive", "hold": "hold", "prune": "prune", "case": "case",
    "export": "export", "access": "access", "report": "report", "watch": "watch",
    "publish": "publish", "ledger": "ledger",
}


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting, and whose help
    marks required options and keeps the epilogs' examples as laid out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        # argparse's own words come from its gettext domain, which has no Chinese: ours.
        self._positionals.title = _("positional arguments")
        self._optionals.title = _("options")
        for action in self._actions:
            if isinstance(action, argparse._HelpAction):
                action.help = _("show this help message and exit")

    def error(self, message: str) -> None:  # type: ignore[override]
        # The program name and argparse's message, in the reader's language.
        raise UsageError(": ".join((self.prog, translate_argparse_error(message))))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser with every registered command; with ``only`` (a command's name),
    one that knows that command alone."""
    parser = _ArgumentParser(
        prog="dockd", description=_("Body-worn recorder docking station."),
        epilog=epilog(["dockd status", "dockd catalog --day 2026-12-01",
                       "dockd ingest --help   # each command's options, examples, exit status"],
                      EXIT_TEXTS))
    parser.add_argument("--version", action="version", version=f"dockd {__version__}",
                        help=_("show the version and exit"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    sub.required = True
    for name, module in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(f"dockd.commands.{module}").register(sub)
    _point_groups_to_their_actions(parser)
    return parser


def _point_groups_to_their_actions(parser: argparse.ArgumentParser) -> None:
    """A command made of actions (``dockd recorders``) says where their examples are."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    sub.epilog = sub.epilog or group_epilog(sub.prog)
                _point_groups_to_their_actions(sub)


def _command_named(argv: Sequence[str]) -> str | None:
    """The command the arguments name, if they start with one (else the full parser runs:
    ``--help``, ``--version``, a typo)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def _command_words(argv: Sequence[str]) -> list[str]:
    """The command and its subcommand as typed (``hold add``), for messages."""
    words = []
    for arg in argv[:2]:
        if arg.startswith("-"):
            break
        words.append(arg)
    return words


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dockd`` console script."""
    setup_logging("INFO")
    try:
        argv = sys.argv[1:] if argv is None else argv
        parser = build_parser(_command_named(argv))
        args = parser.parse_args(argv)
        if getattr(args, "role", None) is not None:  # set by the command (dockd.identity.Role)
            require_role(args.role, " ".join(["dockd", *_command_words(argv)]))
        result = args.func(args)
        return int(result or 0)
    except DockdError as exc:
        print(f"dockd: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dockd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
