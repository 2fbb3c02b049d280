"""The storage-switch identity rule: only the docked recorder's own disk is offloaded.

A disk that appears on the port during a recorder's switch to mass storage must carry the
model's storage USB ids, sit on the recorder's port and carry the identity the recorder gave
(the Ambarella device ID as its volume label, a plain mass-storage recorder's USB serial);
with ``enrolled_only`` a recorder known only by its disk must be enrolled. Anything else is
``unknown_device`` and is never mounted. The pure rule first, then the real daemon with the
simulator's recorders and foreign disks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockd.config import parse_config
from dockd.config.daemon import ModelSpec
from dockd.devices.events import DeviceEvent
from dockd.devices.recorders.base import RecorderIdentity
from dockd.dock.storage_identity import disk_serial, foreign_disk, labels_agree, storage_ids
from dockd.errors import ConfigError
from dockd.sim.dock import ForeignDisk
from dockd.sim.recorders import SimRecorderSpec
from dockd.sim.runner import DaemonRunner

GAT = ModelSpec("gat", "2ca3", "0947", "gat947", "serial", "2ca3", "0948")
AMBA = ModelSpec("amba", "4255", "0001", "amba", "usb")  # names no storage ids: its own
MSC = ModelSpec("msc", "2ca3", "0100", "msc")


def _usb(port: str = "1-1.2", ids: tuple[str, str] = ("2ca3", "0947"),
         serial: str | None = None) -> DeviceEvent:
    return DeviceEvent("add", "usb", port, f"/sys/x/{port}", vendor_id=ids[0], product_id=ids[1],
                       usb_serial=serial)


def _disk(port: str = "1-1.2", ids: tuple[str | None, str | None] = ("2ca3", "0948"),
          serial: str | None = "S1", label: str | None = "REC") -> DeviceEvent:
    return DeviceEvent("add", "block", port, f"/sys/x/{port}/sdx1", device_node="/dev/sdx1",
                       vendor_id=ids[0], product_id=ids[1], usb_serial=serial, fs_type="vfat",
                       fs_label=label)


AMBA_ID = RecorderIdentity("AMBA0001234", "amba", device_label="AMBA0001234")
GAT_ID = RecorderIdentity("ZFY0001", "gat947")


def test_the_recorders_own_disk_passes() -> None:
    assert foreign_disk(GAT, _usb(), _disk(), GAT_ID) is None
    assert foreign_disk(GAT, _usb(), _disk(ids=("2CA3", "0948")), GAT_ID) is None  # case
    amba = _usb(ids=("4255", "0001"))
    assert foreign_disk(AMBA, amba, _disk(ids=("4255", "0001"), label="AMBA0001234"), AMBA_ID) is None
    assert foreign_disk(AMBA, amba, _disk(ids=("4255", "0001"), label="amba0001234"), AMBA_ID) is None
    assert foreign_disk(MSC, _usb(ids=("2ca3", "0100"), serial="S1"),
                        _disk(ids=("2ca3", "0100")), None) is None
    # a recorder found in storage mode: its disk is the first event
    first = _disk(ids=("2ca3", "0948"))
    assert foreign_disk(GAT, first, first, None) is None


@pytest.mark.parametrize(("model", "first", "disk", "identity", "why"), [
    (GAT, _usb(), _disk(ids=("0781", "5567")), GAT_ID,
     "its USB ids 0781:5567 are not the storage ids 2ca3:0948 of model gat"),
    (GAT, _usb(), _disk(ids=("2ca3", "0947")), GAT_ID, "are not the storage ids"),  # control ids
    (GAT, _usb(), _disk(ids=(None, None)), GAT_ID, "its USB ids None:None"),
    (GAT, _usb(), _disk(port="1-1.2.4"), GAT_ID,
     "it is on port 1-1.2.4, not on the recorder's port 1-1.2"),
    (AMBA, _usb(ids=("4255", "0001")), _disk(ids=("4255", "0002"), label="AMBA0001234"), AMBA_ID,
     "its USB ids 4255:0002 are not the storage ids 4255:0001"),
    (AMBA, _usb(ids=("4255", "0001")), _disk(ids=("4255", "0001"), label="NONAME"), AMBA_ID,
     "its volume label 'NONAME' is not the recorder's id 'AMBA0001234'"),
    (AMBA, _usb(ids=("4255", "0001")), _disk(ids=("4255", "0001"), label=None), AMBA_ID,
     "it has no volume label"),
    (MSC, _usb(ids=("2ca3", "0100"), serial="S1"), _disk(ids=("2ca3", "0100"), serial="S2"), None,
     "its USB serial 'S2' is not the recorder's 'S1'"),
    (MSC, _usb(ids=("2ca3", "0100"), serial="S1"), _disk(ids=("2ca3", "0100"), serial=None), None,
     "its USB serial None"),
])
def test_anything_else_is_foreign_and_says_why(model: ModelSpec, first: DeviceEvent,
                                              disk: DeviceEvent, identity: RecorderIdentity | None,
                                              why: str) -> None:
    found = foreign_disk(model, first, disk, identity)
    assert found is not None and why in found, found


def test_storage_ids_labels_and_disk_serial() -> None:
    assert storage_ids(GAT) == ("2ca3", "0948") and storage_ids(AMBA) == ("4255", "0001")
    assert labels_agree("AMBA0001234567", "AMBA0001234")  # an 11-character FAT label: a prefix
    assert not labels_agree("AMBA0001234567", "AMBA00012")
    assert disk_serial(_usb(serial="U"), _disk(serial="D", label="L")) == "U"
    assert disk_serial(_usb(), _disk(serial=None, label="L")) == "L"


_ids = st.sampled_from(["2ca3", "0947", "0948", "4255", "0001", "0781", "2CA3"])
_text = st.one_of(st.none(), st.text(max_size=14))


@given(port=st.sampled_from(["1-1.2", "1-1.2.4", "2-1"]), vid=st.one_of(st.none(), _ids),
       pid=st.one_of(st.none(), _ids), serial=_text, label=_text,
       identity=st.sampled_from([None, GAT_ID, AMBA_ID]), model=st.sampled_from([GAT, AMBA, MSC]),
       first_serial=_text)
def test_only_a_disk_matching_everything_passes(port: str, vid: str | None, pid: str | None,
                                                serial: str | None, label: str | None,
                                                identity: RecorderIdentity | None,
                                                model: ModelSpec, first_serial: str | None) -> None:
    first = _usb(serial=first_serial)
    disk = _disk(port=port, ids=(vid, pid), serial=serial, label=label)
    why = foreign_disk(model, first, disk, identity)
    matches = (port == first.port
               and (str(vid).lower(), str(pid).lower()) == storage_ids(model)
               and (identity is None or not identity.device_label
                    or (label is not None and labels_agree(identity.device_label, label)))
               and (identity is not None or not first_serial or serial == first_serial))
    assert (why is None) == matches, why


def test_enrolled_only_is_a_daemon_switch_off_by_default() -> None:
    assert parse_config({}).daemon.enrolled_only is False
    assert parse_config({"daemon": {"enrolled_only": True}}).daemon.enrolled_only is True
    with pytest.raises(ConfigError, match=r"daemon\.enrolled_only"):
        parse_config({"daemon": {"enrolled_only": "yes"}})


def test_the_example_config_turns_enrolled_only_on() -> None:
    from dockd.config import load_config

    example = Path(__file__).resolve().parent.parent / "config" / "dockd.toml"
    assert load_config(example).daemon.enrolled_only is True


# -- the real daemon, simulated recorders -------------------------------------------------------


def _records(h: DaemonRunner) -> list[dict[str, Any]]:
    return h.custody()


def _fault_details(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["payload"]["bay"]: r["payload"] for r in records if r["type"] == "bay.fault"}


def _catalog(h: DaemonRunner) -> list[dict[str, Any]]:
    out = h.dockd("catalog", "--json")
    assert out.returncode == 0, out.stderr
    items: list[dict[str, Any]] = json.loads(out.stdout)
    return items


@pytest.fixture
def dock4(tmp_path: Path) -> Iterator[DaemonRunner]:
    h = DaemonRunner(tmp_path / "dock", bays=4, storage_wait_s=10)
    h.start()
    yield h
    h.close()


def test_a_foreign_disk_during_the_switch_is_never_offloaded(dock4: DaemonRunner) -> None:
    h = dock4
    # Bay 1: a USB stick pushed in while the GA/T 947 recorder is off the bus.
    h.dock.plug("1-1.1", "gat947", spec=SimRecorderSpec(serial="ZFYSW1"),
                foreign=ForeignDisk())
    # Bay 2: a disk with the Ambarella's storage ids, but not its volume label (its device ID).
    h.dock.plug("1-1.2", "amba", spec=SimRecorderSpec(serial="AMBSWAP2", protocol="amba-stream"),
                foreign=ForeignDisk("4255", "0002", usb_serial="AMBSWAP2", label="EVIDENCE"))
    # Bay 3: the right ids and serial, but on another port of a hub in the bay.
    h.dock.plug("1-1.3", "gat947", spec=SimRecorderSpec(serial="ZFYSW3"),
                foreign=ForeignDisk("2ca3", "0948", usb_serial="ZFYSW3", label="RECORDER",
                                    port="1-1.3.4"))
    # Bay 4: the genuine article, for contrast.
    h.dock.plug("1-1.4", "amba", spec=SimRecorderSpec(serial="AMBREAL4", protocol="amba-stream"))
    for bay in (1, 2, 3):
        status = h.wait_bay(bay, "fault", timeout=30)
        assert status["fault"] == "unknown_device", status
    assert h.wait_bay(4, "ready_unchecked", timeout=30)["recorder"] == "AMBREAL4"  # no battery

    records = _records(h)
    faults = _fault_details(records)
    assert "USB ids 0781:5567 are not the storage ids 2ca3:0948" in faults[1]["detail"]
    assert "volume label 'EVIDENCE' is not the recorder's id 'AMBSWAP2'" in faults[2]["detail"]
    assert "on port 1-1.3.4, not on the recorder's port 1-1.3" in faults[3]["detail"]
    for bay, serial in ((1, "ZFYSW1"), (2, "AMBSWAP2"), (3, "ZFYSW3")):
        assert faults[bay]["recorder"] == serial and "after the switch" in faults[bay]["detail"]
        assert "never mounted" in faults[bay]["detail"]
    started = [r["subject"] for r in records if r["type"] == "session.started"]
    assert started == ["AMBREAL4"]
    assert {i["recorder"] for i in _catalog(h)} == {"AMBREAL4"}


def test_enrolled_only_offloads_only_enrolled_plain_msc_recorders(tmp_path: Path) -> None:
    h = DaemonRunner(tmp_path / "dock", bays=4, daemon_extra="enrolled_only = true")
    h.start()
    try:
        for serial in ("MSCGOOD", "MSCOLD", "MSCSWAP"):
            add = h.dockd("recorders", "add", serial, "--brand", "Acme", "--model", "M1")
            assert add.returncode == 0, add.stderr
        assert h.dockd("recorders", "retire", "MSCOLD").returncode == 0
        h.dock.plug("1-1.1", "msc", usb_serial="MSCGOOD")
        h.dock.plug("1-1.2", "msc", usb_serial="MSCNEW")
        h.dock.plug("1-1.3", "msc", usb_serial="MSCOLD")
        # An enrolled serial on the USB device, but the disk behind it is another's.
        h.dock.plug("1-1.4", "msc", usb_serial="MSCSWAP",
                    foreign=ForeignDisk("2ca3", "0100", usb_serial="MSCOTHER", label="RECORDER"))
        assert h.wait_bay(1, "ready_unchecked", timeout=30)["recorder"] == "MSCGOOD"
        for bay in (2, 3, 4):
            assert h.wait_bay(bay, "fault", timeout=30)["fault"] == "unknown_device"
        faults = _fault_details(_records(h))
        assert "serial 'MSCNEW' is not enrolled" in faults[2]["detail"]
        assert "recorder MSCOLD is retired" in faults[3]["detail"]
        assert "USB serial 'MSCOTHER' is not the recorder's 'MSCSWAP'" in faults[4]["detail"]
        assert {i["recorder"] for i in _catalog(h)} == {"MSCGOOD"}
    finally:
        h.close()
