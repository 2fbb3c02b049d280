"""Mass-storage driver, the entry-point registry, sample volumes and the simulator's device side."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.clock import SystemClock
from dockd.devices.recorders import gat947_framing as framing
from dockd.devices.recorders import gat947_protocol as gat
from dockd.devices.recorders.base import (
    ClockSetFailed,
    RecorderGone,
    RecorderSession,
    TransportSpec,
)
from dockd.devices.recorders.registry import get_driver, load_drivers
from dockd.errors import ConfigError, UsageError
from dockd.sim.recorders import (
    DriftingClock,
    Gat947Responder,
    RecorderState,
    SimRecorderSpec,
    make_sample_volume,
)

ZONE = "Asia/Shanghai"


def test_registry_loads_the_three_drivers() -> None:
    drivers = load_drivers()
    assert {"gat947", "amba", "msc"} <= set(drivers)
    assert drivers["gat947"].transports() == frozenset({"sg", "test-serial"})
    assert get_driver("msc").name == "msc"
    with pytest.raises(ConfigError, match=r"unknown recorder driver 'nope'.*gat947"):
        get_driver("nope")


def open_msc(tmp_path: Path, **options: str) -> RecorderSession:
    spec = TransportSpec("volume", usb_serial="0123456789AB", mount_path=str(tmp_path),
                         timezone=ZONE, options=options)
    return get_driver("msc").open(spec, None, SystemClock())


def test_msc_identity_storage_and_unknowns(tmp_path: Path) -> None:
    s = open_msc(tmp_path)
    assert s.identify().serial == "0123456789AB"
    assert s.battery_percent() is None and s.read_clock().recorder_time is None
    st_ = os.statvfs(tmp_path)
    info = s.storage()
    assert info is not None and info.total_bytes == st_.f_blocks * st_.f_frsize
    assert 0 <= info.free_bytes <= info.total_bytes
    assert not s.capabilities.set_clock and s.capabilities.storage
    with pytest.raises(ClockSetFailed, match="no clock file"):
        s.set_clock(dt.datetime.now(dt.UTC))
    s.switch_to_mass_storage()


def test_msc_time_file(tmp_path: Path) -> None:
    s = open_msc(tmp_path, time_file="TIME.TXT", time_format="%Y.%m.%d %H:%M:%S")
    assert s.capabilities.set_clock
    s.set_clock(dt.datetime(2099, 12, 31, 15, 59, 59, 700000, tzinfo=dt.UTC))
    assert (tmp_path / "TIME.TXT").read_bytes() == b"2099.12.31 23:59:59\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["TIME.TXT"]  # no temp file left


def test_msc_time_file_write_failure(tmp_path: Path) -> None:
    s = open_msc(tmp_path / "unmounted", time_file="TIME.TXT")
    with pytest.raises(ClockSetFailed, match="cannot write"):
        s.set_clock(dt.datetime.now(dt.UTC))
    with pytest.raises(RecorderGone):
        s.storage()


@pytest.mark.parametrize(("serial", "options"), [
    (None, {}), ("bad/serial", {}), ("ok", {"time_file": "../x"}),
    ("ok", {"time_file": "T.TXT", "time_format": "static"}),
])
def test_msc_bad_config(tmp_path: Path, serial: str | None, options: dict[str, str]) -> None:
    spec = TransportSpec("volume", usb_serial=serial, mount_path=str(tmp_path), options=options)
    with pytest.raises(ConfigError):
        get_driver("msc").open(spec, None, SystemClock())


def test_unknown_timezone_is_a_config_error(tmp_path: Path) -> None:
    spec = TransportSpec("volume", usb_serial="A", timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="IANA"):
        get_driver("msc").open(spec, None, SystemClock())


def test_sample_volume_is_deterministic(tmp_path: Path) -> None:
    files = [("DCIM/240315/A_0001.MP4", 3_000_000), ("DCIM/240315/A_0002.JPG", 10),
             ("empty.bin", 0)]
    a = make_sample_volume(tmp_path / "a", "ZFY1", files, seed=7)
    b = make_sample_volume(tmp_path / "b", "ZFY1", files, seed=7)
    c = make_sample_volume(tmp_path / "c", "ZFY1", files, seed=8)
    for x, y, z in zip(a, b, c, strict=True):
        assert x.path.stat().st_size == x.size
        assert x.path.read_bytes() == y.path.read_bytes()
        if x.size > 40:
            assert x.path.read_bytes() != z.path.read_bytes()
    assert a[0].path.read_bytes()[4:8] == b"ftyp"
    digests = {hashlib.sha256(f.path.read_bytes()).hexdigest() for f in a}
    assert len(digests) == 3


def test_sample_volume_default_layout_and_hostile_paths(tmp_path: Path) -> None:
    made = make_sample_volume(tmp_path, "ZFY9")
    assert len(made) == 3 and all(f.relpath.startswith("DCIM/") for f in made)
    for bad in ("../escape.mp4", "/etc/passwd", ""):
        with pytest.raises(UsageError):
            make_sample_volume(tmp_path, "ZFY9", [(bad, 1)])
    assert not (tmp_path.parent / "escape.mp4").exists()


def test_sim_spec_validation() -> None:
    with pytest.raises(UsageError):
        SimRecorderSpec(protocol="telnet")
    with pytest.raises(UsageError):
        SimRecorderSpec(battery_percent=101)


class StepClock:
    def __init__(self) -> None:
        self.mono = 0.0

    def now(self) -> dt.datetime:
        return dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

    def monotonic(self) -> float:
        return self.mono


def test_drifting_clock_rate_and_set() -> None:
    clock = StepClock()
    drifting = DriftingClock(clock, dt.datetime(1970, 1, 1), drift_ppm=-500)
    clock.mono = 10_000
    assert drifting.now() == dt.datetime(1970, 1, 1, 2, 46, 35)  # 10000 * 0.9995 = 9995 s
    drifting.set(dt.datetime(2024, 1, 1))
    clock.mono += 2
    assert drifting.now() == dt.datetime(2024, 1, 1, 0, 0, 1)  # 1.999 s, whole seconds kept


def test_sim_device_checks_password_itself() -> None:
    responder = Gat947Responder(RecorderState(SimRecorderSpec(password=b"654321"), StepClock()))
    reply, _ = responder.handle(framing.Request(gat.Command.READ_BATTERY, b"123456", b""))
    assert framing.decode_response(reply).result == gat.ResultCode.CHECK_PWD_FAILED
    reply, _ = responder.handle(framing.Request(gat.Command.INIT, b"\0" * 6, b""))
    assert framing.decode_response(reply).result == 1  # Init_Device takes no password


@settings(max_examples=300, deadline=None)
@given(command=st.integers(0, 127), password=st.binary(min_size=6, max_size=6),
       payload=st.binary(max_size=120))
def test_sim_gat947_survives_random_requests(command: int, password: bytes,
                                             payload: bytes) -> None:
    state = RecorderState(SimRecorderSpec(password=b"123456"), StepClock())
    reply, _ = Gat947Responder(state).handle(framing.Request(command, password, payload))
    assert framing.decode_response(reply).command == command
