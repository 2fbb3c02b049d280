"""udev → DeviceEvent, replayed from real udev captures (tests/data/udev/, see its README).

Every captured event goes through UdevView → translate() exactly as the udev source hands it
over; the dock events that come out are compared in full with what a dock must see, including
the remove events whose USB parents were already gone from sysfs when udev broadcast them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.devices.events import KINDS, DeviceEvent
from dockd.devices.udev_translate import UdevView, fs_label, translate

CAPTURES = Path(__file__).parent / "data" / "udev"

# (action, kind, port, vendor, product, usb serial, node, fs type, fs label, bus, address)
Row = tuple[str, str, str, str | None, str | None, str | None, str, str | None, str | None,
            int | None, int | None]

EXPECTED: dict[str, list[Row]] = {
    "qemu_usb_storage_recorder": [
        # the recorder's own hub at 1-3 (0409:55aa) is wiring and yields nothing
        ("add", "usb", "1-3.1", "46f4", "0001", "CAM0001", "/dev/bus/usb/001/003", None, None, 1, 3),
        ("add", "sg", "1-3.1", "46f4", "0001", "CAM0001", "/dev/sg0", None, None, 1, 3),
        ("add", "block", "1-3.1", "46f4", "0001", "CAM0001", "/dev/sda", None, None, 1, 3),
        ("add", "block", "1-3.1", "46f4", "0001", "CAM0001", "/dev/sda1", "vfat", "CAM0001", 1, 3),
        ("change", "block", "1-3.1", "46f4", "0001", "CAM0001", "/dev/sda", None, None, 1, 3),
        # removes: the USB device is gone; port from the path, IDs from udev's database
        ("remove", "sg", "1-3.1", None, None, None, "/dev/sg0", None, None, None, None),
        ("remove", "block", "1-3.1", "46f4", "0001", "CAM0001", "/dev/sda1", "vfat", "CAM0001",
         None, None),
        ("remove", "block", "1-3.1", "46f4", "0001", "CAM0001", "/dev/sda", None, None, None, None),
        ("remove", "usb", "1-3.1", "46f4", "0001", None, "/dev/bus/usb/001/003", None, None, 1, 3),
    ],
    "qemu_usb_serial_ftdi": [
        ("add", "usb", "1-4.2", "0403", "6001", "CAM0002", "/dev/bus/usb/001/005", None, None, 1, 5),
        ("change", "usb", "1-4.2", "0403", "6001", "CAM0002", "/dev/bus/usb/001/005", None, None,
         1, 5),
        ("add", "tty", "1-4.2", "0403", "6001", "CAM0002", "/dev/ttyUSB0", None, None, 1, 5),
        # the hub 1-4 still exists when ttyUSB0 goes: its IDs must not be taken for the port's
        ("remove", "tty", "1-4.2", "0403", "6001", "CAM0002", "/dev/ttyUSB0", None, None, None, None),
        ("remove", "usb", "1-4.2", "0403", "6001", None, "/dev/bus/usb/001/005", None, None, 1, 5),
    ],
    "gadget_4255_0001_vendor_bulk": [
        ("add", "usb", "3-1", "4255", "0001", "4255CAM0001", "/dev/bus/usb/003/002", None, None, 3, 2),
        ("add", "sg", "3-1", "4255", "0001", "4255CAM0001", "/dev/sg0", None, None, 3, 2),
        ("add", "block", "3-1", "4255", "0001", "4255CAM0001", "/dev/sda", None, None, 3, 2),
        ("add", "block", "3-1", "4255", "0001", "4255CAM0001", "/dev/sda1", "vfat", "4255CAM0001",
         3, 2),
        ("change", "block", "3-1", "4255", "0001", "4255CAM0001", "/dev/sda", None, None, 3, 2),
        ("remove", "block", "3-1", "4255", "0001", "4255CAM0001", "/dev/sda1", "vfat", "4255CAM0001",
         None, None),
        ("remove", "sg", "3-1", None, None, None, "/dev/sg0", None, None, None, None),
        ("remove", "block", "3-1", "4255", "0001", "4255CAM0001", "/dev/sda", None, None, None, None),
        ("remove", "usb", "3-1", "4255", "0001", None, "/dev/bus/usb/003/002", None, None, 3, 2),
    ],
    "gadget_acm_storage": [
        # ttyGS0 (the gadget's own side, /sys/devices/virtual/tty) is no dock port
        ("add", "usb", "3-1", "1d6b", "0104", "ACMCAM0001", "/dev/bus/usb/003/003", None, None, 3, 3),
        ("add", "tty", "3-1", "1d6b", "0104", "ACMCAM0001", "/dev/ttyACM0", None, None, 3, 3),
        ("add", "sg", "3-1", "1d6b", "0104", "ACMCAM0001", "/dev/sg0", None, None, 3, 3),
        ("add", "block", "3-1", "1d6b", "0104", "ACMCAM0001", "/dev/sda", None, None, 3, 3),
        ("add", "block", "3-1", "1d6b", "0104", "ACMCAM0001", "/dev/sda1", "vfat", "ACMCAM0001", 3, 3),
        ("change", "block", "3-1", "1d6b", "0104", "ACMCAM0001", "/dev/sda", None, None, 3, 3),
        ("remove", "sg", "3-1", None, None, None, "/dev/sg0", None, None, None, None),
        ("remove", "block", "3-1", "1d6b", "0104", "ACMCAM0001", "/dev/sda1", "vfat", "ACMCAM0001",
         None, None),
        ("remove", "block", "3-1", "1d6b", "0104", "ACMCAM0001", "/dev/sda", None, None, None, None),
        ("remove", "tty", "3-1", "1d6b", "0104", "ACMCAM0001", "/dev/ttyACM0", None, None, None, None),
        ("remove", "usb", "3-1", "1d6b", "0104", None, "/dev/bus/usb/003/003", None, None, 3, 3),
    ],
    "unknown_usb_stick": [
        ("add", "usb", "3-1", "0951", "1666", "60A44C3FAE2BE1A0", "/dev/bus/usb/003/004", None, None,
         3, 4),
        ("add", "sg", "3-1", "0951", "1666", "60A44C3FAE2BE1A0", "/dev/sg0", None, None, 3, 4),
        ("add", "block", "3-1", "0951", "1666", "60A44C3FAE2BE1A0", "/dev/sda", None, None, 3, 4),
        ("add", "block", "3-1", "0951", "1666", "60A44C3FAE2BE1A0", "/dev/sda1", "vfat", "NONAME",
         3, 4),
        ("change", "block", "3-1", "0951", "1666", "60A44C3FAE2BE1A0", "/dev/sda", None, None, 3, 4),
        ("remove", "sg", "3-1", None, None, None, "/dev/sg0", None, None, None, None),
        ("remove", "block", "3-1", "0951", "1666", "60A44C3FAE2BE1A0", "/dev/sda1", "vfat", "NONAME",
         None, None),
        ("remove", "block", "3-1", "0951", "1666", "60A44C3FAE2BE1A0", "/dev/sda", None, None,
         None, None),
        ("remove", "usb", "3-1", "0951", "1666", None, "/dev/bus/usb/003/004", None, None, 3, 4),
    ],
}


def load_capture(name: str) -> list[UdevView]:
    """The capture's events as the udev source builds them (udev_source.view_of)."""
    raw = json.loads((CAPTURES / f"{name}.json").read_text())
    return [_view(event) for event in raw]


