"""`dockd run` on a real kernel: recorders plugged into a QEMU guest the way real ones present.

One guest is shared by these scenarios, the smoke test and the storage-identity scenarios
(tests/hil/conftest.py; its dock: tests/hil/dock.py); the power-cut scenario comes last
because it cuts the power of that guest and boots a new one on the same store disk.

In the guest: systemd-udevd with dockd's own rules (udev-rules/), `dockd run --config` with
device_source="udev", mounter="mount" (real vfat mounts in the guest kernel), the evidence store
on a virtio ext4 disk (tests/hil/cache is not involved; the disk image is in the test's tmp dir,
so it survives the guest's restart and power cut). Recorders:

* amba 4255:0001 — FunctionFS vendor bulk interface, firmware logic = the simulator's
  AmbaResponder; after @ATH it re-enumerates as mass storage labelled with its device ID (bay 1);
* gat947 2ca3:0947 — CDC-ACM control port (firmware on /dev/ttyGS<n>, Gat947Responder); after
  SetMSDC it re-enumerates as mass storage 2ca3:0948 (bay 2);
* gat947 DV16 2ca3:0a16 — a mass-storage interface whose Bulk-Only Transport is answered in user
  space (FunctionFS, guest/dv16_device.py): the guest's usb-storage, sd and sg drivers bind to
  it and dockd's SG_IO reaches it through /dev/sg*; after SET_MSDC it re-enumerates as mass
  storage 2ca3:0a17 (bay 2);
* amba with quirks — @ATH never answered (it switches anyway), replies NUL-padded to 64 bytes;
* plain mass storage — QEMU usb-storage behind its own hub, FAT32 image, 46f4:0001 (bay 3);
* unknown stick — gadget mass storage with a Kingston DataTraveler's IDs 0951:1666 (bay 1).

Assertions are on what dockd reports: `dockd status --json`, `dockd log --json`,
`dockd catalog --json`, `dockd verify`, the outbox, and the guest's /proc/mounts. Timings are
printed (HIL timings: ...) and collected in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from .dock import (
    AMBA,
    BAY_AMBA,
    BAY_GAT,
    BAY_MSC,
    DV16,
    GAT947,
    MOUNT_ROOT,
    MSC_ROOT_PORT,
    PASSWORD,
    TIMINGS,
    Dock,
    config_text,
    count_cpu,
    prepare_dock,
    prepare_guest,
)
from .harness import (
    FirmwareRecorder,
    GadgetRecorder,
    Guest,
    GuestProcess,
    HilTimeout,
    PluggedQemuRecorder,
    QemuRecorder,
)
from .images import RecorderImage, build_fat32_image, read_image_file

# 600 s is a hang guard: the first scenario includes the guest's boot, udevd and the daemon's
# start, and beside the other xdist worker on 2 cores it took 418 s (./dev test, load ~4).
pytestmark = [pytest.mark.hil, pytest.mark.timeout(600)]

PULL_OBSERVED: dict[str, Any] = {}


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def dock(hil_dock: Dock) -> Dock:
    """The shared guest (tests/hil/conftest.py) running dockd with the scenarios' config."""
    hil_dock.use_config(config_text())
    return hil_dock


def _image(d: Dock, name: str, label: str, files: dict[str, int | bytes],
           size_mib: int = 64) -> RecorderImage:
    return build_fat32_image(d.guest.exchange_dir / f"{name}.img", label=label, files=files,
                             size_mib=size_mib, seed=zlib.crc32(name.encode()))


def _hashes(image: RecorderImage) -> dict[str, str]:
    return {rel: hashlib.sha256(read_image_file(image.path, rel)).hexdigest() for rel in image.files}


