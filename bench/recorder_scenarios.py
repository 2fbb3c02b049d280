"""Plug → settled per recorder scenario (issue 13), on the real daemon with simulated recorders.

For each scenario a recorder is plugged into bay 1 of a running ``dockd run`` (simulator spool,
``mounter = "directory"``, no broker) and the time until the bay settles (``ready``,
``ready_unchecked`` or ``fault``) is taken from the state channel; median over ``--repeats``.
Each figure is also printed as a ratio to the plain mass-storage recorder's plug → ready in
the same run, so runs on a loaded machine can be compared. The bad-answer scenarios are bounded
by the protocol's timeouts (test framing 2 s, B1 3 s) and by ``storage_wait_s`` (here 5 s).

Run: ``.venv/bin/python bench/recorder_scenarios.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from dockd.sim.recorders import Fault, SimRecorderSpec
from dockd.sim.runner import DaemonRunner

SETTLED = ("ready", "ready_unchecked", "fault")
FILES = [(f"DCIM/100MEDIA/REC{i:03d}.MP4", 1 << 20) for i in range(4)]

# name → (kind, fault or None, command, what the bay should end in)
SCENARIOS: dict[str, tuple[str, Fault | None, str, str]] = {
    "msc plain disk → ready_unchecked": ("msc", None, "", "ready_unchecked"),
    "gat947 test framing → ready": ("gat947", None, "", "ready"),
    "amba B1 → ready_unchecked": ("amba", None, "", "ready_unchecked"),
    "amba B1, @ATH never answered, switches → ready_unchecked":
        ("amba", Fault.SILENT_SWITCH, "ATH", "ready_unchecked"),
    "gat947, garbage reply to SetMSDC, switches → ready": ("gat947", Fault.GARBAGE, "SET_MSDC",
                                                           "ready"),
    "gat947 silent at GetZFYInfo → fault login_failed": ("gat947", Fault.SILENT, "GET_ZFY_INFO",
                                                         "fault"),
    "amba B1 silent at @Gdv → fault login_failed": ("amba", Fault.SILENT, "Gdv", "fault"),
    "amba B1 port dies at the clock → fault storage_switch_failed":
        ("amba", Fault.PULL_OUT, "Sdt", "fault"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dockd-bench-scenarios-"))
    runner = DaemonRunner(root, bays=1, storage_wait_s=5)
    runner.start()
    seconds: dict[str, list[float]] = {name: [] for name in SCENARIOS}
    try:
        for n in range(args.repeats):
            for index, (name, scenario) in enumerate(SCENARIOS.items()):
                seconds[name].append(plug_to_settled(runner, f"B{n}S{index}", *scenario))
    finally:
        runner.stop()
        runner.close()
        runner.dock.discard_cards()
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    baseline = medians["msc plain disk → ready_unchecked"]
    print(json.dumps({name: {"median_s": round(value, 2), "vs_plain_disk": round(value / baseline, 1)}
                      for name, value in medians.items()}, indent=2, ensure_ascii=False))


def plug_to_settled(runner: DaemonRunner, serial: str, kind: str, fault: Fault | None,
                    command: str, expected: str) -> float:
    """Seconds from the plug to the bay's settled state, which must be ``expected``."""
    spec = SimRecorderSpec(serial=serial, clock_offset_s=3600,
                           protocol="amba-stream" if kind == "amba" else "gat947-serial")
    faults = [(fault, command)] if fault is not None else []
    started = time.monotonic()
    if kind == "msc":
        runner.dock.plug("1-1.1", kind, usb_serial=serial, files=FILES)
    else:
        runner.dock.plug("1-1.1", kind, spec=spec, files=FILES, faults=faults)
    state = runner.wait_until(lambda s: s["bays"][0]["state"] in SETTLED, 60, "bay 1 settles")
    elapsed = time.monotonic() - started
    bay = state["bays"][0]
    if bay["state"] != expected:
        raise SystemExit(f"{serial}: {kind} {fault} {command} ended {bay}, not {expected}")
    runner.dock.unplug("1-1.1")
    runner.wait_until(lambda s: s["bays"][0]["state"] == "empty", 30, "bay 1 empty")
    return elapsed


if __name__ == "__main__":
    main()
