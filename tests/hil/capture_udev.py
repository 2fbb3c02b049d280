"""Capture real udev event sequences from the HIL guest into tests/data/udev/<name>.json.

    .venv/bin/python -m tests.hil.capture_udev [--out tests/data/udev] [name ...]

Boots one guest, starts systemd-udevd with the stock Debian rules, and for each recorder kind
plugs it, waits for the last add event, settles, unplugs it, waits for the last remove event and
settles again. Every udev event in that window (all subsystems, in arrival order) is written with
its properties and its parent chain as seen at event time. Needs tests/hil/setup.sh to have run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .harness import GadgetRecorder, Guest, QemuRecorder, UdevEvent
from .images import build_fat32_image

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "udev"
RECORDER_FILES = {"DCIM/100MEDIA/VID00001.MP4": 150_000, "DCIM/100MEDIA/VID00002.MP4": 90_000}


@dataclass(frozen=True)
class Scenario:
    """One capture: how to plug, what event ends the add phase, how to unplug."""

    name: str
    description: str
    run: Callable[[Guest, Path], tuple[list[UdevEvent], list[UdevEvent]]]


def main(argv: list[str] | None = None) -> int:
    """Run the selected scenarios (all by default) in one guest and write their JSON files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("names", nargs="*", help="scenarios (default: all)")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.names or s.name in args.names]
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hil-capture-"))
    try:
        _capture(work, chosen, args.out)
    except BaseException:
        print(f"capture failed; console log and images kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work)
    return 0


def _capture(work: Path, chosen: list[Scenario], out: Path) -> None:
    with Guest.boot(work) as guest:
        guest.start_udevd()
        for scenario in chosen:
            added, removed = scenario.run(guest, work)
            events = [e.to_json() for e in added + removed]
            for event in events:
                event["properties"] = dict(sorted(event["properties"].items()))
            path = out / f"{scenario.name}.json"
            path.write_text(json.dumps(events, indent=1, ensure_ascii=False) + "\n")
            print(f"{path}: {len(added)} add-phase + {len(removed)} remove-phase events", file=sys.stderr)


def _usb_device_event(action: str, port_path: str) -> Callable[[UdevEvent], bool]:
    def match(e: UdevEvent) -> bool:
        return (
            e.action == action
            and e.subsystem == "usb"
            and e.device_type == "usb_device"
            and e.sys_path.endswith("/" + port_path)
        )

    return match


def _node_event(
    action: str, subsystem: str, port_path: str, device_type: str | None = None
) -> Callable[[UdevEvent], bool]:
    def match(e: UdevEvent) -> bool:
        return (
            e.action == action
            and e.subsystem == subsystem
            and (device_type is None or e.device_type == device_type)
            and f"/{port_path}/" in e.sys_path
            and e.device_node is not None
        )

    return match


def _phase(
    guest: Guest, act: Callable[[], object], *done: Callable[[UdevEvent], bool], timeout: float = 60.0
) -> list[UdevEvent]:
    mark = guest.udev_events.mark()
    act()
    for predicate in done:
        guest.udev_events.wait_for(predicate, timeout, after=mark)
    barrier = guest.udev_barrier()
    return guest.udev_events.events(after=mark)[: barrier - mark]


def _qemu_storage(guest: Guest, work: Path) -> tuple[list[UdevEvent], list[UdevEvent]]:
    image = build_fat32_image(work / "cam0001.img", label="CAM0001", files=RECORDER_FILES).path
    spec = QemuRecorder("cam0001", root_port=3, image=image, serial="CAM0001")
    plugged: list[object] = []
    added = _phase(
        guest,
        lambda: plugged.append(guest.plug_recorder(spec)),
        _node_event("add", "block", spec.storage_port_path, "partition"),
    )
    removed = _phase(
        guest,
        lambda: guest.unplug_recorder(plugged[0]),  # type: ignore[arg-type]
        _usb_device_event("remove", "1-3"),
    )
    return added, removed


def _qemu_ftdi(guest: Guest, work: Path) -> tuple[list[UdevEvent], list[UdevEvent]]:
    spec = QemuRecorder("ctl0001", root_port=4, image=None, serial="CAM0002", control_port=True)
    plugged: list[object] = []
    added = _phase(
        guest,
        lambda: plugged.append(guest.plug_recorder(spec)),
        _node_event("add", "tty", spec.serial_port_path),
    )
    removed = _phase(
        guest,
        lambda: guest.unplug_recorder(plugged[0]),  # type: ignore[arg-type]
        _usb_device_event("remove", "1-4"),
    )
    return added, removed


def _gadget(
    spec: GadgetRecorder, *last_add: Callable[[UdevEvent], bool]
) -> Callable[[Guest, Path], tuple[list[UdevEvent], list[UdevEvent]]]:
    def run(guest: Guest, work: Path) -> tuple[list[UdevEvent], list[UdevEvent]]:
        full = spec
        if spec.image is not None:
            image = guest.exchange_dir / spec.image.name
            label = "NO NAME" if "stick" in spec.name else spec.serial[-11:].upper()
            files = (
                {"Documents/report.docx": 20_000, "photo.jpg": 40_000}
                if "stick" in spec.name
                else RECORDER_FILES
            )
            build_fat32_image(image, label=label.replace(" ", "") or "STICK", files=files)
            full = GadgetRecorder(**{**spec.__dict__, "image": image})
        plugged: list[object] = []
        added = _phase(guest, lambda: plugged.append(guest.plug_gadget(full)), *last_add)
        removed = _phase(
            guest,
            lambda: guest.remove_gadget(plugged[0]),  # type: ignore[arg-type]
            _usb_device_event("remove", full.port_path),
        )
        return added, removed

    return run


SCENARIOS = [
    Scenario(
        "qemu_usb_storage_recorder",
        "QEMU usb-storage (46f4:0001, serial CAM0001) behind a usb-hub on xHCI root port 3",
        _qemu_storage,
    ),
    Scenario(
        "qemu_usb_serial_ftdi",
        "QEMU usb-serial FTDI (0403:6001, serial CAM0002) behind a usb-hub on root port 4",
        _qemu_ftdi,
    ),
    Scenario(
        "gadget_4255_0001_vendor_bulk",
        "gadget 4255:0001: mass storage + vendor bulk interface (FunctionFS, 0x01/0x81)",
        _gadget(
            GadgetRecorder(
                "rec4255",
                0x4255,
                0x0001,
                "4255CAM0001",
                manufacturer="HIL",
                product="Bulk Recorder",
                image=Path("rec4255.img"),
                vendor_bulk=True,
            ),
            _node_event("add", "block", "3-1", "partition"),
        ),
    ),
    Scenario(
        "gadget_acm_storage",
        "gadget 1d6b:0104: mass storage + CDC-ACM control port",
        _gadget(
            GadgetRecorder(
                "recacm",
                0x1D6B,
                0x0104,
                "ACMCAM0001",
                manufacturer="HIL",
                product="ACM Recorder",
                image=Path("recacm.img"),
                acm=True,
            ),
            _node_event("add", "tty", "3-1"),
            _node_event("add", "block", "3-1", "partition"),
        ),
    ),
    Scenario(
        "unknown_usb_stick",
        "gadget 0951:1666 (Kingston DataTraveler IDs), mass storage only, no DCIM",
        _gadget(
            GadgetRecorder(
                "stick",
                0x0951,
                0x1666,
                "60A44C3FAE2BE1A0",
                manufacturer="Kingston",
                product="DataTraveler 3.0",
                image=Path("stick.img"),
            ),
            _node_event("add", "block", "3-1", "partition"),
        ),
    ),
]


if __name__ == "__main__":
    sys.exit(main())