def _stored(d: Dock, serial: str, catalog: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """What dockd's catalog holds of `serial` (path → sha256), each path once; from
    `catalog` when the whole catalog was read already."""
    items = d.catalog(serial) if catalog is None else [i for i in catalog
                                                        if i["recorder"] == serial]
    paths = [i["source_path"] for i in items]
    assert len(paths) == len(set(paths)), f"a file of {serial} is stored twice: {paths}"
    return {i["source_path"]: i["sha256"] for i in items}


def _types(records: list[dict[str, Any]], subject: str) -> list[str]:
    return [r["type"] for r in records if r["subject"] == subject]


def _wait_record(dock: Dock, match: Callable[[dict[str, Any]], bool],
                 timeout: float = 90) -> dict[str, Any]:
    """The last custody record `match` accepts, from `dockd log --json` read until one is
    there (callers first wait for the bay state that comes with it, so one read is usual)."""
    return _wait_records(dock, match, timeout)[0]


def _wait_records(dock: Dock, match: Callable[[dict[str, Any]], bool],
                  timeout: float = 90) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Like _wait_record, and the whole log it was found in."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = dock.custody()
        found = [r for r in records if match(r)]
        if found:
            return found[-1], records
        time.sleep(0.5)
    raise HilTimeout(f"no matching custody record within {timeout}s\n{dock.log_tail()}")


def _concurrently(*calls: Callable[[], Any]) -> list[Any]:
    """The results of `calls`, run at the same time (the agent serves each request in its own
    thread; the guest has 2 vCPUs): the `dockd` commands a check needs cost seconds each
    under emulation. Only for commands of a dock at rest whose results do not depend on
    their order (reads, and `verify`, whose own record no check looks at); the first
    exception (a failed assertion too) is raised here."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result() for f in futures]


def _verify(dock: Dock) -> None:
    """`dockd verify` passes."""
    verify = dock.dockd("verify", check=False)
    assert verify.returncode == 0, verify.text + verify.stderr.decode()


def _videos(n: int, size: int, prefix: str = "VID") -> dict[str, int | bytes]:
    return {f"DCIM/100MEDIA/{prefix}{i:05d}.MP4": size for i in range(1, n + 1)}


# --------------------------------------------------------------------------- scenarios

def test_three_recorders_docked_at_once_are_all_offloaded_and_verify(dock: Dock) -> None:
    amba_img = _image(dock, "amba", "AMBA0001", _videos(3, 2_000_000))
    gat_img = _image(dock, "gat", "GAT0001", _videos(3, 1_500_000))
    msc_img = _image(dock, "msc3", "CAM0003", _videos(4, 1_000_000))
    amba = FirmwareRecorder("amba1", "amba", serial="AMBA0001", password=PASSWORD,
                            image=amba_img.path, udc="dummy_udc.0", **AMBA)
    gat = FirmwareRecorder("gat1", "gat947", serial="GAT0001", password=PASSWORD,
                           image=gat_img.path, udc="dummy_udc.1", **GAT947)
    msc = QemuRecorder("cam3", root_port=MSC_ROOT_PORT, image=msc_img.path, serial="CAM0003")

    plugged_at = time.monotonic()
    mark = dock.guest.udev_events.mark()
    fw_amba = dock.guest.plug_firmware_recorder(amba)
    fw_gat = dock.guest.plug_firmware_recorder(gat)
    qemu = dock.guest.plug_recorder(msc)
    ready: dict[int, float] = {}
    # Only the GA/T 947 recorder reports battery, storage and clock: the Ambarella one has no
    # battery command, the plain disk neither battery nor clock (honest readiness).
    expected = {BAY_AMBA: ("ready_unchecked", ["battery"]), BAY_GAT: ("ready", []),
                BAY_MSC: ("ready_unchecked", ["battery", "clock"])}
    for bay in (BAY_AMBA, BAY_GAT, BAY_MSC):
        status = dock.wait_bay(bay, ("ready", "ready_unchecked", "fault"), timeout=180)
        assert (status["state"], status["unchecked"]) == expected[bay], \
            f"bay {bay}: {status}\n{dock.log_tail()}"
        ready[bay] = time.monotonic() - plugged_at
    TIMINGS.update({"three_at_once_amba_plug_to_ready_s": ready[BAY_AMBA],
                    "three_at_once_gat947_plug_to_ready_s": ready[BAY_GAT],
                    "three_at_once_msc_plug_to_ready_s": ready[BAY_MSC]})
    TIMINGS.update({"three_at_once_amba_switch_s": _switch_seconds(dock, amba.port_path, mark),
                    "three_at_once_gat947_switch_s": _switch_seconds(dock, gat.port_path, mark)})

    catalog, state, records, _ = _concurrently(dock.catalog, dock.status, dock.custody,
                                               lambda: _verify(dock))
    for serial, image in (("AMBA0001", amba_img), ("GAT0001", gat_img), ("CAM0003", msc_img)):
        assert _stored(dock, serial, catalog) == _hashes(image), serial
    statuses = {b["bay"]: b for b in state["bays"]}
    assert statuses[BAY_AMBA]["recorder"] == "AMBA0001"
    assert statuses[BAY_GAT]["recorder"] == "GAT0001"
    assert statuses[BAY_GAT]["battery_percent"] == 80  # read over the CDC-ACM port
    assert statuses[BAY_MSC]["recorder"] == "CAM0003"
    for serial in ("AMBA0001", "GAT0001", "CAM0003"):
        types = _types(records, serial)
        assert types.count("session.completed") == 1 and "recorder.docked" in types, (serial, types)
    # the two-phase recorders really went through their control port first
    assert any(r["type"] == "clock.set" and r["subject"] == "GAT0001" for r in records) or \
        any(r["type"] == "recorder.health" and r["subject"] == "GAT0001" for r in records)
    fw_log = (dock.guest.exchange_dir / "fw-amba1.log").read_text()
    assert "b'@ATH;'" in fw_log and "mass-storage mode bound" in fw_log
    assert not [m for m in dock.mounts() if m[1].startswith(MOUNT_ROOT)], "left mounted"

    fw_amba.terminate()
    fw_gat.terminate()
    dock.guest.unplug_recorder(qemu)
    for bay in (BAY_AMBA, BAY_GAT, BAY_MSC):
        dock.wait_bay(bay, ("empty",), timeout=60)
    records = dock.custody()
    for serial in ("AMBA0001", "GAT0001", "CAM0003"):
        assert _types(records, serial)[-1] == "recorder.undocked", serial


def test_recorder_pulled_mid_file_then_redocked_resumes_without_loss_or_duplicates(
        dock: Dock) -> None:
    # 96 MB: the pull comes ~2 s after the mount, while ~15-30 MB are stored at the rates
    # seen here (offload_rate_MBps_usb_storage); all of it would take > 40 MB/s.
    image = _image(dock, "pull", "CAMPULL", _videos(3, 32 << 20), size_mib=128)
    spec = QemuRecorder("campull", root_port=MSC_ROOT_PORT, image=image.path, serial="CAMPULL")
    plugged_at = time.monotonic()
    plugged: PluggedQemuRecorder = dock.guest.plug_recorder(spec)
    # Watched from inside the guest with one shell loop: a `dockd status` round trip costs
    # seconds here, long enough for the offload to finish before the pull.
    target = f"{MOUNT_ROOT}/bay{BAY_MSC}"
    line = dock.guest.run(
        f"for i in $(seq 1200); do grep -q ' {target} ' /proc/mounts && break; sleep 0.1; done; "
        f"sleep 2; grep ' {target} ' /proc/mounts", timeout=150).text.split()
    TIMINGS["pull_plug_to_mounted_s"] = time.monotonic() - plugged_at - 2
    # during an offload the volume is mounted read-only, nosuid, nodev, noexec
    assert line[:3] == [line[0], target, "vfat"], line
    options = set(line[3].split(","))
    assert {"ro", "nosuid", "nodev", "noexec"} <= options, options

    dock.guest.unplug_recorder(plugged)
    # The bay's fault can be short-lived (an offload_failed bay goes empty on the USB remove),
    # so what dockd concluded is read from the custody log, which keeps it; the state
    # channel (every change) says when: the fault is recorded right after the bay shows it.
    dock.wait_bay(BAY_MSC, ("fault", "empty"), timeout=90)
    fault, records = _wait_records(
        dock, lambda r: r["type"] == "bay.fault" and r["subject"] == "CAMPULL")
    # Under this real kernel the reads fail with EIO before udev broadcasts the remove
    # (docs/hil.md, Findings 1); the ingest waits for the remove before calling a read
    # error a failure, so the pull is reported as what it is.
    assert fault["payload"]["reason"] == "removed_during_offload", fault
    PULL_OBSERVED["fault_reason"] = fault["payload"]["reason"]
    PULL_OBSERVED["session_end"] = [(r["type"], r["payload"].get("result"), r["payload"].get("reason"))
                                    for r in records if r["subject"] == "CAMPULL"
                                    and r["type"] in ("session.interrupted", "session.completed")]
    before = _stored(dock, "CAMPULL")
    PULL_OBSERVED["stored_before_pull"] = f"{len(before)} of {len(image.files)}"
    assert len(before) < len(image.files), "the pull came too late to interrupt anything"
    assert not [m for m in dock.mounts() if m[1] == f"{MOUNT_ROOT}/bay{BAY_MSC}"]

    replugged_at = time.monotonic()
    plugged = dock.guest.plug_recorder(spec)
    dock.wait_bay(BAY_MSC, ("ready_unchecked",), timeout=240)  # a plain disk: no battery, clock
    seconds = time.monotonic() - replugged_at
    TIMINGS["pull_redock_to_ready_s"] = seconds
    after, records, _ = _concurrently(lambda: _stored(dock, "CAMPULL"), dock.custody,
                                      lambda: _verify(dock))
    assert after == _hashes(image)
    assert {k: after[k] for k in before} == before  # what was stored stayed as it was
    new_bytes = sum(image.files[k] for k in after if k not in before)
    TIMINGS["offload_rate_MBps_usb_storage"] = new_bytes / seconds / 1e6
    completed = [r for r in records if r["subject"] == "CAMPULL"
                 and r["type"] == "session.completed" and r["payload"].get("result") == "completed"]
    assert len(completed) == 1, _types(records, "CAMPULL")
    dock.guest.unplug_recorder(plugged)
    dock.wait_bay(BAY_MSC, ("empty",), timeout=60)
    print("HIL pull observed:", json.dumps(PULL_OBSERVED))


def test_unknown_usb_stick_is_never_mounted_and_raises_an_alert(dock: Dock) -> None:
    image = _image(dock, "stick", "NONAME", {"README.TXT": b"not evidence\n", "X/Y.BIN": 10_000})
    stick = GadgetRecorder("stick", 0x0951, 0x1666, "60A44C3FAE2BE1A0", manufacturer="Kingston",
                           product="DataTraveler 3.0", image=image.path, udc="dummy_udc.0")
    mark = dock.guest.udev_events.mark()
    plugged = dock.guest.plug_gadget(stick)
    fault = dock.wait_bay(BAY_AMBA, ("fault",), timeout=60)
    assert fault["fault"] == "unknown_device" and fault["recorder"] is None
    # wait until the kernel has the partition, so "not mounted" is not just "not yet there"
    part = dock.guest.udev_events.wait_for(
        lambda e: e.action == "add" and e.device_type == "partition" and "/usb3/3-1/" in e.sys_path,
        timeout=60, after=mark)
    dock.guest.udev_barrier()
    time.sleep(1.0)  # give a wrong mount the chance to happen before we look
    assert part.device_node is not None
    assert not [m for m in dock.mounts() if m[0] == part.device_node or m[1].startswith(MOUNT_ROOT)]
    records, outbox = _concurrently(dock.custody, dock.alerts)
    faults = [r for r in records if r["type"] == "bay.fault"
              and r["payload"]["reason"] == "unknown_device"]
    assert faults and "0951:1666" in faults[-1]["payload"]["detail"]
    assert not [r for r in records if r["type"] == "session.started"
                and r["subject"] == "60A44C3FAE2BE1A0"]
    alerts = [a for a in outbox if a.get("reason") == "unknown_device"]
    assert alerts and alerts[-1]["bay"] == BAY_AMBA
    dock.guest.remove_gadget(plugged)
    dock.wait_bay(BAY_AMBA, ("empty",), timeout=60)


def test_wrong_admin_password_faults_login_and_mounts_nothing(dock: Dock) -> None:
    image = _image(dock, "badpw", "GATBADPW", _videos(1, 100_000))
    spec = FirmwareRecorder("badpw", "gat947", serial="GATBADPW", password="999999",
                            image=image.path, udc="dummy_udc.1", **GAT947)
    fw = dock.guest.plug_firmware_recorder(spec)
    fault = dock.wait_bay(BAY_GAT, ("fault",), timeout=90)
    assert fault["fault"] == "login_failed"
    time.sleep(1.0)
    assert not [m for m in dock.mounts() if m[1].startswith(MOUNT_ROOT)]
    fw_log = (dock.guest.exchange_dir / "fw-badpw.log").read_text()
    assert "mass-storage mode bound" not in fw_log  # it was never told to switch
    records = dock.custody()
    assert not [r for r in records if r["type"] == "session.started" and r["subject"] == "GATBADPW"]
    assert [r for r in records if r["type"] == "bay.fault"
            and r["payload"]["reason"] == "login_failed"]
    fw.terminate()
    dock.wait_bay(BAY_GAT, ("empty",), timeout=60)


def _clock_set(records: list[dict[str, Any]], serial: str) -> dict[str, Any]:
    """The custody record of the clock dockd set on ``serial`` (exactly one per dock)."""
    sets = [r for r in records if r["type"] == "clock.set" and r["subject"] == serial]
    assert len(sets) == 1, (serial, _types(records, serial))
    payload: dict[str, Any] = sets[0]["payload"]
    assert payload["error"] is None and payload["sent"], payload
    # neither family can read its clock back: the set is recorded as not verified
    assert payload["verified"] is False, payload
    return payload


def _all_offloaded(dock: Dock, images: dict[str, RecorderImage], *also: Callable[[], Any]
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    """The offload of each recorder (serial → card image) is complete, once, and hashes as
    its card; from one catalog and one log read, made at the same time as the reads in `also`
    (a dock at rest: _concurrently). Returns the log, the catalog and what `also` returned."""
    catalog, records, *more = _concurrently(dock.catalog, dock.custody, *also)
    for serial, image in images.items():
        assert _stored(dock, serial, catalog) == _hashes(image), serial
        types = _types(records, serial)
        assert types.count("session.completed") == 1 and "recorder.docked" in types, \
            (serial, types)
    return records, catalog, more


# What a bay ends as after an offload (honest readiness): the DV16 reports its battery and takes
# the clock, the card's space comes from the disk; an Ambarella recorder has no battery command.
DV16_READY = ("ready", [])
AMBA_READY = ("ready_unchecked", ["battery"])


def _plug_pair(dock: Dock, recorders: dict[int, tuple[FirmwareRecorder, tuple[str, list[str]]]],
               label: str) -> dict[int, GuestProcess]:
    """Plug two firmware recorders at once; each bay must end in its expected (state,
    unchecked); plug → ready recorded."""
    plugged_at = time.monotonic()
    mark = dock.guest.udev_events.mark()
    fws = {bay: dock.guest.plug_firmware_recorder(spec) for bay, (spec, _) in recorders.items()}
    for bay, (spec, expected) in recorders.items():
        status = dock.wait_bay(bay, ("ready", "ready_unchecked", "fault"), timeout=180)
        assert (status["state"], status["unchecked"]) == expected, \
            f"bay {bay} ({spec.name}): {status}\n{dock.log_tail()}"
        TIMINGS[f"{label}_{spec.name}_plug_to_ready_s"] = time.monotonic() - plugged_at
        TIMINGS[f"{label}_{spec.name}_switch_s"] = _switch_seconds(dock, spec.port_path, mark)
    return fws


def _switch_seconds(dock: Dock, port: str, mark: int) -> float:
    """How long the recorder on `port` took to switch: from its control-mode USB device's
    last remove to its disk's partition there (udev events after `mark`, as the host received
    them). The bay's storage wait starts within a second before that remove."""
    events = dock.guest.udev_events
    disk = events.wait_index(lambda e: e.action == "add" and e.device_type == "partition"
                             and f"/{port}/" in e.sys_path, timeout=30, after=mark)
    seen = events.events(mark)[:disk - mark + 1]
    left = max((i for i, e in enumerate(seen) if e.action == "remove"
                and e.device_type == "usb_device" and e.sys_path.endswith(f"/{port}")),
               default=None)
    assert left is not None, f"no control-mode device left {port} before its disk came"
    return seen[-1].host_monotonic - seen[left].host_monotonic


