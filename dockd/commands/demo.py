"""``dockd demo``: the daemon against simulated recorders, shown live on the console."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dockd.commands.helptext import epilog
from dockd.i18n import _


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help=_("run the daemon with simulated recorders docked"),
                       epilog=epilog(["./dev demo                # from a checkout",
                                      "dockd demo --recorders 2 --no-broker",
                                      "dockd demo --store /tmp/demo-store --keep-running"],
                                     (0, 2, 69, 70)))
    p.add_argument("--recorders", type=int, default=3, metavar="N", help=_("how many (default 3)"))
    p.add_argument("--broker", metavar="URL", help=_("MQTT broker (default: a local mosquitto)"))
    p.add_argument("--no-broker", action="store_true", help=_("run without MQTT"))
    p.add_argument("--store", type=Path, metavar="DIR", help=_("evidence store (default: temporary)"))
    p.add_argument("--keep-running", action="store_true", help=_("stay up after all bays are ready"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dockd.errors import UsageError
    from dockd.sim.demo import run_demo

    if not 1 <= args.recorders <= 32:
        raise UsageError(_("--recorders must be between 1 and 32"))
    with _signals_interrupt(), _display() as show:
        return run_demo(args.recorders, args.broker, args.store, args.keep_running, show,
                        local_broker=not args.no_broker)


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal or tmux session) end the demo as Ctrl-C does, so
    its daemon and broker are stopped too: by default both signals kill the demo at once and
    leave its daemon running."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _display() -> Iterator[Callable[[dict[str, Any]], None]]:
    """The live console on a terminal; elsewhere one line per bay state change."""
    from dockd.report.console_view import LinkView, render_console, render_status_text

    if not sys.stdout.isatty():
        shown: dict[int, tuple[str, str | None]] = {}

        def log_changes(state: dict[str, Any]) -> None:
            for bay in state.get("bays", []):
                now = (bay.get("state"), bay.get("fault"))
                if shown.get(bay.get("bay")) != now:
                    shown[bay.get("bay")] = now
                    unchecked = ", ".join(bay.get("unchecked") or ())
                    print(f"{bay.get('label')}: {now[0]}{f' ({now[1]})' if now[1] else ''}"
                          f"{f' (not checked: {unchecked})' if unchecked else ''}"
                          f"  recorder={bay.get('recorder') or '-'}", flush=True)

        yield log_changes
        return
    from rich.console import Console
    from rich.live import Live

    from dockd.report.console import keyboard, quit_pressed

    console = Console()
    last: dict[str, Any] = {}
    with keyboard(sys.stdin.fileno()) as keys, \
            Live(console=console, refresh_per_second=4, transient=False) as live:
        def update(state: dict[str, Any]) -> None:
            # The view says "Press q to quit": q does what Ctrl-C does (with --keep-running
            # the demo then stops the daemon and verifies; before that it is interrupted).
            if keys is not None and quit_pressed(keys):
                raise KeyboardInterrupt
            last.update(state)
            link = LinkView(socket="demo", connected=True)
            live.update(render_console(state, link, width=console.width))

        yield update
    if last:
        console.print(render_status_text(last, width=console.width))
