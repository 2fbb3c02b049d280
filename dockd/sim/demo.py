"""``dockd demo``: the real daemon, N simulated recorders docked, bays shown live.

It writes a demo config (simulator device source, directory "mounts", a local broker),
starts ``dockd run`` as a subprocess, docks recorders of every kind (GA/T 947 over a
serial port, Ambarella, plain mass storage), shows the bays until each is settled,
stops the daemon and runs ``dockd verify``. Exit 0 only when every bay is ``ready`` (or
``ready_unchecked``: Ambarella and plain mass-storage recorders cannot report their battery,
and the dock says so) and the store verifies.

The recorders are enrolled (brand, model, officer) before they dock and carry real MP4
recordings (:mod:`dockd.sim.media`), and the config names the unit and lets the operator
default to the officer: the first export the demo suggests has every art. 12(4) field.
"""

from __future__ import annotations

import datetime as dt
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockd.errors import SoftwareError
from dockd.i18n import _
from dockd.sim.dock import KINDS
from dockd.sim.media import fill_card
from dockd.sim.runner import DaemonRunner, RunnerError

READY = ("ready", "ready_unchecked")
RECORDINGS_PER_RECORDER = 4
# Who carries the demo's recorders (police number, name); the unit of all of them.
OFFICERS = (("0451", "赵六"), ("0452", "孙八"), ("0453", "周九"), ("0454", "吴十"))
OFFICER_UNIT = "城关派出所"
DEMO_RECORDS = '[records]\nunit_name = "演示县公安局"\noperator_defaults_to_officer = true\n'
CASE = "DEMO-2026-001"


class DemoFailed(SoftwareError):
    """The demo did not reach every bay ready and a clean verify."""


def run_demo(recorders: int, broker_url: str | None, store: Path | None, keep_running: bool,
             show: Callable[[dict[str, Any]], None], local_broker: bool = True,
             timeout_s: float = 120.0) -> int:
    """The whole demo; returns 0 on success, raises DemoFailed otherwise."""
    root = Path(tempfile.mkdtemp(prefix="dockd-demo-"))
    broker_proc = None
    if broker_url is None and local_broker:
        from dockd.sim.broker import start_local_mosquitto

        broker_proc, port = start_local_mosquitto(root / "broker")
        broker_url = f"mqtt://127.0.0.1:{port}"
    runner = DaemonRunner(root, bays=recorders, broker_url=broker_url, store=store,
                          extra=DEMO_RECORDS)
    try:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for n in range(1, recorders + 1):
            _enrol(runner, n)
            # The card is filled before the recorder docks: SimDock.card keeps what is there.
            fill_card(runner.dock.cards_dir / serial_of(n), serial_of(n),
                      [now - dt.timedelta(minutes=9 * (RECORDINGS_PER_RECORDER * (recorders - n)
                                                       + RECORDINGS_PER_RECORDER - i))
                       for i in range(RECORDINGS_PER_RECORDER)])
        runner.start()
        for n in range(1, recorders + 1):
            runner.dock.plug(f"1-1.{n}", KINDS[(n - 1) % len(KINDS)], usb_serial=serial_of(n))
        settled: list[dict[str, Any]] = []
        try:
            state = _watch_until_settled(runner, recorders, show, timeout_s, settled)
            if keep_running:
                _keep_running(runner, show)
        except KeyboardInterrupt:
            # Once every bay has settled (and been shown so), Ctrl-C, q or a closed terminal
            # end the keep-running phase: the daemon is stopped and the store verified, as
            # the view says. Before that, they interrupt the demo.
            if not (keep_running and settled):
                raise
            state = settled[0]
        runner.stop()
    except RunnerError as exc:
        raise DemoFailed(str(exc)) from None
    finally:
        runner.close()
        if broker_proc is not None:
            broker_proc.terminate()
            broker_proc.wait(10)
    faults = [b for b in state["bays"] if b["state"] not in READY]
    if faults:
        raise DemoFailed(_("bays not ready: {bays}; log: {log}").format(
            bays=", ".join(f"{b['label']}={b['state']}({b['fault']})" for b in faults),
            log=runner.log_path))
    verify = runner.dockd("verify")
    sys.stdout.write(verify.stdout)
    if verify.returncode != 0:
        raise DemoFailed(_("dockd verify failed ({code}): {detail}").format(
            code=verify.returncode, detail=verify.stderr.strip()))
    print(f"demo store: {runner.paths.store}  (config {runner.paths.config})")
    print(first_export_hint(runner.paths.config, root / "export"))
    return 0


def serial_of(n: int) -> str:
    """The serial of the demo's ``n``-th recorder."""
    return f"DSJ{n:04d}"  # GA/T 947 recorders hold at most 7 bytes


def first_export_hint(config: Path, out: Path) -> str:
    """The commands of a first export of the demo's recordings (every art. 12(4) field
    known: the media give format, length, start and end; the registry brand, model and
    officer; the case the place; the officer is the operator)."""
    cfg = shlex.quote(str(config))
    return "\n".join([
        f"next: a first evidence export of recorder {serial_of(1)}'s recordings:",
        f"  dockd case tag {CASE} --recorder {serial_of(1)} --place 城关镇人民路 --config {cfg}",
        f"  dockd export --case {CASE} --requester 张检察官 --requester-unit 演示县人民检察院"
        f" --reason 审查起诉 --approved-by 王所长 --out {shlex.quote(str(out))} --config {cfg}"])


def _enrol(runner: DaemonRunner, n: int) -> None:
    officer_id, name = OFFICERS[(n - 1) % len(OFFICERS)]
    kind = KINDS[(n - 1) % len(KINDS)]
    done = runner.dockd("recorders", "add", serial_of(n), "--brand", "Simulated",
                        "--model", kind, "--officer-id", officer_id, "--officer-name", name,
                        "--unit", OFFICER_UNIT)
    if done.returncode != 0:
        raise DemoFailed(_("enrolling {serial} failed: {detail}").format(
            serial=serial_of(n), detail=done.stderr.strip()))


def _watch_until_settled(runner: DaemonRunner, recorders: int,
                         show: Callable[[dict[str, Any]], None], timeout_s: float,
                         settled_states: list[dict[str, Any]]) -> dict[str, Any]:
    """Show the bays until every one is ready or faulted; that state is also appended to
    ``settled_states`` before it is shown, so an interrupt from then on finds it there."""
    def settled(state: dict[str, Any]) -> bool:
        bays = [b for b in state["bays"] if b["bay"] <= recorders]
        done = len(bays) == recorders and all(b["state"] in (*READY, "fault") for b in bays)
        if done:
            settled_states.append(state)
        show(state)
        return done

    return runner.wait_until(settled, timeout_s, "every bay settled", interval=0.3)


def _keep_running(runner: DaemonRunner, show: Callable[[dict[str, Any]], None]) -> None:
    """Show the bays until the daemon ends or an interrupt (handled by the caller)."""
    while runner.proc is not None and runner.proc.poll() is None:
        show(runner.state())
        time.sleep(0.5)