def _unplug(dock: Dock, fws: dict[int, GuestProcess]) -> None:
    for bay, fw in fws.items():
        fw.terminate()
        dock.wait_bay(bay, ("empty",), timeout=60)


def test_dv16_scsi_recorder_through_the_kernel_scsi_stack_and_nul_padded_amba(
        dock: Dock) -> None:
    """DV16 over the guest's usb-storage/sd/sg (SET_MSDC completed) beside an Ambarella
    recorder whose replies are NUL-padded to 64 bytes; both offloaded with the clock set."""
    dv16_img = _image(dock, "dv16", "DV16001", _videos(2, 1_000_000))
    amba_img = _image(dock, "ambanul", "AMBANUL1", _videos(2, 800_000))
    dv16 = FirmwareRecorder("dv16", "dv16", serial="DV16001", password=PASSWORD,
                            image=dv16_img.path, udc="dummy_udc.1", **DV16)
    amba = FirmwareRecorder("ambanul", "amba", serial="AMBANUL1", password=PASSWORD,
                            image=amba_img.path, udc="dummy_udc.0", quirks=("nul_padded",),
                            **AMBA)
    mark = dock.guest.udev_events.mark()
    fws = _plug_pair(dock, {BAY_GAT: (dv16, DV16_READY), BAY_AMBA: (amba, AMBA_READY)}, "pair1")

    # The kernel's SCSI stack bound the control-mode LUN: an sd disk and an sg node on the
    # DV16's port, named by the INQUIRY the firmware answered.
    control = [e for e in dock.guest.udev_events.events(mark)
               if e.action == "add" and "/usb4/4-1/" in e.sys_path]
    sg = [e for e in control if e.subsystem == "scsi_generic"]
    disks = [e for e in control if e.subsystem == "block" and e.device_type == "disk"]
    assert sg and sg[0].device_node and sg[0].device_node.startswith("/dev/sg"), control
    assert disks[0].properties.get("ID_VENDOR") == "DV16", disks[0].properties
    assert disks[0].properties.get("ID_MODEL") == "DEVICE_V1.00", disks[0].properties
    assert "ID_FS_TYPE" not in disks[0].properties  # the blank control LUN is not the card
    fw_log = (dock.guest.exchange_dir / "fw-dv16.log").read_text()
    for sub in ("INIT_USB_DEVICE", "GET_ID_CODE", "GET_DEV_INFO", "READ_BATTERY_VAL",
                "SYNC_DEV_TIME", "GET_SD_STATUS", "SET_MSDC"):
        assert f"fw: {sub} ok" in fw_log, sub
    assert "GET_JL_PASSWORD" not in fw_log  # dockd never reads the clear-text password
    assert "SET_MSDC (ack)" in fw_log and "mass-storage mode bound" in fw_log

    records, _, (state,) = _all_offloaded(dock, {"DV16001": dv16_img, "AMBANUL1": amba_img},
                                          dock.status)
    docked = [r for r in records if r["type"] == "recorder.docked" and r["subject"] == "DV16001"]
    assert docked[-1]["payload"]["officer_name"] == "张三", docked[-1]["payload"]
    clock = _clock_set(records, "DV16001")
    assert clock["sent"].startswith("SYNC_DEV_TIME ")
    # what the recorder received is what dockd recorded it sent (Beijing wall time)
    assert f"clock set to {clock['sent_wall_time']}" in fw_log, (clock, fw_log[-2000:])
    assert next(b for b in state["bays"] if b["bay"] == BAY_GAT)["battery_percent"] == 80

    _clock_set(records, "AMBANUL1")
    amba_log = (dock.guest.exchange_dir / "fw-ambanul.log").read_text()
    assert "(64 bytes)" in amba_log and "b'@ATH;'" in amba_log
    _unplug(dock, fws)


