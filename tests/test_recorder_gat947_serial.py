"""GA/T 947 over our serial framing, against the simulated recorder on a real pty (pyserial)."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from dockd.clock import SystemClock
from dockd.devices.recorders.base import (
    ClockSetFailed,
    LoginFailed,
    NoSdCard,
    ProtocolError,
    RecorderError,
    RecorderGone,
    RecorderSession,
    RecorderTimeout,
    TransportSpec,
)
from dockd.devices.recorders.gat947_protocol import ZfyInfo
from dockd.devices.recorders.gat947_session import Gat947Session
from dockd.devices.recorders.registry import get_driver
from dockd.dock.faults import fault_for
from dockd.dock.states import FaultReason
from dockd.sim.recorders import Fault, SimRecorder, SimRecorderSpec

ZONE = "Asia/Shanghai"
PASSWORD = b"123456"
TIMEOUT_S = 0.4


class ManualClock:
    """Dock clock the test moves by hand (thread-safe enough for reads from the sim thread)."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = start
        self._mono = 1000.0

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)
        self._mono += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime(2024, 3, 15, 1, 0, 0, tzinfo=dt.UTC))


def start(clock: ManualClock | SystemClock, **spec: object) -> SimRecorder:
    return SimRecorder(SimRecorderSpec(timezone=ZONE, **spec), clock)  # type: ignore[arg-type]


def connect(rec: SimRecorder, clock: ManualClock | SystemClock,
            password: bytes | None = PASSWORD, timeout_s: float = TIMEOUT_S) -> RecorderSession:
    spec = TransportSpec("test-serial", path=rec.port, timezone=ZONE, timeout_s=timeout_s)
    return get_driver("gat947").open(spec, password, clock)


@pytest.fixture
def rec(clock: ManualClock) -> Iterator[SimRecorder]:
    with start(clock) as recorder:
        yield recorder


def test_login_identity_battery_storage(rec: SimRecorder, clock: ManualClock) -> None:
    with connect(rec, clock) as session:
        ident = session.identify()
        assert (ident.serial, ident.id_code, ident.officer_id) == ("ZFY0001", "ABCDE", "010203")
        assert ident.officer_name == "张三" and ident.unit_name == "城关派出所"
        assert ident.driver == "gat947"
        assert session.battery_percent() == 80
        storage = session.storage()
        assert storage is not None and (storage.total_bytes, storage.free_bytes) == (
            64 * 1024**3, 60 * 1024**3)
        caps = session.capabilities
        assert caps.authenticated and caps.read_clock and caps.storage and caps.battery


@pytest.mark.parametrize("layout", [89, 94])
def test_both_zfy_layouts_identify_and_write_back(clock: ManualClock, layout: int) -> None:
    with start(clock, zfy_layout=layout, serial="1234567") as rec, connect(rec, clock) as s:
        assert s.identify().serial == "1234567"
        assert isinstance(s, Gat947Session)
        s.write_info(ZfyInfo("1234567", "654321", "李四", "330100000001", "西站"))
        assert rec.state.info.officer_name == "李四"
        assert s.identify().unit_name == "西站"


@pytest.mark.parametrize("password", [b"654321", b"", None, b"12345"])
def test_wrong_password_is_refused_by_the_device(rec: SimRecorder, clock: ManualClock,
                                                 password: bytes | None) -> None:
    with pytest.raises(LoginFailed, match="iRet 4") as info:
        connect(rec, clock, password)
    assert fault_for(info.value, FaultReason.OFFLOAD_FAILED) is FaultReason.LOGIN_FAILED
    assert info.value.exit_code == 69


def test_password_longer_than_six_bytes_is_a_config_error(rec: SimRecorder,
                                                          clock: ManualClock) -> None:
    from dockd.errors import ConfigError

    with pytest.raises(ConfigError, match="at most 6"):
        connect(rec, clock, b"1234567")


def test_silent_device_times_out(rec: SimRecorder, clock: ManualClock) -> None:
    rec.inject(Fault.SILENT, "INIT")
    started = time.monotonic()
    with pytest.raises(RecorderTimeout, match="did not answer INIT"):
        connect(rec, clock)
    assert TIMEOUT_S * 0.9 <= time.monotonic() - started < TIMEOUT_S + 1.0


def test_slow_but_in_time_reply_is_accepted(clock: ManualClock) -> None:
    with start(clock, reply_delay_s=0.1) as rec, connect(rec, clock) as s:
        assert s.battery_percent() == 80


def test_reply_slower_than_timeout_is_a_timeout(clock: ManualClock) -> None:
    with start(clock, reply_delay_s=0.6) as rec, pytest.raises(RecorderTimeout):
        connect(rec, clock, timeout_s=0.2)


def test_short_reply_is_a_protocol_error_and_session_recovers(rec: SimRecorder,
                                                               clock: ManualClock) -> None:
    with connect(rec, clock) as s:
        rec.inject(Fault.SHORT, "READ_BATTERY")
        with pytest.raises(ProtocolError, match="short reply"):
            s.battery_percent()
        assert s.battery_percent() == 80


