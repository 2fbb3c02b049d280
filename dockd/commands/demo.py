"""``dockd demo``: the daemon against simulated recorders, shown live."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run the daemon with simulated recorders docked")
    p.add_argument("--recorders", type=int, default=3, metavar="N", help="how many (default 3)")
    p.add_argument("--broker", metavar="URL", help="MQTT broker (default: a local mosquitto)")
    p.add_argument("--no-broker", action="store_true", help="run without MQTT")
    p.add_argument("--store", type=Path, metavar="DIR", help="evidence store (default: temporary)")
    p.add_argument("--keep-running", action="store_true", help="stay up after all bays are ready")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dockd.errors import UsageError
    from dockd.sim.demo import run_demo

    if not 1 <= args.recorders <= 32:
        raise UsageError("--recorders must be between 1 and 32")
    return run_demo(args.recorders, args.broker, args.store, args.keep_running, _show,
                    local_broker=not args.no_broker)


def _show(state: dict[str, Any]) -> None:
    try:
        from dockd.report.console_view import render_status_text
    except ImportError:  # the console module is optional in a minimal install
        lines = [f"{b['label']}: {b['state']} {b['fault'] or ''}" for b in state["bays"]]
        print(" | ".join(lines), flush=True)
        return
    print(render_status_text(state), flush=True)
