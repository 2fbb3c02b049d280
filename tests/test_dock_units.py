"""Pure parts of the dock runtime: health decisions, runtime config, event parsing, spool."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockd.config import parse_config
from dockd.config.health import HealthSection
from dockd.devices.events import DeviceEvent, EventError, event_from_json_dict
from dockd.devices.spool import SpoolSource, SpoolWriter
from dockd.dock.health import ClockCheck, clock_faults, evaluate, needs_clock_set
from dockd.dock.states import FaultReason
from dockd.errors import ConfigError

SETTINGS = HealthSection(battery_min_percent=30, storage_min_free_percent=10, max_clock_drift_s=2)


def test_unknown_readings_are_never_faults_but_are_unchecked() -> None:
    report = evaluate(SETTINGS, None, None, None, ClockCheck(None))
    assert report.faults == () and report.unchecked == ("battery", "storage", "clock")
    assert evaluate(SETTINGS, 80, 100, 50, ClockCheck(0.5)).unchecked == ()


def test_each_threshold_gives_its_fault_in_order() -> None:
    report = evaluate(SETTINGS, 29, 100, 9, ClockCheck(10.0, 5.0, True, True, True, True))
    assert report.faults == (FaultReason.BATTERY_LOW, FaultReason.STORAGE_FULL,
                             FaultReason.CLOCK_SET_FAILED)
    assert report.unchecked == ()
    ok = evaluate(SETTINGS, 30, 100, 10, ClockCheck(10.0, 0.5, True, True, True, True))
    assert ok.faults == () and ok.clock.verified


def test_unsynchronised_dock_never_sets_and_reports_clock_unsynced() -> None:
    assert not needs_clock_set(SETTINGS, 3600.0, dock_synchronised=False)
    assert not needs_clock_set(SETTINGS, None, dock_synchronised=False)
    assert clock_faults(SETTINGS, ClockCheck(0.0, None, False, False)) == [
        FaultReason.CLOCK_UNSYNCED]
    # a recorder whose clock cannot be read but can be set: the dock cannot vouch for the time
    assert clock_faults(SETTINGS, ClockCheck(None, None, False, False, settable=True)) == [
        FaultReason.CLOCK_UNSYNCED]
    # ... one whose clock can be neither read nor set has no clock to check: unchecked
    nothing = evaluate(SETTINGS, 80, 100, 50, ClockCheck(None, None, False, False))
    assert nothing.faults == () and nothing.unchecked == ("clock",)


def test_a_clock_that_cannot_be_read_is_set_and_counts_as_checked_unverified() -> None:
    assert needs_clock_set(SETTINGS, None, True, settable=True)
    assert not needs_clock_set(SETTINGS, None, True, settable=False)
    assert not needs_clock_set(SETTINGS, 1.5, True, settable=True)  # read, and within bounds
    assert not needs_clock_set(HealthSection(set_clock=False), None, True)
    accepted = evaluate(SETTINGS, 80, 100, 50, ClockCheck(None, None, True, True, True, True))
    assert accepted.faults == () and accepted.unchecked == () and not accepted.clock.verified
    refused = evaluate(SETTINGS, 80, 100, 50, ClockCheck(None, None, True, True, True, False))
    assert refused.faults == (FaultReason.CLOCK_SET_FAILED,) and refused.unchecked == ()
    assert accepted.to_json_dict()["clock_set_verified"] is False


def test_required_checks_turn_an_unknown_reading_into_a_fault() -> None:
    required = ("battery", "clock")
    # storage unknown but not required: still only unchecked
    report = evaluate(SETTINGS, None, None, None, ClockCheck(None), required)
    assert report.faults == (FaultReason.CHECK_UNAVAILABLE,)
    assert report.unchecked == ("battery", "storage", "clock")
    assert report.missing_required == ("battery", "clock")
    assert report.to_json_dict()["required_checks"] == ["battery", "clock"]
    # the reading's own fault comes first; a required check that was done is no fault
    low = evaluate(SETTINGS, 5, None, None, ClockCheck(None), required)
    assert low.faults == (FaultReason.BATTERY_LOW, FaultReason.CHECK_UNAVAILABLE)
    assert low.missing_required == ("clock",)
    done = evaluate(SETTINGS, 80, None, None, ClockCheck(None, None, True, True, True, True),
                    required)
    assert done.faults == () and done.unchecked == ("storage",) and done.missing_required == ()


def test_required_checks_are_config_words_per_model() -> None:
    model = {"name": "a", "vendor_id": "4255", "product_id": "0001", "driver": "amba",
             "control": "usb", "require_checks": ["clock", "battery"], "read_timeout_s": 5,
             "write_timeout_s": 12.5}
    spec = parse_config({"daemon": {"models": [model]}}).daemon.models[0]
    assert spec.require_checks == ("clock", "battery")
    assert (spec.read_timeout_s, spec.write_timeout_s) == (5.0, 12.5)
    plain = parse_config({"daemon": {"models": [{**model, "require_checks": []}]}}).daemon
    assert plain.models[0].require_checks == ()
    default = {k: v for k, v in model.items() if not k.endswith(("_s", "checks"))}
    spec = parse_config({"daemon": {"models": [default]}}).daemon.models[0]
    assert (spec.require_checks, spec.read_timeout_s, spec.write_timeout_s) == ((), None, None)


@given(battery=st.one_of(st.none(), st.integers(0, 100)),
       drift=st.one_of(st.none(), st.floats(-1e10, 1e10)), synced=st.booleans())
def test_health_decisions_are_total(battery: int | None, drift: float | None, synced: bool) -> None:
    report = evaluate(SETTINGS, battery, 1000, 500, ClockCheck(drift, None, False, synced))
    assert (FaultReason.BATTERY_LOW in report.faults) == (battery is not None and battery < 30)
    assert ("battery" in report.unchecked) == (battery is None)
    if drift is None:
        assert not {FaultReason.CLOCK_UNSYNCED, FaultReason.CLOCK_SET_FAILED} & set(report.faults)
        assert "clock" in report.unchecked
    # a reading is either a fault, passed, or unchecked: never two of these
    assert not ({"clock"} & set(report.unchecked) and {FaultReason.CLOCK_UNSYNCED,
                FaultReason.CLOCK_SET_FAILED} & set(report.faults))


@pytest.mark.parametrize("daemon, key", [
    ({"bays": [{"port": "1-1", "number": 1}, {"port": "1-1", "number": 2}]}, "daemon.bays"),
    ({"bays": [{"port": "usb1/1-1", "number": 1}]}, "daemon.bays[0].port"),
    ({"bays": [{"port": "1-1"}]}, "daemon.bays[0]"),
    ({"models": [{"name": "x", "vendor_id": "42", "product_id": "0001"}]}, "daemon.models[0].vendor_id"),
    ({"models": [{"name": "x", "vendor_id": "4255", "product_id": "0001", "driver": "amba"}]},
     "daemon.models[0].control"),
    ({"models": [{"name": "x", "vendor_id": "4255", "product_id": "0001", "driver": "msc",
                  "control": "usb"}]}, "daemon.models[0].control"),
    ({"max_concurrent_offloads": 0}, "daemon.max_concurrent_offloads"),
    ({"clock_sync": "maybe"}, "daemon.clock_sync"),
    ({"bays": [{"port": "1-1", "number": 1, "colour": "red"}]}, "daemon.bays[0].colour"),
    ({"models": [{"name": "x", "vendor_id": "4255", "product_id": "0001", "driver": "amba",
                  "control": "usb", "require_checks": ["spare_battery"]}]},
     "daemon.models[0].require_checks"),
    ({"models": [{"name": "x", "vendor_id": "4255", "product_id": "0001", "driver": "amba",
                  "control": "usb", "require_checks": "battery"}]},
     "daemon.models[0].require_checks"),
    ({"models": [{"name": "x", "vendor_id": "4255", "product_id": "0001", "driver": "amba",
                  "control": "usb", "read_timeout_s": 0}]}, "daemon.models[0].read_timeout_s"),
    ({"models": [{"name": "x", "vendor_id": "4255", "product_id": "0001", "driver": "amba",
                  "control": "usb", "write_timeout_s": 600}]}, "daemon.models[0].write_timeout_s"),
    ({"models": [{"name": "x", "vendor_id": "2ca3", "product_id": "0001",
                  "read_timeout_s": 2}]}, "daemon.models[0].read_timeout_s"),
    # no recorder speaks over a serial port (the framings were the simulator's)
    ({"models": [{"name": "x", "vendor_id": "2ca3", "product_id": "0947", "driver": "gat947",
                  "control": "serial"}]}, "daemon.models[0].control: no recorder is known"),
    ({"models": [{"name": "x", "vendor_id": "4255", "product_id": "0001", "driver": "amba",
                  "control": "serial"}]}, "daemon.models[0].control: no recorder is known"),
])
def test_bad_runtime_config_names_the_key(daemon: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse_config({"daemon": daemon})


def test_runtime_config_round_trip() -> None:
    config = parse_config({"daemon": {"bays": [{"port": "1-1.3", "number": 3, "label": "Left"}],
                                      "models": [{"name": "a", "vendor_id": "4255",
                                                  "product_id": "0001", "driver": "amba",
                                                  "control": "usb"}]}})
    settings = config.daemon
    assert settings.bay_for_port("1-1.3") is not None
    assert settings.models[0].matches("4255", "0001")
    assert not settings.models[0].matches("4255", "0002")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)


@given(st.dictionaries(st.sampled_from(["action", "kind", "port", "sys_path", "device_node",
                                        "usb_bus", "properties", "fs_type", "x"]),
                       json_values, max_size=8) | json_values)
def test_random_event_documents_parse_or_raise_event_error(data: Any) -> None:
    try:
        event = event_from_json_dict(data)
    except EventError:
        return
    assert event.action in ("add", "remove", "change")
    assert event == event_from_json_dict(event.to_json_dict())


def test_spool_delivers_in_order_and_rejects_malformed_files(tmp_path: Path) -> None:
    got: list[DeviceEvent] = []
    done = threading.Event()

    def on_event(event: DeviceEvent) -> None:
        got.append(event)
        if len(got) == 3:
            done.set()

    writer = SpoolWriter(tmp_path)
    (tmp_path / "00000000000000000001-bad.json").write_text("{not json")
    (tmp_path / "00000000000000000002-bad.json").write_text(json.dumps({"action": "explode"}))
    writer.post(DeviceEvent("add", "usb", "1-1", "/sys/x/1-1"))
    source = SpoolSource(tmp_path, on_event)
    source.start()
    try:
        writer.post(DeviceEvent("add", "block", "1-1", "/sys/x/1-1/sda", fs_type="vfat"))
        writer.post(DeviceEvent("remove", "usb", "1-1", "/sys/x/1-1"))
        assert done.wait(10)
    finally:
        source.stop()
    assert [(e.action, e.kind) for e in got] == [("add", "usb"), ("add", "block"), ("remove", "usb")]
    assert sorted(p.name for p in (tmp_path / "rejected").iterdir()) == [
        "00000000000000000001-bad.json", "00000000000000000002-bad.json"]
    assert not list(tmp_path.glob("*.json"))
