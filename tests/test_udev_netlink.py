"""The udev source on this host's real kernel netlink: loop devices come and go.

No udevd runs here, so the source listens to the kernel's own uevents
(``UdevSource(..., netlink="kernel")``). A loop device is the one block device this machine can
create and destroy at will: it is added and removed through /dev/loop-control, and a partitioned
image attached with ``losetup -P`` (+ ``partx -a``) adds, and on detach removes, its partition.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockd.devices.events import DeviceEvent
from dockd.devices.udev_source import UdevSource
from dockd.devices.udev_translate import UdevView

LOOP_CTL_ADD = 0x4C80
LOOP_CTL_REMOVE = 0x4C81
FIRST_PRIVATE_LOOP = 240  # far above what losetup -f hands out to the other tests on this host

pytestmark = pytest.mark.timeout(60)


class Recorder:
    """Collects what the source reports, with a blocking wait."""

    def __init__(self) -> None:
        self.raw: list[UdevView] = []
        self.events: list[DeviceEvent] = []
        self._cond = threading.Condition()

    def on_raw(self, view: UdevView) -> None:
        with self._cond:
            self.raw.append(view)
            self._cond.notify_all()

    def on_event(self, event: DeviceEvent) -> None:
        with self._cond:
            self.events.append(event)

    def wait_for(self, predicate: Callable[[UdevView], bool], timeout: float = 10) -> UdevView:
        with self._cond:
            found: list[UdevView] = []

            def seen() -> bool:
                found[:] = [v for v in self.raw if predicate(v)]
                return bool(found)

            if not self._cond.wait_for(seen, timeout):
                got = [(v.action, v.sys_path) for v in self.raw]
                raise AssertionError(f"no matching uevent within {timeout}s; got {got}")
            return found[0]


@pytest.fixture
def loop_number() -> Iterator[int]:
    """A loop device number nobody else uses (created later by the test itself)."""
    if os.geteuid() != 0 or not Path("/dev/loop-control").exists():
        pytest.fail("needs root and /dev/loop-control (this project's CI machine has both)")
    number = next(n for n in range(FIRST_PRIVATE_LOOP, FIRST_PRIVATE_LOOP + 200)
                  if not Path(f"/sys/devices/virtual/block/loop{n}").exists())
    yield number
    # Leave nothing behind even when an assertion failed half-way.
    subprocess.run(["losetup", "-d", f"/dev/loop{number}"], capture_output=True, check=False)
    with contextlib.suppress(OSError):
        _loop_ctl(LOOP_CTL_REMOVE, number)


@pytest.fixture
def partitioned_image(tmp_path: Path) -> Path:
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(4 << 20)
    subprocess.run(["sfdisk", "--quiet", str(image)], input=b"label: dos\nstart=2048, type=83\n",
                   check=True, capture_output=True)
    return image


def test_kernel_netlink_sees_loop_device_and_partition_come_and_go(
        loop_number: int, partitioned_image: Path) -> None:
    rec = Recorder()
    source = UdevSource(rec.on_event, netlink="kernel", on_raw=rec.on_raw)
    source.start(coldplug=False)
    name, node = f"loop{loop_number}", f"/dev/loop{loop_number}"
    part = f"{name}p1"
    try:
        _loop_ctl(LOOP_CTL_ADD, loop_number)
        added = rec.wait_for(lambda v: v.action == "add" and v.sys_path.endswith(f"/block/{name}"))
        _attach(node, partitioned_image)
        part_added = rec.wait_for(lambda v: v.action == "add" and v.sys_path.endswith("/" + part))
        subprocess.run(["losetup", "-d", node], check=True, capture_output=True)
        part_removed = rec.wait_for(lambda v: v.action == "remove" and v.sys_path.endswith("/" + part))
        _loop_ctl(LOOP_CTL_REMOVE, loop_number)
        removed = rec.wait_for(lambda v: v.action == "remove" and v.sys_path.endswith(f"/block/{name}"))
    finally:
        source.stop()

    assert added.subsystem == "block" and added.device_type == "disk"
    assert added.sys_path == f"/sys/devices/virtual/block/{name}"
    assert added.device_node == node
    assert "ID_FS_TYPE" not in added.properties  # the kernel's uevent, without udev's additions
    assert part_added.device_type == "partition" and part_added.device_node == f"/dev/{part}"
    assert part_added.properties["PARTN"] == "1"
    # a remove arrives after the device left sysfs: the view holds what the uevent carried
    assert part_removed.device_type == "partition" and part_removed.device_node == f"/dev/{part}"
    assert removed.device_type == "disk" and removed.device_node == node
    # the order the kernel sent them in is the order the source delivered them in
    ours = [(v.action, v.sys_path.rsplit("/", 1)[1]) for v in rec.raw
            if v.sys_path.rsplit("/", 1)[1] in (name, part) and v.action in ("add", "remove")]
    assert ours == [("add", name), ("add", part), ("remove", part), ("remove", name)]
    # a loop device sits on no USB port: nothing of it reaches the dock
    assert not [e for e in rec.events if name in e.sys_path]


def test_coldplug_reports_devices_present_at_start_as_add(loop_number: int,
                                                          partitioned_image: Path) -> None:
    _loop_ctl(LOOP_CTL_ADD, loop_number)
    _attach(f"/dev/loop{loop_number}", partitioned_image)
    rec = Recorder()
    source = UdevSource(rec.on_event, netlink="kernel", on_raw=rec.on_raw)
    source.start(coldplug=True)
    source.stop()
    mine = {v.sys_path.rsplit("/", 1)[1]: v for v in rec.raw if f"loop{loop_number}" in v.sys_path}
    assert set(mine) == {f"loop{loop_number}", f"loop{loop_number}p1"}
    assert {v.action for v in mine.values()} == {"add"}
    # coldplug views have their parents (the device exists), unlike a remove
    assert mine[f"loop{loop_number}p1"].parents[0].sys_path.endswith(f"/loop{loop_number}")


def test_a_failing_handler_does_not_kill_the_monitor(loop_number: int) -> None:
    rec = Recorder()
    name = f"loop{loop_number}"
    raised: list[str] = []

    def explode_on_add(view: UdevView) -> None:
        if view.action == "add" and view.sys_path.endswith("/" + name):
            raised.append(view.sys_path)
            raise RuntimeError("handler bug")
        rec.on_raw(view)

    source = UdevSource(rec.on_event, netlink="kernel", on_raw=explode_on_add)
    source.start(coldplug=False)
    try:
        _loop_ctl(LOOP_CTL_ADD, loop_number)
        _loop_ctl(LOOP_CTL_REMOVE, loop_number)
        # the add raised in the monitor thread; the remove after it still arrives
        rec.wait_for(lambda v: v.action == "remove" and v.sys_path.endswith("/" + name))
    finally:
        source.stop()
    assert raised == [f"/sys/devices/virtual/block/{name}"]


def _attach(node: str, image: Path) -> None:
    subprocess.run(["losetup", "-P", node, str(image)], check=True, capture_output=True)
    # This host's kernel parses no MBR (losetup -P and BLKRRPART find no partition), so the
    # partition is added explicitly (BLKPG), as the kernel would have after a scan.
    subprocess.run(["partx", "-a", node], check=True, capture_output=True)


def _loop_ctl(request: int, number: int) -> None:
    fd = os.open("/dev/loop-control", os.O_RDWR)
    try:
        fcntl.ioctl(fd, request, number)
    finally:
        os.close(fd)