def test_dv16_dropping_off_during_set_msdc_and_amba_silent_on_ath_still_end_ready(
        dock: Dock) -> None:
    """The switch is decided by the disk: a DV16 that leaves the bus before completing
    SET_MSDC, and an Ambarella recorder that never answers @ATH, both switch and are
    offloaded."""
    dv16_img = _image(dock, "dv16drop", "DV16002", _videos(2, 600_000))
    amba_img = _image(dock, "ambaath", "AMBAATH1", _videos(2, 600_000))
    dv16 = FirmwareRecorder("dv16drop", "dv16", serial="DV16002", password=PASSWORD,
                            image=dv16_img.path, udc="dummy_udc.1", quirks=("drop_on_msdc",),
                            **DV16)
    amba = FirmwareRecorder("ambaath", "amba", serial="AMBAATH1", password=PASSWORD,
                            image=amba_img.path, udc="dummy_udc.0", quirks=("no_ath_reply",),
                            **AMBA)
    fws = _plug_pair(dock, {BAY_GAT: (dv16, DV16_READY), BAY_AMBA: (amba, AMBA_READY)}, "pair2")
    fw_log = (dock.guest.exchange_dir / "fw-dv16drop.log").read_text()
    assert "SET_MSDC (drop)" in fw_log and "mass-storage mode bound" in fw_log
    amba_log = (dock.guest.exchange_dir / "fw-ambaath.log").read_text()
    assert "-> no reply (quirk)" in amba_log
    records, _, _ = _all_offloaded(dock, {"DV16002": dv16_img, "AMBAATH1": amba_img})
    _clock_set(records, "DV16002")
    _clock_set(records, "AMBAATH1")
    # dockd logged both switches as sent but not acknowledged, with what it saw
    log = (dock.guest.exchange_dir / "dockd.log").read_text()
    switched = {bay: [line for line in log.splitlines() if "recorder told to switch" in line
                      and f" bay={bay} " in line] for bay in (BAY_GAT, BAY_AMBA)}
    for bay, lines in switched.items():
        assert lines and "acknowledged=False" in lines[-1], (bay, lines)
    assert "SET_MSDC sent, not completed" in switched[BAY_GAT][-1]
    assert "@ATH sent, no usable reply" in switched[BAY_AMBA][-1]
    _unplug(dock, fws)


