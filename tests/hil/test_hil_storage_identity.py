"""Storage-switch identity on a real kernel (issue 14 item 2): a disk that appears on a
recorder's port during its switch to mass storage, but is not the recorder's, is never
mounted or offloaded as that recorder's files.

The recorders are the firmware recorders of test_hil_scenarios.py (guest/recorder_fw.py): they
log in over their control port, are told to switch, leave the bus and re-enumerate on the
same port — here as a disk that is not theirs:

* GA/T 947 (CDC-ACM, bay 2, 4-1) whose disk comes back with a USB stick's ids 0781:5567
  instead of the model's storage ids 2ca3:0948 (the wrong VID:PID on the same port);
* Ambarella (bay 1, 3-1) whose disk has the model's ids 4255:0001 and the recorder's own USB
  serial but another volume label (the right VID:PID, not the recorder's identity: the device
  ID it gave over its control port labels its card);
* with `[daemon] enrolled_only = true`: a plain mass-storage disk with the plain-msc model's
  ids 46f4:0001 whose USB serial is not enrolled (bay 3, 1-3.1);
* a GA/T 947 recorder in bay 2 whose own disk comes back on bay 1's port (another UDC).

The first two then come back genuine (the same serial, the right disk) and end ready with
exactly their cards' files. A disk on another port of a hub in the same bay cannot be built
here (gadgets sit alone on their dummy_hcd bus): the simulator covers it
(tests/test_storage_identity.py).

The guest, its store disk and dockd are those of the scenarios (tests/hil/conftest.py), with
`enrolled_only` and a shorter storage wait reloaded into dockd's config for this module; the
helpers are those of test_hil_scenarios.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from .dock import (
    AMBA,
    BAY_AMBA,
    BAY_GAT,
    BAY_MSC,
    GAT947,
    MOUNT_ROOT,
    MSC_ROOT_PORT,
    PASSWORD,
    Dock,
    config_text,
)
from .harness import FirmwareRecorder, GuestProcess, HilError, QemuRecorder, UdevEvent
from .images import RecorderImage
from .test_hil_scenarios import (
    AMBA_READY,
    _all_offloaded,
    _concurrently,
    _hashes,
    _image,
    _plug_pair,
    _stored,
    _types,
    _unplug,
    _verify,
)

# A hang guard: the first scenario includes a config reload (run alone, the guest's boot,
# udevd and the daemon's start).
pytestmark = [pytest.mark.hil, pytest.mark.timeout(600)]

STICK_IDS = (0x0781, 0x5567)  # a SanDisk Cruzer Blade's ids
GAT_READY = ("ready", [])  # the GA/T 947 firmware reports battery, storage and clock
# How long a bay waits for the disk after the switch (the scenarios' 90 s, shortened: one
# scenario waits it out). A genuine switch in the guest (the control-mode device's remove →
# the disk's partition: "HIL timings" *_switch_s) took 1.4-4.2 s in two runs of the HIL
# suite under the heavy lock (20 switches); 20 s leaves about five times that
# for a busier machine, and the scenario that waits it out asserts that the disk came while
# its bay still waited (so too short a wait fails, never passes).
STORAGE_WAIT_S = 20


@pytest.fixture(scope="module")
def dock(hil_dock: Dock) -> Dock:
    """The shared guest (tests/hil/conftest.py) running dockd with the scenarios' bays and
    models, `enrolled_only` on and the shorter storage wait (applied by a config reload)."""
    seconds = hil_dock.use_config(config_text(enrolled_only=True, storage_wait_s=STORAGE_WAIT_S))
    print(f"HIL storage identity: config reloaded in {seconds:.1f} s")
    return hil_dock


@contextmanager
def _pulled_on_failure(fws: dict[int, GuestProcess]) -> Iterator[None]:
    """A failed scenario pulls its firmware recorders, so the next one finds the UDCs free."""
    try:
        yield
    except BaseException as failure:
        for fw in fws.values():
            try:
                fw.terminate()
            except HilError as exc:  # already gone: said beside the failure, which goes on
                failure.add_note(f"pulling {fw.argv[-2][:60]}: {exc}")
        raise


def _card(dock: Dock, name: str, label: str, prefix: str) -> RecorderImage:
    """A small card: two short videos and a text file, named so a foreign one is recognisable."""
    return _image(dock, name, label, {f"DCIM/100MEDIA/{prefix}00001.MP4": 120_000,
                                      f"DCIM/100MEDIA/{prefix}00002.MP4": 80_000,
                                      "MISC/NOTE.TXT": f"{name}\n".encode()})


def _partition(dock: Dock, usb_dir: str, mark: int) -> UdevEvent:
    """The partition udev announced under ``usb_dir`` (e.g. "/usb4/4-1/") after ``mark``."""
    return dock.guest.udev_events.wait_for(
        lambda e: e.action == "add" and e.device_type == "partition" and usb_dir in e.sys_path,
        timeout=60, after=mark)


def _assert_never_mounted(dock: Dock, partitions: list[UdevEvent]) -> None:
    """Neither the partitions nor anything under dockd's mount root is mounted."""
    dock.guest.udev_barrier()
    time.sleep(1.0)  # give a wrong mount the chance to happen before we look
    nodes = {p.device_node for p in partitions}
    assert None not in nodes
    mounted = [m for m in dock.mounts() if m[0] in nodes or m[1].startswith(MOUNT_ROOT)]
    assert not mounted, mounted


