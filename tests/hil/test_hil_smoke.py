"""HIL smoke test: the harness boots a guest, a recorder plugs in and out, udev sees both.

The guest is the one the HIL scenarios share (tests/hil/conftest.py); this test runs first in
it, before dockd starts, and the guest's clean power-off is asserted after the last HIL test.

Needs tests/hil/setup.sh. Without QEMU or the guest kernel this FAILS (HilSetupMissing names the
missing pieces): a skipped HIL test would look like a passing one.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .dock import Dock
from .harness import QemuRecorder, UdevEvent
from .images import build_fat32_image, read_image_file

pytestmark = [pytest.mark.hil, pytest.mark.timeout(240)]

VIDEO = "DCIM/100MEDIA/VID00001.MP4"


def test_recorder_plug_and_unplug_is_seen_by_udev(hil_guest: Dock, tmp_path: Path) -> None:
    image = build_fat32_image(
        tmp_path / "cam.img", label="CAM0001", files={VIDEO: 300_000, "DCIM/META.TXT": b"officer 0042\n"}
    )
    expected_sha = hashlib.sha256(read_image_file(image.path, VIDEO)).hexdigest()
    # the boot and udevd's start are the shared guest's (tests/hil/conftest.py: TIMINGS), which
    # powers off cleanly, asserted, after the last HIL test
    guest = hil_guest.guest
    timings: dict[str, float] = {}
    spec = QemuRecorder("cam1", root_port=3, image=image.path, serial="CAM0001")

    mark = guest.udev_events.mark()
    started = time.monotonic()
    plugged = guest.plug_recorder(spec)
    part = guest.udev_events.wait_for(_partition("add", spec), timeout=60, after=mark)
    timings["plug_to_partition_event_s"] = part.host_monotonic - started

    props = part.properties
    assert props["ID_VENDOR_ID"] == "46f4"  # QEMU usb-storage, fixed
    assert props["ID_MODEL_ID"] == "0001"
    assert props["ID_SERIAL_SHORT"] == "CAM0001"
    assert props["ID_FS_TYPE"] == "vfat"
    assert props["ID_FS_LABEL"] == "CAM0001"
    assert props["ID_FS_UUID"] == "1234-ABCD"
    assert "/usb1/1-3/1-3.1/" in part.sys_path  # behind the recorder's own hub
    assert "-usb-0:3.1:1.0-" in props["ID_PATH"]
    assert any(p["subsystem"] == "usb" and p["sys_path"].endswith("/1-3") for p in part.parent_chain), (
        "hub missing from the parent chain"
    )
    assert part.device_node is not None

    # the data really crosses the emulated USB: hash a file read through the guest's vfat
    guest.run(["mkdir", "-p", "/mnt/cam"])
    guest.run(["mount", "-t", "vfat", "-o", "ro", part.device_node, "/mnt/cam"])
    out = guest.run(["sha256sum", f"/mnt/cam/{VIDEO}"]).text
    guest.run(["umount", "/mnt/cam"])
    assert out.split()[0] == expected_sha

    mark = guest.udev_events.mark()
    started = time.monotonic()
    guest.unplug_recorder(plugged)
    gone = guest.udev_events.wait_for(_partition("remove", spec), timeout=30, after=mark)
    guest.udev_events.wait_for(
        lambda e: (
            e.action == "remove" and e.device_type == "usb_device" and e.sys_path.endswith("/1-3.1")
        ),
        timeout=30,
        after=mark,
    )
    timings["unplug_to_remove_event_s"] = gone.host_monotonic - started
    assert gone.device_node == part.device_node
    assert guest.run(["test", "-e", part.device_node], check=False).returncode == 1
    print("HIL timings:", json.dumps({k: round(v, 2) for k, v in timings.items()}))


def _partition(action: str, spec: QemuRecorder) -> Callable[[UdevEvent], bool]:
    def match(e: UdevEvent) -> bool:
        return (
            e.action == action
            and e.subsystem == "block"
            and e.device_type == "partition"
            and f"/{spec.storage_port_path}/" in e.sys_path
        )

    return match