def test_dv16_without_sd_card_faults_and_is_never_switched(dock: Dock) -> None:
    image = _image(dock, "dv16nosd", "DV16003", _videos(1, 100_000))
    spec = FirmwareRecorder("dv16nosd", "dv16", serial="DV16003", password=PASSWORD,
                            image=image.path, udc="dummy_udc.1", quirks=("no_sd_card",), **DV16)
    plugged_at = time.monotonic()
    fw = dock.guest.plug_firmware_recorder(spec)
    fault = dock.wait_bay(BAY_GAT, ("fault", "ready", "ready_unchecked"), timeout=120)
    TIMINGS["dv16_no_sd_card_plug_to_fault_s"] = time.monotonic() - plugged_at
    assert fault["state"] == "fault" and fault["fault"] == "storage_full", fault
    fw_log = (dock.guest.exchange_dir / "fw-dv16nosd.log").read_text()
    assert "fw: GET_SD_STATUS ok" in fw_log and "SET_MSDC" not in fw_log
    assert "mass-storage mode bound" not in fw_log
    records = dock.custody()
    _clock_set(records, "DV16003")  # the clock was set before the switch was tried
    assert not [r for r in records if r["type"] == "session.started" and r["subject"] == "DV16003"]
    fw.terminate()
    dock.wait_bay(BAY_GAT, ("empty",), timeout=60)