def dock_events(name: str) -> list[DeviceEvent]:
    """What the dock receives while the capture's device is plugged in and pulled out."""
    return [e for e in (translate(v) for v in load_capture(name)) if e is not None]


def _row(e: DeviceEvent) -> Row:
    assert e.device_node is not None
    return (e.action, e.kind, e.port, e.vendor_id, e.product_id, e.usb_serial, e.device_node,
            e.fs_type, e.fs_label, e.usb_bus, e.usb_address)


def test_every_capture_has_an_expectation() -> None:
    assert sorted(p.stem for p in CAPTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_replays_to_the_expected_dock_events(name: str) -> None:
    assert [_row(e) for e in dock_events(name)] == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_events_carry_their_own_udev_properties_and_path(name: str) -> None:
    views = load_capture(name)
    for view in views:
        event = translate(view)
        if event is None:
            continue
        assert event.sys_path == view.sys_path
        assert dict(event.properties) == dict(view.properties)
        assert f"/{event.port}" in event.sys_path


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_remove_events_have_lost_their_usb_parent_and_still_name_the_port(name: str) -> None:
    """The capture really has parentless removes (else this test proves nothing)."""
    orphaned = [v for v in load_capture(name)
                if v.action == "remove" and v.subsystem in ("block", "tty", "scsi_generic")
                and "/virtual/" not in v.sys_path]  # ttyGS0: the gadget's own side
    assert orphaned
    for view in orphaned:
        port = EXPECTED[name][0][2]
        own_usb = [p for p in view.parents if p.device_type == "usb_device"
                   and p.sys_path.endswith("/" + port)]
        assert own_usb == [], "capture changed: the recorder's USB device was still in sysfs"
        event = translate(view)
        assert event is not None and event.port == port and event.action == "remove"


def test_gadget_side_and_interface_events_are_ignored() -> None:
    views = load_capture("gadget_acm_storage")
    ignored = [v for v in views if translate(v) is None]
    assert any(v.sys_path == "/sys/devices/virtual/tty/ttyGS0" for v in ignored)
    assert any(v.device_type == "usb_interface" for v in ignored)
    assert any(v.action in ("bind", "unbind") for v in ignored)
    assert all(translate(v) is None for v in views if v.subsystem in ("gadget", "udc", "bdi"))


def test_hub_events_are_not_dock_devices() -> None:
    hubs = [v for v in load_capture("qemu_usb_storage_recorder")
            if v.device_type == "usb_device" and v.properties.get("TYPE", "").startswith("9/")]
    assert {v.action for v in hubs} >= {"add", "remove"}
    assert [translate(v) for v in hubs] == [None] * len(hubs)


def test_root_hub_and_non_usb_devices_give_nothing() -> None:
    root = UdevView("add", "usb", "usb_device", "/sys/devices/pci0000:00/0000:00:04.0/usb1", None,
                    {"TYPE": "9/0/1", "ID_VENDOR_ID": "1d6b"})
    assert translate(root) is None
    loop = UdevView("add", "block", "disk", "/sys/devices/virtual/block/loop0", "/dev/loop0", {})
    assert translate(loop) is None
    bound = UdevView("bind", "usb", "usb_device", "/sys/devices/x/usb1/1-2", None, {})
    assert translate(bound) is None


def test_ids_come_from_product_when_udev_had_no_database_entry() -> None:
    view = UdevView("remove", "usb", "usb_device", "/sys/devices/x/usb1/1-2", None,
                    {"PRODUCT": "4255/1/100", "BUSNUM": "001", "DEVNUM": "009",
                     "DEVNAME": "/dev/bus/usb/001/009"})
    event = translate(view)
    assert event is not None
    assert (event.vendor_id, event.product_id, event.usb_bus, event.usb_address, event.device_node) \
        == ("4255", "0001", 1, 9, "/dev/bus/usb/001/009")


def test_the_volume_label_is_the_file_systems_own_not_udevs_safe_form() -> None:
    # udev replaces a space by "_" in ID_FS_LABEL; ID_FS_LABEL_ENC escapes it.
    assert fs_label({"ID_FS_LABEL": "REC_01", "ID_FS_LABEL_ENC": "REC\\x2001"}) == "REC 01"
    assert fs_label({"ID_FS_LABEL": "执法仪", "ID_FS_LABEL_ENC": "执法仪"}) == "执法仪"
    # bytes that are not UTF-8 (a DOS code page label): udev's safe form
    assert fs_label({"ID_FS_LABEL": "__", "ID_FS_LABEL_ENC": "\\xb7\\xa8"}) == "__"
    assert fs_label({"ID_FS_LABEL": "NONAME"}) == "NONAME"
    assert fs_label({}) is None and fs_label({"ID_FS_LABEL_ENC": ""}) is None


def _udev_encode(text: str) -> str:
    # what udev's encode_devnode_name does: keep UTF-8 and safe ASCII, escape the rest
    return "".join(c if (ord(c) > 127 or c.isalnum() or c in "#+-.:=@_") and c.isprintable()
                   else "".join(f"\\x{b:02x}" for b in c.encode("utf-8")) for c in text)


@given(st.text(min_size=1, max_size=11))
def test_any_label_survives_udevs_encoding(label: str) -> None:
    assert fs_label({"ID_FS_LABEL": "x", "ID_FS_LABEL_ENC": _udev_encode(label)}) == label


# --- random input never crashes --------------------------------------------------------------

# Port-like segments, the strings of [0-9]{1,2}-[0-9]{1,2}(\.[0-9]{1,2}){0,3} built from their
# parts: st.from_regex of that pattern was half of the test's time.
_NUMBER = st.text(alphabet="0123456789", min_size=1, max_size=2)
_PORTISH = st.builds(lambda bus, ports: f"{bus}-{'.'.join(ports)}", _NUMBER,
                     st.lists(_NUMBER, min_size=1, max_size=4))
_SEGMENT = st.one_of(_PORTISH, st.text(alphabet="abc:.-0123456789usb", min_size=1, max_size=12))
_PATH = st.lists(_SEGMENT, max_size=8).map(lambda parts: "/sys/devices/" + "/".join(parts))
_KEYS = st.sampled_from(["ID_VENDOR_ID", "ID_MODEL_ID", "PRODUCT", "BUSNUM", "DEVNUM", "TYPE",
                         "ID_SERIAL_SHORT", "ID_FS_TYPE", "ID_FS_LABEL", "ID_FS_LABEL_ENC",
                         "DEVNAME", "DEVTYPE"])
_PROPS = st.dictionaries(st.one_of(_KEYS, st.text(max_size=8)), st.text(max_size=16), max_size=10)
_SUBSYSTEMS = st.sampled_from(["usb", "tty", "block", "scsi_generic", "gadget", "", "pci"])
_DEVTYPES = st.sampled_from([None, "usb_device", "usb_interface", "disk", "partition", ""])
_ACTIONS = st.sampled_from(["add", "remove", "change", "bind", "unbind", "move", ""])


def _views(depth: int) -> st.SearchStrategy[UdevView]:
    parents = st.just(()) if depth == 0 else st.lists(_views(depth - 1), max_size=3).map(tuple)
    return st.builds(UdevView, _ACTIONS, _SUBSYSTEMS, _DEVTYPES, _PATH,
                     st.one_of(st.none(), st.text(max_size=20)), _PROPS, parents)


@settings(max_examples=400, deadline=None)
@given(_views(2))
def test_random_views_never_crash_and_results_are_well_formed(view: UdevView) -> None:
    event = translate(view)
    if event is None:
        return
    assert event.action == view.action and event.kind in KINDS
    assert re.fullmatch(r"\d+-\d+(\.\d+)*", event.port)
    assert event.port in view.sys_path.split("/")
    for value in (event.vendor_id, event.product_id):
        assert value is None or value == value.lower()
    assert dict(event.properties) == dict(view.properties)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(EXPECTED)), st.data())
