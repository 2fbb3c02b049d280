"""The daemon as a real subprocess: dock, check, offload, pull-out, re-dock, faults.

Recorders are the simulator's (a real pseudo-terminal control port speaking GA/T 947 or
Ambarella frames, and a card directory); events reach the daemon through the spool as
the udev source would deliver them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dockd.sim.recorders import SimRecorderSpec
from dockd.sim.runner import DaemonRunner


@pytest.fixture
def dock(tmp_path: Path) -> Iterator[DaemonRunner]:
    harness = DaemonRunner(tmp_path / "dock")
    harness.start()
    yield harness
    harness.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _card_hashes(card: Path) -> dict[str, str]:
    return {str(p.relative_to(card)): _sha(p) for p in sorted(card.rglob("*")) if p.is_file()}


def _catalog(h: DaemonRunner, recorder: str) -> list[dict[str, Any]]:
    out = h.dockd("catalog", "--recorder", recorder, "--json")
    assert out.returncode == 0, out.stderr
    items: list[dict[str, Any]] = json.loads(out.stdout)
    return items


def _types(records: list[dict[str, Any]], subject: str | None = None) -> list[str]:
    return [r["type"] for r in records if subject is None or r["subject"] == subject]


# What each simulated kind can check (art. 4): the GA/T 947 simulator reports battery, storage
# and clock; Ambarella recorders have no battery command; a plain disk has neither battery nor
# clock. Only the first may be called ``ready``.
READY_AS = {"gat947": ("ready", []), "amba": ("ready_unchecked", ["battery"]),
            "msc": ("ready_unchecked", ["battery", "clock"])}


def test_three_recorders_of_every_kind_end_ready_and_stored_once(dock: DaemonRunner) -> None:
    plugged = [dock.dock.plug(f"1-1.{n}", kind) for n, kind in
               enumerate(("gat947", "amba", "msc"), start=1)]
    for n, p in enumerate(plugged, start=1):
        state, unchecked = READY_AS[p.kind]
        assert dock.wait_bay(n, state)["unchecked"] == unchecked
    for p in plugged:
        items = _catalog(dock, p.serial)
        on_card = _card_hashes(p.volume)
        assert {i["source_path"]: i["sha256"] for i in items} == on_card
    records = dock.custody()
    for p in plugged:
        assert "recorder.docked" in _types(records, p.serial)
        assert "session.completed" in _types(records, p.serial)
    health = [r for r in records if r["type"] == "recorder.health"]
    gat = next(r for r in health if r["subject"] == plugged[0].serial)
    assert gat["payload"]["battery_percent"] == 80
    verify = dock.dockd("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_ready_unchecked_says_what_was_not_checked_on_the_state_channel_console_and_custody(
        dock: DaemonRunner) -> None:
    amba = dock.dock.plug("1-1.2", "amba")
    bay = dock.wait_bay(2, "ready_unchecked")
    assert (bay["unchecked"], bay["fault"], bay["battery_percent"]) == (["battery"], None, None)
    health = next(r["payload"] for r in dock.custody()
                  if r["type"] == "recorder.health" and r["subject"] == amba.serial)
    assert health["unchecked"] == ["battery"] and health["faults"] == []
    status = dock.dockd("status")
    assert status.returncode == 0, status.stderr
    # (the sentence may wrap inside its table cell)
    assert "Not checked: battery — check before the shift" in " ".join(status.stdout.split()), \
        status.stdout
    # the next recorder in the same bay starts from a clean slate
    dock.dock.unplug("1-1.2")
    assert dock.wait_bay(2, "empty")["unchecked"] == []
    dock.dock.plug("1-1.2", "gat947", spec=SimRecorderSpec(serial="ZFYNEXT"))
    assert dock.wait_bay(2, "ready")["unchecked"] == []


def test_require_checks_turns_an_unknown_reading_into_a_fault_for_that_model(
        tmp_path: Path) -> None:
    h = DaemonRunner(tmp_path / "dock", model_extra={"amba": 'require_checks = ["battery"]'})
    h.start()
    try:
        amba = h.dock.plug("1-1.1", "amba")
        gat = h.dock.plug("1-1.2", "gat947")  # reports its battery: unaffected
        bay = h.wait_bay(1, "fault")
        assert (bay["fault"], bay["fault_scope"], bay["unchecked"]) == \
            ("check_unavailable", "recorder", [])
        assert h.wait_bay(2, "ready")["unchecked"] == []
        records = h.custody()
        fault = next(r["payload"] for r in records if r["type"] == "bay.fault")
        assert fault["reason"] == "check_unavailable" and fault["recorder"] == amba.serial
        assert "battery" in fault["detail"] and "require_checks" in fault["detail"], fault
        health = next(r["payload"] for r in records
                      if r["type"] == "recorder.health" and r["subject"] == amba.serial)
        assert health["required_checks"] == ["battery"]
        assert health["faults"] == ["check_unavailable"]
        # the evidence is safe all the same: offloaded before the verdict
        assert len(_catalog(h, amba.serial)) == len(_card_hashes(amba.volume))
        assert len(_catalog(h, gat.serial)) == len(_card_hashes(gat.volume))
    finally:
        h.close()


def test_undock_is_a_check_out_naming_the_assigned_officer(dock: DaemonRunner) -> None:
    add = dock.dockd("recorders", "add", "MSC9", "--brand", "Acme", "--model", "X1",
                     "--officer-id", "007", "--officer-name", "李四")
    assert add.returncode == 0, add.stderr
    dock.dock.plug("1-1.1", "msc", usb_serial="MSC9")
    assert dock.wait_bay(1, "ready_unchecked")["officer"] == "李四"
    dock.dock.unplug("1-1.1")
    dock.wait_bay(1, "empty")
    records = dock.custody()
    docked = next(r for r in records if r["type"] == "recorder.docked")
    undocked = next(r for r in records if r["type"] == "recorder.undocked")
    assert docked["payload"]["officer_id"] == undocked["payload"]["officer_id"] == "007"
    assert docked["seq"] < undocked["seq"]


@pytest.mark.parametrize("copier", [False, True], ids=["in_process", "copier_process"])
def test_pull_out_mid_offload_then_redock_resumes_without_loss_or_duplicates(
        tmp_path: Path, copier: bool) -> None:
    # With the copier process (dockd.store.copier) the copy's read errors come over its
    # connection; the daemon must still see the pull-out for what it is.
    dock = DaemonRunner(tmp_path / "dock",
                        ingest_extra=f"copier_min_files = {0 if copier else 512}")
    dock.start()
    try:
        _pull_out_then_redock(dock, copier)
    finally:
        dock.close()


def _pull_out_then_redock(dock: DaemonRunner, copier: bool) -> None:
    files = [(f"DCIM/BIG{n}.MP4", 160 << 20) for n in range(4)]
    plugged = dock.dock.plug("1-1.1", "msc", usb_serial="PULL1", files=files)
    dock.wait_until(lambda s: s["bays"][0]["progress"]["bytes_done"] > 0, 60, "bytes copied")
    dock.dock.pull_out("1-1.1")
    bay = dock.wait_bay(1, "fault", timeout=60)
    assert bay["fault"] == "removed_during_offload"
    records = dock.custody()
    interrupted = [r for r in records if r["type"] == "session.interrupted"]
    assert interrupted and interrupted[-1]["payload"]["reason"] in ("removed_during_offload",
                                                                    "source_removed")
    stored_before = len(_catalog(dock, "PULL1"))
    assert stored_before < len(files), "the pull-out came too late to interrupt anything"

    dock.dock.put_card_back("PULL1")
    dock.dock.plug("1-1.1", "msc", usb_serial="PULL1", files=files)
    dock.wait_bay(1, "ready_unchecked", timeout=120)
    items = _catalog(dock, "PULL1")
    assert sorted(i["source_path"] for i in items) == sorted(f for f, _ in files)
    assert {i["sha256"] for i in items} == set(_card_hashes(plugged.volume).values())
    verify = dock.dockd("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    started = dock.log_path.read_text().count("copier process started")
    assert started == (2 if copier else 0)


def test_unknown_usb_stick_is_never_mounted_and_raises_an_alert(dock: DaemonRunner) -> None:
    dock.dock.plug("1-1.2", "msc", usb_serial="STICK", vendor_product=("0781", "5567"))
    bay = dock.wait_bay(2, "fault")
    assert bay["fault"] == "unknown_device"
    assert bay["recorder"] is None
    records = dock.custody()
    assert not [r for r in records if r["type"] == "session.started"]
    fault = next(r for r in records if r["type"] == "bay.fault")
    assert fault["payload"]["reason"] == "unknown_device"
    assert "0781:5567" in fault["payload"]["detail"]
    assert _catalog(dock, "STICK") == []


def test_wrong_admin_password_faults_login_and_mounts_nothing(dock: DaemonRunner) -> None:
    spec = SimRecorderSpec(serial="ZFYBADPW", password=b"999999")
    dock.dock.plug("1-1.1", "gat947", spec=spec)
    assert dock.wait_bay(1, "fault")["fault"] == "login_failed"
    records = dock.custody()
    assert not [r for r in records if r["type"] == "session.started"]
    assert dock.dock.plugged["1-1.1"].storage_mode.is_set() is False


@pytest.mark.parametrize("start", [dt.datetime(1970, 1, 1, 0, 0, 5), dt.datetime(2099, 12, 31, 23, 59)])
def test_absurd_recorder_clock_is_set_and_recorded_before_and_after(
        dock: DaemonRunner, start: dt.datetime) -> None:
    spec = SimRecorderSpec(serial=f"ZFY{start.year}", clock_start=start)
    dock.dock.plug("1-1.1", "gat947", spec=spec)
    bay = dock.wait_bay(1, "ready")
    assert abs(bay["clock_drift_s"]) <= 2
    clock_set = next(r for r in dock.custody() if r["type"] == "clock.set")
    assert abs(clock_set["payload"]["drift_before_s"]) > 86400 * 365 * 50
    assert abs(clock_set["payload"]["drift_after_s"]) <= 2
    # The recorder keeps Beijing wall time; the custody log holds it as UTC.
    expected = start.replace(tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(dt.UTC)
    recorded = dt.datetime.fromisoformat(clock_set["payload"]["recorder_time_before"])
    assert abs((recorded - expected).total_seconds()) <= 2


def test_dock_clock_not_synchronised_offloads_but_reports_clock_unsynced(tmp_path: Path) -> None:
    h = DaemonRunner(tmp_path / "dock", clock_sync="never")
    h.start()
    try:
        spec = SimRecorderSpec(serial="ZFYUNS1", clock_offset_s=3600)
        p = h.dock.plug("1-1.1", "gat947", spec=spec)
        bay = h.wait_bay(1, "fault")
        assert bay["fault"] == "clock_unsynced"
        assert not [r for r in h.custody() if r["type"] == "clock.set"]
        assert len(_catalog(h, "ZFYUNS1")) == len(_card_hashes(p.volume))
    finally:
        h.close()


def test_low_battery_is_offloaded_then_reported(dock: DaemonRunner) -> None:
    p = dock.dock.plug("1-1.3", "gat947", spec=SimRecorderSpec(serial="ZFYLOWB", battery_percent=5))
    assert dock.wait_bay(3, "fault")["fault"] == "battery_low"
    assert len(_catalog(dock, "ZFYLOWB")) == len(_card_hashes(p.volume))


def test_silent_recorder_gives_a_clear_login_fault(dock: DaemonRunner) -> None:
    from dockd.sim.recorders import Fault

    dock.dock.plug("1-1.1", "gat947", spec=SimRecorderSpec(serial="ZFYMUTE"),
                   faults=[Fault.SILENT] * 3)
    bay = dock.wait_bay(1, "fault", timeout=60)
    assert bay["fault"] == "login_failed"
    fault = next(r for r in dock.custody() if r["type"] == "bay.fault")
    assert fault["payload"]["detail"]


# A recorder that answers garbage, a short reply, nothing, or leaves the line at one step:
# (kind, fault, command) → where its bay ends. Before the switch that is a named fault (the
# exchange's step); after the command to switch, the disk decides.
BAD_AT_EVERY_STEP = [
    [("gat947", "SILENT", "GET_ZFY_INFO", "fault", "login_failed"),
     ("amba", "SILENT", "Gdv", "fault", "login_failed"),
     ("gat947", "GARBAGE", "SET_MSDC", "ready", None)],
    [("gat947", "PULL_OUT", "GET_DEV_TIME", "fault", "login_failed"),
     ("amba", "SHORT", "ATH", "ready_unchecked", None),
     ("gat947", "SHORT", "SYNC_DEV_TIME", "fault", "clock_set_failed")],
    [("gat947", "GARBAGE", "GET_STORAGE", "fault", "login_failed"),
     # the port died at the clock; @ATH then cannot be sent, no disk comes: the switch failed
     ("amba", "PULL_OUT", "Sdt", "fault", "storage_switch_failed"),
     ("gat947", "SHORT", "READ_BATTERY", "fault", "login_failed")],
]


def test_bad_answers_at_any_step_end_in_a_named_state_and_the_bay_takes_the_next(
        tmp_path: Path) -> None:
    # A storage wait of 4 s instead of 10: the Ambarella recorder that leaves at the clock
    # never brings a disk and waits it out; the others' simulated disks come within ~0.5 s.
    dock = DaemonRunner(tmp_path / "dock", storage_wait_s=4)
    dock.start()
    try:
        _bad_answers_then_good_recorders(dock)
    finally:
        dock.close()


def _bad_answers_then_good_recorders(dock: DaemonRunner) -> None:
    from dockd.sim.recorders import Fault

    for round_no, scenarios in enumerate(BAD_AT_EVERY_STEP):
        for bay, (kind, fault, command, _state, _reason) in enumerate(scenarios, start=1):
            # an hour off, so that the GA/T 947 recorder's clock is set (read within bounds,
            # it would not be)
            spec = SimRecorderSpec(serial=f"BAD{round_no}{bay}", clock_offset_s=3600,
                                   protocol="amba-stream" if kind == "amba" else "gat947-serial")
            dock.dock.plug(f"1-1.{bay}", kind, spec=spec, faults=[(Fault[fault], command)])
        for bay, (kind, fault, command, state, reason) in enumerate(scenarios, start=1):
            # bounded: the protocol's timeouts (2-3 s) plus the offload, never a hang
            ended = dock.wait_until(lambda st, n=bay: st["bays"][n - 1]["state"] in (
                "ready", "ready_unchecked", "fault"), 30, f"bay {bay} settles")["bays"][bay - 1]
            assert (ended["state"], ended["fault"]) == (state, reason), \
                (kind, fault, command, ended)
        last_fault = {r["payload"]["bay"]: r["payload"] for r in dock.custody()
                      if r["type"] == "bay.fault"}  # the good recorders never fault
        for bay, (kind, fault, command, _state, reason) in enumerate(scenarios, start=1):
            if reason is not None:  # recorded with a detail an administrator can act on
                recorded = last_fault[bay]
                assert recorded["reason"] == reason and recorded["detail"], \
                    (kind, fault, command, recorded)
        # every bay takes the next recorder
        for bay in (1, 2, 3):
            dock.dock.unplug(f"1-1.{bay}")
            dock.wait_bay(bay, "empty", timeout=30)
        for bay, (kind, *_rest) in enumerate(scenarios, start=1):
            dock.dock.plug(f"1-1.{bay}", kind,
                           spec=SimRecorderSpec(serial=f"GOOD{round_no}{bay}", protocol=(
                               "amba-stream" if kind == "amba" else "gat947-serial")))
        for bay, (kind, *_rest) in enumerate(scenarios, start=1):
            assert dock.wait_bay(bay, READY_AS[kind][0], timeout=30)["recorder"] == \
                f"GOOD{round_no}{bay}"
        for bay in (1, 2, 3):
            dock.dock.unplug(f"1-1.{bay}")
            dock.wait_bay(bay, "empty", timeout=30)


def test_a_models_own_command_timeout_reaches_its_driver(tmp_path: Path) -> None:
    from dockd.sim.recorders import Fault

    h = DaemonRunner(tmp_path / "dock", model_extra={"gat947": "read_timeout_s = 0.5"})
    h.start()
    try:
        h.dock.plug("1-1.1", "gat947", spec=SimRecorderSpec(serial="ZFYSLOW"),
                    faults=[(Fault.SILENT, "GET_ZFY_INFO")])
        assert h.wait_bay(1, "fault")["fault"] == "login_failed"
        fault = next(r["payload"] for r in h.custody() if r["type"] == "bay.fault")
        # the test framing's own default is 2 s; the model said 0.5 s
        assert "within 0.5 s" in fault["detail"], fault
    finally:
        h.close()


def test_recorder_vanishing_during_login_leaves_the_bay_empty(dock: DaemonRunner) -> None:
    from dockd.sim.recorders import Fault

    dock.dock.plug("1-1.1", "gat947", spec=SimRecorderSpec(serial="ZFYGONE", reply_delay_s=0.3),
                   faults=[Fault.SILENT])
    dock.dock.pull_out("1-1.1")
    dock.wait_until(lambda s: s["bays"][0]["state"] in ("empty", "fault"), 30, "bay settles")
    records = dock.custody()
    assert not [r for r in records if r["type"] == "session.started"]


def test_the_disk_decides_the_storage_phase_and_its_faults_say_what_was_seen(
        tmp_path: Path) -> None:
    from dockd.devices.events import DeviceEvent
    from dockd.sim.recorders import Fault

    h = DaemonRunner(tmp_path / "dock", storage_wait_s=2)
    h.start()
    try:
        # Bay 1: a disk appears without any file system udev could name, and nothing follows.
        h.dock.spool.post(DeviceEvent("add", "usb", "1-1.1", "/sys/devices/sim/usb1/1-1.1",
                                      vendor_id="2ca3", product_id="0100", usb_serial="NOFS1"))
        h.dock.spool.post(DeviceEvent("add", "block", "1-1.1", "/sys/devices/sim/usb1/1-1.1/x/sdz",
                                      device_node="/dev/null", vendor_id="2ca3", product_id="0100"))
        # Bay 2: acknowledges SetMSDC, leaves the bus, never comes back as a disk. Its officer's
        # name holds a user-defined CP936 character (a rare character of a name, 生僻字).
        gone = SimRecorderSpec(serial="ZFYLOST", officer_name="王\ue000")
        h.dock.plug("1-1.2", "gat947", spec=gone, comes_back=False)
        # Bay 3: never answers @ATH, but switches (as real recorders do).
        mute = h.dock.plug("1-1.3", "amba", spec=SimRecorderSpec(
            serial="AMBMUTE", protocol="amba-stream", password=b"123456"),
            faults=[(Fault.SILENT_SWITCH, "ATH")])

        assert h.wait_bay(1, "fault", timeout=30)["fault"] == "offload_failed"
        assert h.wait_bay(2, "fault", timeout=30)["fault"] == "storage_switch_failed"
        assert h.wait_bay(3, "ready_unchecked", timeout=30)["recorder"] == "AMBMUTE"
        records = h.custody()
        faults = {r["payload"]["bay"]: r["payload"] for r in records if r["type"] == "bay.fault"}
        assert "file system" in faults[1]["detail"] and "(no file system)" in faults[1]["detail"]
        lost = faults[2]["detail"]
        assert "acknowledged the switch" in lost and "remove tty, remove usb" in lost, lost
        docked = next(r["payload"] for r in records if r["type"] == "recorder.docked"
                      and r["subject"] == "ZFYLOST")
        assert docked["officer_name"] == "王\ue000"
        assert docked["recorder_text"]["officer_name"] == {
            "text": "王\ue000", "raw_b64": base64.b64encode(b"\xcd\xf5\xaa\xa1").decode()}
        assert "decode_warnings" not in docked  # nothing had to be tolerated
        # The silent recorder's clock was set though it cannot be read back: recorded so.
        clock_set = next(r["payload"] for r in records if r["type"] == "clock.set"
                         and r["subject"] == "AMBMUTE")
        assert clock_set["verified"] is False and clock_set["drift_after_s"] is None
        assert clock_set["sent"].startswith("@Sdt;8;") and clock_set["recorder_zone"]
        assert mute.recorder is not None and mute.recorder.state.clock_sets
        assert len(_catalog(h, "AMBMUTE")) == len(_card_hashes(mute.volume))
        # The lost recorder left the bus for good: bay 2 takes the next recorder at once.
        h.dock.plugged.pop("1-1.2")
        h.dock.plug("1-1.2", "msc", usb_serial="NEXT0001")
        h.wait_until(lambda st: st["bays"][1]["recorder"] == "NEXT0001"
                     and st["bays"][1]["state"] == "ready_unchecked", 30,
                     "bay 2 takes the next recorder")
    finally:
        h.close()


def test_port_missing_from_the_config_gets_a_derived_bay(dock: DaemonRunner) -> None:
    dock.dock.plug("2-4", "msc", usb_serial="ELSEWHERE")
    found = dock.wait_until(lambda s: any(b["label"] == "port 2-4"
                                          and b["state"] == "ready_unchecked"
                                          for b in s["bays"]), 60, "derived bay ready")
    assert any(b["bay"] >= 100 for b in found["bays"])
    assert "missing from the config" in dock.log()


def test_sigterm_mid_offload_interrupts_cleanly_and_restart_recovers(dock: DaemonRunner) -> None:
    files = [(f"DCIM/T{n}.MP4", 120 << 20) for n in range(4)]
    dock.dock.plug("1-1.1", "msc", usb_serial="TERM1", files=files)
    dock.wait_until(lambda s: s["bays"][0]["progress"]["bytes_done"] > 0, 60, "bytes copied")
    assert dock.stop(signal.SIGTERM) == 0
    records = dock.custody()
    assert records[-1]["type"] == "dock.stopped"
    interrupted = [r for r in records if r["type"] == "session.interrupted"]
    assert interrupted and interrupted[-1]["payload"]["reason"] == "dock_stopping"
    verify = dock.dockd("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # The recorder is still in its bay; after a restart the daemon's start-up replay
    # of present devices is the simulator's re-plug.
    dock.dock.unplug("1-1.1")
    dock.start()
    dock.dock.plug("1-1.1", "msc", usb_serial="TERM1", files=files)
    dock.wait_bay(1, "ready_unchecked", timeout=120)
    assert len(_catalog(dock, "TERM1")) == len(files)


def test_sighup_reloads_labels_and_rejects_a_broken_config(dock: DaemonRunner) -> None:
    config = dock.paths.config
    original = config.read_text()
    config.write_text(original.replace('label = "Bay 2"', 'label = "Front left"'))
    assert dock.proc is not None
    dock.proc.send_signal(signal.SIGHUP)
    dock.wait_until(lambda s: any(b["label"] == "Front left" for b in s["bays"]), 20, "new label")
    config.write_text(original + "\n[health]\nbattery_min_percent = 'low'\n")
    dock.proc.send_signal(signal.SIGHUP)
    dock.wait_until(lambda s: "config reload refused" in dock.log(), 20, "reload refused")
    assert "health.battery_min_percent" in dock.log()
    assert dock.proc.poll() is None


def test_clear_after_offload_deletes_only_verified_files_each_with_a_custody_event(
        tmp_path: Path) -> None:
    h = DaemonRunner(tmp_path / "dock", daemon_extra="clear_after_offload = true")
    h.start()
    try:
        p = h.dock.plug("1-1.1", "msc", usb_serial="CLEAR1",
                        files=[("DCIM/A.MP4", 100_000), ("DCIM/B.MP4", 200_000)])
        h.wait_bay(1, "ready_unchecked")
        assert sorted(x.name for x in p.volume.rglob("*") if x.is_file()) == []
        records = h.custody()
        deleted = [r for r in records if r["type"] == "recorder.file_deleted"]
        assert sorted(r["payload"]["source_path"] for r in deleted) == ["DCIM/A.MP4", "DCIM/B.MP4"]
        ingested = {r["payload"]["source_path"]: r for r in records if r["type"] == "file.ingested"}
        for r in deleted:
            assert r["seq"] > ingested[r["payload"]["source_path"]]["seq"]
            assert r["payload"]["sha256"] == ingested[r["payload"]["source_path"]]["payload"]["sha256"]
        verify = h.dockd("verify")
        assert verify.returncode == 0, verify.stdout
    finally:
        h.close()


def test_recorder_answering_garbage_gets_a_login_fault_and_no_offload(dock: DaemonRunner) -> None:
    from dockd.sim.recorders import Fault

    dock.dock.plug("1-1.2", "amba", spec=SimRecorderSpec(serial="AMBGARB", protocol="amba-stream"),
                   faults=[Fault.GARBAGE] * 4)
    bay = dock.wait_bay(2, "fault", timeout=60)
    assert bay["fault"] == "login_failed"
    assert not [r for r in dock.custody() if r["type"] == "session.started"]


def test_bay_leds_follow_the_daemon_and_a_broken_led_never_stops_the_offload(
        tmp_path: Path) -> None:
    from dockd.sim.led_board import make_sysfs_led

    leds = tmp_path / "sys" / "class" / "leds"
    leds.mkdir(parents=True)
    for name in ("bay1:status", "bay2:status"):
        make_sysfs_led(leds, name, channels=("red", "green"))
    # Bay 2's LED is broken: its brightness attribute is a directory (EISDIR on write).
    bay2 = (leds / "bay2:status").resolve()
    (bay2 / "brightness").unlink()
    (bay2 / "brightness").mkdir()
    extra = (f'[leds]\ndriver = "sysfs"\nsysfs_root = "{leds}"\n'
             '[[leds.bay]]\nbay = 1\nled = "bay1:status"\n'
             '[[leds.bay]]\nbay = 2\nled = "bay2:status"\n')
    h = DaemonRunner(tmp_path / "dock", extra=extra)
    h.start()
    try:
        h.dock.plug("1-1.1", "gat947", spec=SimRecorderSpec(serial="LED1"))
        h.dock.plug("1-1.2", "msc", usb_serial="LED2")
        h.wait_bay(1, "ready")
        h.wait_bay(2, "ready_unchecked")
        bay1 = (leds / "bay1:status").resolve()
        # Green and on: the driver writes the channels' intensities, then brightness, so
        # both are waited for (reading brightness right after the intensities raced the
        # second write; the simulated attribute is a plain file, empty while rewritten).
        def green_and_on(_status: object) -> bool:
            red_green = (bay1 / "multi_intensity").read_text().split()[:2]
            level = (bay1 / "brightness").read_text().strip()
            return (len(red_green) == 2 and red_green[0] == "0" and red_green[1] != "0"
                    and level not in ("", "0"))

        h.wait_until(green_and_on, 10, "green LED on")
        assert int((bay1 / "brightness").read_text()) > 0
        # bay 1's recorder leaves; a plain disk in its place cannot report battery or clock:
        # amber (red and green together on this LED), never green
        h.dock.unplug("1-1.1")
        h.wait_bay(1, "empty")
        h.dock.plug("1-1.1", "msc", usb_serial="LED3")
        h.wait_bay(1, "ready_unchecked")
        h.wait_until(lambda _s: "0" not in (bay1 / "multi_intensity").read_text().split()[:2],
                     10, "amber LED")
        assert len(_catalog(h, "LED2")) == 3
        assert "LED fault" in h.log()
    finally:
        h.close()


def test_pull_out_whose_reads_fail_before_the_remove_event_is_still_a_pull_out(
        dock: DaemonRunner) -> None:
    """A real disk fails reads (EIO) before udev reports its removal: the offload must not
    call that an offload failure."""
    # Enough files that the pull lands mid-offload on a fast store (the simulated card's
    # open files stay readable after the pull; the next open is what fails).
    files = [(f"DCIM/LATE{n:02}.MP4", 64 << 20) for n in range(16)]
    dock.dock.plug("1-1.1", "msc", usb_serial="LATE1", files=files)
    dock.wait_until(lambda s: s["bays"][0]["progress"]["bytes_done"] > 0, 60, "bytes copied")
    dock.dock.pull_out("1-1.1", remove_delay_s=0.7)
    bay = dock.wait_bay(1, "fault", timeout=60)
    assert bay["fault"] == "removed_during_offload"
    session_end = [r for r in dock.custody() if r["type"].startswith("session.")][-1]
    assert session_end["type"] == "session.interrupted"
    assert session_end["payload"]["reason"] == "removed_during_offload"
    dock.dock.put_card_back("LATE1")
    dock.dock.plug("1-1.1", "msc", usb_serial="LATE1", files=files)
    dock.wait_bay(1, "ready_unchecked", timeout=120)
    assert sorted(i["source_path"] for i in _catalog(dock, "LATE1")) == sorted(f for f, _ in files)


def test_systemd_notify_ready_watchdog_and_stopping(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(30)
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # ping every 0.2 s
    h = DaemonRunner(tmp_path / "dock")
    try:
        h.start()
        messages: list[str] = []
        while sum("WATCHDOG=1" in m for m in messages) < 3:
            messages.append(sock.recv(4096).decode())
        assert "READY=1" in messages[0]
        assert h.stop() == 0
        while not any("STOPPING=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
    finally:
        h.close()
        sock.close()