@pytest.mark.hil_last
def test_power_cut_during_offload_recovers_at_start(dock: Dock) -> None:
    """Last: this cuts the shared guest's power and boots a new one on the same store disk."""
    # 72 MB: the power is cut ~1 s after the mount, mid-offload at any rate seen here; the
    # new guest offloads all of it again.
    image = _image(dock, "cut", "CAMCUT", _videos(3, 24 << 20), size_mib=100)
    spec = QemuRecorder("camcut", root_port=MSC_ROOT_PORT, image=image.path, serial="CAMCUT")
    dock.guest.plug_recorder(spec)
    # Watched from inside the guest, as in the pull scenario: a `dockd status` round trip
    # costs seconds, and the offload (~30 MB/s here) could end between two of them. The
    # volume is mounted for the offload only; a second after the mount, bytes are moving.
    target = f"{MOUNT_ROOT}/bay{BAY_MSC}"
    dock.guest.run(
        f"for i in $(seq 1200); do grep -q ' {target} ' /proc/mounts && break; sleep 0.1; done; "
        f"sleep 1; grep -q ' {target} ' /proc/mounts", timeout=150)
    count_cpu(dock.guest)
    dock.guest.power_cut()

    rebooted = time.monotonic()
    dock.guest = Guest.boot(dock.work / "guest2", disks=[dock.store_disk])
    # the recorder is still in its bay when the dock comes back: coldplug must find it
    prepare_guest(dock)
    prepare_dock(dock)
    dock.guest.plug_recorder(spec)
    dock.guest.udev_barrier()
    dock.start_daemon()
    dock.wait_bay(BAY_MSC, ("ready_unchecked",), timeout=240)
    TIMINGS["power_cut_reboot_to_ready_s"] = time.monotonic() - rebooted
    records, stored, _ = _concurrently(dock.custody, lambda: _stored(dock, "CAMCUT"),
                                       lambda: _verify(dock))
    recovered = [r for r in records if r["type"] == "session.interrupted"
                 and r["subject"] == "CAMCUT" and r["payload"]["reason"] == "crash_recovery"]
    assert len(recovered) == 1, _types(records, "CAMCUT")
    completed = [r for r in records if r["type"] == "session.completed" and r["subject"] == "CAMCUT"]
    assert completed and completed[-1]["seq"] > recovered[0]["seq"]
    assert stored == _hashes(image)