def _unknown_device_faults(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The latest unknown_device fault of each bay, by bay."""
    return {r["payload"]["bay"]: r["payload"] for r in records
            if r["type"] == "bay.fault" and r["payload"]["reason"] == "unknown_device"}


def test_foreign_disk_appearing_during_the_switch_is_never_offloaded(dock: Dock) -> None:
    """A GA/T 947 recorder whose switch brings a stick's ids, and an Ambarella recorder whose
    switch brings a disk with its ids and USB serial but another label: both bays fault
    unknown_device with the reason, nothing of either disk is mounted or catalogued, custody
    and alerts say so; the same recorders docked again with their own disks end ready."""
    # GA/T 947 serials: at most 7 bytes (ZFY_INFO's field)
    gat_foreign = _card(dock, "gatswap", "NONAME", "STK")
    amba_foreign = _card(dock, "ambaswap", "EVIDENCE", "FOR")
    gat = FirmwareRecorder("gatswap", "gat947", serial="GATSWP1", password=PASSWORD,
                           image=gat_foreign.path, udc="dummy_udc.1",
                           **{**GAT947, "storage_vendor_id": STICK_IDS[0],
                              "storage_product_id": STICK_IDS[1]})
    amba = FirmwareRecorder("ambaswap", "amba", serial="AMBSWAP1", password=PASSWORD,
                            image=amba_foreign.path, udc="dummy_udc.0", **AMBA)
    mark = dock.guest.udev_events.mark()
    plugged_at = time.monotonic()
    fws: dict[int, GuestProcess] = {}
    with _pulled_on_failure(fws):
        # in the order of the scenarios' three-at-once
        fws[BAY_AMBA] = dock.guest.plug_firmware_recorder(amba)
        fws[BAY_GAT] = dock.guest.plug_firmware_recorder(gat)
        _foreign_disks_refused(dock, mark, gat_foreign, amba_foreign)
        print(f"HIL storage identity: plug -> both faults checked in "
              f"{time.monotonic() - plugged_at:.1f} s")
    _unplug(dock, fws)
    foreign = {*_hashes(gat_foreign).values(), *_hashes(amba_foreign).values()}

    # The same recorders, docked again with their own disks, are offloaded as usual.
    gat_card = _card(dock, "gatgood", "GATSWP1", "VID")
    amba_card = _card(dock, "ambagood", "AMBSWAP1", "VID")
    genuine = {
        BAY_AMBA: (FirmwareRecorder("ambagood", "amba", serial="AMBSWAP1", password=PASSWORD,
                                    image=amba_card.path, udc="dummy_udc.0", **AMBA), AMBA_READY),
        BAY_GAT: (FirmwareRecorder("gatgood", "gat947", serial="GATSWP1", password=PASSWORD,
                                   image=gat_card.path, udc="dummy_udc.1", **GAT947), GAT_READY),
    }
    fws = _plug_pair(dock, genuine, "swap_redock")
    with _pulled_on_failure(fws):
        _, catalog, _ = _all_offloaded(dock, {"GATSWP1": gat_card, "AMBSWAP1": amba_card},
                                       lambda: _verify(dock))
        assert not [i for i in catalog if i["sha256"] in foreign]
    _unplug(dock, fws)


def _foreign_disks_refused(dock: Dock, mark: int, gat_foreign: RecorderImage,
                           amba_foreign: RecorderImage) -> None:
    """What the first scenario asserts while its two foreign disks are in the bays."""
    for bay in (BAY_GAT, BAY_AMBA):
        status = dock.wait_bay(bay, ("fault", "ready", "ready_unchecked"), timeout=180)
        assert status["state"] == "fault" and status["fault"] == "unknown_device", \
            f"{status}\n{dock.log_tail()}"

    # The switch happened and the foreign disks really reached the kernel and udev.
    for name in ("gatswap", "ambaswap"):
        fw_log = (dock.guest.exchange_dir / f"fw-{name}.log").read_text()
        assert "mass-storage mode bound" in fw_log, (name, fw_log[-2000:])
    stick = _partition(dock, "/usb4/4-1/", mark)
    labelled = _partition(dock, "/usb3/3-1/", mark)
    assert stick.properties.get("ID_VENDOR_ID") == "0781", stick.properties
    assert stick.properties.get("ID_MODEL_ID") == "5567", stick.properties
    assert labelled.properties.get("ID_VENDOR_ID") == "4255", labelled.properties
    assert labelled.properties.get("ID_FS_LABEL") == "EVIDENCE", labelled.properties
    _assert_never_mounted(dock, [stick, labelled])

    # the dock at rest (both bays in their fault): its reads at the same time
    records, outbox, catalog = _concurrently(dock.custody, dock.alerts, dock.catalog)
    faults = _unknown_device_faults(records)
    assert faults[BAY_GAT]["recorder"] == "GATSWP1", faults
    assert faults[BAY_AMBA]["recorder"] == "AMBSWAP1", faults
    assert "USB ids 0781:5567 are not the storage ids 2ca3:0948 of model gat947-cdc" \
        in faults[BAY_GAT]["detail"]
    assert "volume label 'EVIDENCE' is not the recorder's id 'AMBSWAP1'" \
        in faults[BAY_AMBA]["detail"]
    for bay, port, node in ((BAY_GAT, "4-1", stick.device_node),
                            (BAY_AMBA, "3-1", labelled.device_node)):
        assert (f"the disk {node} on port {port} after the switch to mass storage is not "
                "the recorder's") in faults[bay]["detail"], faults[bay]
        assert faults[bay]["detail"].endswith("; never mounted"), faults[bay]
    for serial in ("GATSWP1", "AMBSWAP1"):
        types = _types(records, serial)
        # identified over the control port, then refused its disk: no session at all
        assert "recorder.docked" in types and "bay.fault" in types, (serial, types)
        assert "session.started" not in types and "file.ingested" not in types, (serial, types)
    alerts = {a["bay"]: a for a in outbox if a.get("reason") == "unknown_device"}
    assert alerts[BAY_GAT]["recorder"] == "GATSWP1", alerts
    assert alerts[BAY_AMBA]["recorder"] == "AMBSWAP1", alerts
    foreign = {*_hashes(gat_foreign).values(), *_hashes(amba_foreign).values()}
    assert not [i for i in catalog
                if i["sha256"] in foreign or i["recorder"] in ("GATSWP1", "AMBSWAP1")]


def test_enrolled_only_refuses_a_plain_disk_whose_serial_is_not_enrolled(dock: Dock) -> None:
    """A disk with the plain-msc model's ids and an unenrolled USB serial is unknown_device and
    never mounted; once that serial is enrolled, the same disk is offloaded."""
    card = _card(dock, "camnew", "CAMNEW01", "VID")
    spec = QemuRecorder("camnew", root_port=MSC_ROOT_PORT, image=card.path, serial="CAMNEW01")
    mark = dock.guest.udev_events.mark()
    plugged = dock.guest.plug_recorder(spec)
    status = dock.wait_bay(BAY_MSC, ("fault", "ready", "ready_unchecked"), timeout=120)
    assert status["state"] == "fault" and status["fault"] == "unknown_device", status
    part = _partition(dock, f"/usb1/1-{MSC_ROOT_PORT}/", mark)
    _assert_never_mounted(dock, [part])
    records, outbox, catalog = _concurrently(dock.custody, dock.alerts,
                                             lambda: dock.catalog("CAMNEW01"))
    fault = _unknown_device_faults(records)[BAY_MSC]
    assert ("its serial 'CAMNEW01' is not enrolled (enrolled_only = true; "
            "see 'dockd recorders add')") in fault["detail"], fault
    assert fault["detail"].endswith("; never mounted"), fault
    assert [a for a in outbox if a.get("reason") == "unknown_device" and a["bay"] == BAY_MSC]
    assert not catalog
    dock.guest.unplug_recorder(plugged)
    dock.wait_bay(BAY_MSC, ("empty",), timeout=60)

    dock.dockd("recorders", "add", "CAMNEW01", "--brand", "HIL", "--model", "plain-msc")
    plugged = dock.guest.plug_recorder(spec)
    dock.wait_bay(BAY_MSC, ("ready_unchecked",), timeout=180)  # a plain disk: no battery, clock
    assert _stored(dock, "CAMNEW01") == _hashes(card)
    dock.guest.unplug_recorder(plugged)
    dock.wait_bay(BAY_MSC, ("empty",), timeout=60)



def test_the_recorders_disk_coming_back_on_another_port_is_not_its_session(dock: Dock) -> None:
    """A GA/T 947 recorder in bay 2 whose own disk (its ids and serial) comes back on bay 1's
    port: bay 2 never gets a disk (storage_switch_failed); bay 1 sees a recorder already in
    mass-storage mode with no control session, whose serial is not enrolled (unknown_device).
    Nothing is mounted or offloaded. Last: bay 2 stays in its fault (its recorder left)."""
    card = _card(dock, "gatport", "GATPRT1", "VID")
    gat = FirmwareRecorder("gatport", "gat947", serial="GATPRT1", password=PASSWORD,
                           image=card.path, udc="dummy_udc.1", storage_udc="dummy_udc.0",
                           **GAT947)
    mark = dock.guest.udev_events.mark()
    fws = {BAY_GAT: dock.guest.plug_firmware_recorder(gat)}
    with _pulled_on_failure(fws):
        moved = dock.wait_bay(BAY_AMBA, ("fault", "ready", "ready_unchecked"), timeout=180)
        assert moved["state"] == "fault" and moved["fault"] == "unknown_device", moved
        part = _partition(dock, "/usb3/3-1/", mark)
        assert (part.properties.get("ID_VENDOR_ID"), part.properties.get("ID_MODEL_ID"),
                part.properties.get("ID_SERIAL_SHORT")) == ("2ca3", "0948", "GATPRT1"), part.properties
        left = dock.wait_bay(BAY_GAT, ("fault", "ready", "ready_unchecked"),
                             timeout=STORAGE_WAIT_S + 120)
        assert left["state"] == "fault" and left["fault"] == "storage_switch_failed", left
        _assert_never_mounted(dock, [part])

        records, catalog = _concurrently(dock.custody, lambda: dock.catalog("GATPRT1"))
        last = {r["payload"]["bay"]: r for r in records if r["type"] == "bay.fault"}
        # Bay 2 was still waiting for its disk when the disk was refused in bay 1: what this
        # scenario is about, so a storage wait too short for that fails here, never passes.
        assert last[BAY_AMBA]["seq"] < last[BAY_GAT]["seq"], (last[BAY_AMBA], last[BAY_GAT])
        faults = {bay: r["payload"] for bay, r in last.items()}
        assert faults[BAY_GAT]["reason"] == "storage_switch_failed"
        assert faults[BAY_GAT]["recorder"] == "GATPRT1", faults
        assert (f"timed out after {STORAGE_WAIT_S} s waiting for the recorder's disk with a file "
                "system after the switch to mass storage") in faults[BAY_GAT]["detail"], faults
        assert faults[BAY_AMBA]["reason"] == "unknown_device"
        assert (f"the disk {part.device_node} on port 3-1 is not the recorder's: its serial "
                "'GATPRT1' is not enrolled") in faults[BAY_AMBA]["detail"], faults
        types = _types(records, "GATPRT1")
        assert "recorder.docked" in types and "session.started" not in types, types
        assert not catalog
    fws[BAY_GAT].terminate()
    dock.wait_bay(BAY_AMBA, ("empty",), timeout=60)