def test_captured_events_with_random_properties_removed_never_crash(name: str,
                                                                     data: st.DataObject) -> None:
    views = load_capture(name)
    view = views[data.draw(st.integers(0, len(views) - 1))]
    keys = sorted(view.properties)
    dropped = set(data.draw(st.lists(st.sampled_from(keys), max_size=len(keys)))) if keys else set()
    stripped = UdevView(view.action, view.subsystem, view.device_type, view.sys_path,
                        view.device_node,
                        {k: v for k, v in view.properties.items() if k not in dropped},
                        view.parents[: data.draw(st.integers(0, len(view.parents)))])
    event = translate(stripped)
    original = translate(view)
    # Losing properties or parents may lose IDs, never the port or the kind.
    if original is not None and event is not None:
        assert (event.port, event.kind, event.action) == (original.port, original.kind,
                                                          original.action)


def _view(event: Mapping[str, Any]) -> UdevView:
    parents = tuple(
        UdevView(event["action"], p["subsystem"] or "", p["properties"].get("DEVTYPE"),
                 p["sys_path"], p["properties"].get("DEVNAME"), p["properties"])
        for p in event["parent_chain"]
    )
    return UdevView(event["action"], event["subsystem"] or "", event["device_type"],
                    event["sys_path"], event["device_node"], event["properties"], parents)