def test_garbage_reply_is_a_protocol_error_and_session_recovers(rec: SimRecorder,
                                                                 clock: ManualClock) -> None:
    with connect(rec, clock) as s:
        rec.inject(Fault.GARBAGE, "GET_ZFY_INFO")
        with pytest.raises(ProtocolError):
            s.identify()
        assert s.identify().serial == "ZFY0001"


def test_device_vanishing_during_login(rec: SimRecorder, clock: ManualClock) -> None:
    rec.inject(Fault.PULL_OUT, "READ_BATTERY")
    with pytest.raises(RecorderGone, match="READ_BATTERY"):
        connect(rec, clock)


def test_pull_out_between_calls(rec: SimRecorder, clock: ManualClock) -> None:
    with connect(rec, clock) as s:
        rec.pull_out()
        with pytest.raises(RecorderGone):
            s.battery_percent()


def test_port_that_does_not_exist(clock: ManualClock, tmp_path: os.PathLike[str]) -> None:
    spec = TransportSpec("test-serial", path=os.path.join(tmp_path, "ttyACM9"), timezone=ZONE)
    with pytest.raises(RecorderGone, match="cannot open"):
        get_driver("gat947").open(spec, PASSWORD, clock)


@pytest.mark.parametrize("code", ["RESULT_101", "RESULT_102"])
def test_leaked_result_codes(rec: SimRecorder, clock: ManualClock, code: str) -> None:
    with connect(rec, clock) as s:
        rec.inject(Fault[code], "SET_MSDC")
        with pytest.raises(RecorderError, match=f"iRet {code[-3:]}"):
            s.switch_to_mass_storage()


@pytest.mark.parametrize("start_wall", [dt.datetime(1970, 1, 1, 0, 0, 0),
                                        dt.datetime(2099, 12, 31, 23, 59, 50)])
def test_clock_far_off_is_read_then_set_and_reread(clock: ManualClock,
                                                   start_wall: dt.datetime) -> None:
    with start(clock, clock_start=start_wall) as rec, connect(rec, clock) as s:
        first = s.read_clock()
        assert first.recorder_time == start_wall.replace(tzinfo=ZoneInfo(ZONE))
        assert first.read_at == clock.now()
        assert first.drift_s is not None and abs(first.drift_s) > 365 * 86400
        s.set_clock(clock.now())
        assert rec.state.clock_sets == [dt.datetime(2024, 3, 15, 9, 0, 0)]  # UTC+8 wall time
        again = s.read_clock()
        assert again.drift_s == 0.0


def test_drifting_clock_is_measured(clock: ManualClock) -> None:
    # +1000 ppm: after 3600 s of dock time the recorder is 3.6 s ahead.
    with start(clock, drift_ppm=1000.0) as rec, connect(rec, clock) as s:
        assert s.read_clock().drift_s == 0.0
        clock.advance(3600)
        drift = s.read_clock().drift_s
        assert drift is not None and 3.0 <= drift <= 4.0


def test_clock_offset(clock: ManualClock) -> None:
    with start(clock, clock_offset_s=-125) as rec, connect(rec, clock) as s:
        assert s.read_clock().drift_s == -125.0


def test_clock_set_refused(clock: ManualClock) -> None:
    with start(clock, clock_set_fails=True) as rec, connect(rec, clock) as s:
        with pytest.raises(ClockSetFailed, match="iRet 6") as info:
            s.set_clock(clock.now())
        assert fault_for(info.value, FaultReason.OFFLOAD_FAILED) is FaultReason.CLOCK_SET_FAILED


def test_set_clock_needs_an_aware_time(rec: SimRecorder, clock: ManualClock) -> None:
    with connect(rec, clock) as s, pytest.raises(ValueError, match="aware"):
        s.set_clock(dt.datetime(2024, 1, 1))


def test_no_sd_card_on_switch_and_storage(clock: ManualClock) -> None:
    with start(clock, has_sd=False) as rec, connect(rec, clock) as s:
        with pytest.raises(NoSdCard, match="no SD card"):
            s.storage()
        with pytest.raises(NoSdCard, match="iRet 8") as info:
            s.switch_to_mass_storage()
        assert fault_for(info.value, FaultReason.OFFLOAD_FAILED) is FaultReason.STORAGE_FULL
        assert not rec.mass_storage.is_set()
        assert s.battery_percent() == 80  # still in control mode


def test_switch_to_storage_closes_port_and_signals(rec: SimRecorder, clock: ManualClock) -> None:
    seen: list[str] = []
    fired = threading.Event()

    def presented(r: SimRecorder) -> None:
        seen.append(r.spec.serial)
        fired.set()

    rec.on_mass_storage(presented)
    s = connect(rec, clock)
    s.switch_to_mass_storage()
    assert fired.wait(3) and seen == ["ZFY0001"]
    assert rec.closed.is_set()
    with pytest.raises(ProtocolError, match="closed"):
        s.battery_percent()
    with pytest.raises(RecorderGone):
        connect(rec, clock)


def test_system_clock_session_round_trip() -> None:
    clock = SystemClock()
    with start(clock) as rec, connect(rec, clock) as s:
        s.set_clock(clock.now())
        drift = s.read_clock().drift_s
        assert drift is not None and abs(drift) <= 1.5
