"""The command line: parses, calls the core, prints, exits.

Each command group lives in ``dockd/commands/<name>.py`` with a ``register(subparsers)``
function; this module only wires them and turns expected errors into one line on stderr
and the error's exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dockd import __version__
from dockd.commands import (
    access,
    archive,
    case,
    catalog,
    check_config,
    console,
    demo,
    export,
    hold,
    ingest,
    install,
    key,
    ledger,
    log,
    prune,
    publish,
    recorders,
    report,
    run,
    status,
    verify,
    watch,
)
from dockd.errors import DockdError, UsageError
from dockd.logs import setup_logging

# The command modules, in the order `dockd --help` lists them.
COMMANDS = (ingest, catalog, log, verify, key, recorders, run, status, console, demo, install,
            check_config, archive, hold, prune, case, export, access, report, watch, publish, ledger)



class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every registered command."""
    parser = _ArgumentParser(prog="dockd", description="Body-worn recorder docking station.")
    parser.add_argument("--version", action="version", version=f"dockd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dockd`` console script."""
    setup_logging("INFO")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
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
