"""Ambarella B1 frames (pty stream and USB bulk) and the A9 control packets."""

from __future__ import annotations

import array
import contextlib
import datetime as dt
import errno
import os
import threading
import time
import tty
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import usb.core
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.clock import SystemClock
from dockd.devices.recorders import amba_protocol as amba
from dockd.devices.recorders.amba_a9 import A9Session
from dockd.devices.recorders.amba_session import AmbaSession
from dockd.devices.recorders.amba_usb import UsbBulkAmbaLink
from dockd.devices.recorders.base import (
    ClockSetFailed,
    LoginFailed,
    ProtocolError,
    RecorderError,
    RecorderGone,
    RecorderSession,
    RecorderTimeout,
    SwitchRefused,
    TransportSpec,
)
from dockd.devices.recorders.registry import get_driver
from dockd.errors import ConfigError
from dockd.sim.recorders import AmbaResponder, Fault, RecorderState, SimRecorder, SimRecorderSpec

ZONE = "Asia/Shanghai"
PASSWORD = b"12345678"


def amba_spec(**kw: Any) -> SimRecorderSpec:
    base: dict[str, Any] = {"protocol": "amba-stream", "password": PASSWORD, "serial": "A9CAM01",
                            "timezone": ZONE}
    base.update(kw)
    return SimRecorderSpec(**base)


# --- codec ---------------------------------------------------------------------------------

def test_frames_are_byte_exact() -> None:
    wall = dt.datetime(2099, 12, 31, 23, 59, 58)
    assert amba.login_frame() == b"@Ver;8;00000000;#"
    assert amba.device_id_frame("12345678") == b"@Gdv;8;12345678;#"
    assert amba.set_date_frame(wall) == b"@Sdt;8;20991231;#"
    assert amba.set_time_frame(wall) == b"@Stm;6;23595800;#"  # LEN 6 for 8 chars, as public
    assert amba.mass_storage_frame("12345678") == b"@ATH;8;12345678;#"
    with pytest.raises(ValueError):
        amba.encode_frame("Gdv", "a;b")


def test_reply_parsing() -> None:
    assert amba.parse_device_id(amba.parse_reply(b"  @Gdv;7;A9CAM01;#\r\n")) == "A9CAM01"
    amba.check_login(amba.parse_reply(b"@Ver;OK;#"))
    with pytest.raises(LoginFailed):
        amba.check_login(amba.parse_reply(b"@Ver;NO;#"))
    with pytest.raises(LoginFailed, match="refused the password"):
        amba.parse_device_id(amba.parse_reply(b"ERROR"))
    for bad in (b"", b"   ", b"@Gdv;7;A9\xff;#", b"Gdv;7;X;#", b"@Gdv;7;X", b"@G1v;1;X;#",
                b"@Gdv;7;A9 CAM;#", b"@Gdv;#", b"@" + b"x" * 70 + b"#", b"@Gdv;1;\x1b;#"):
        with pytest.raises(ProtocolError):
            amba.parse_device_id(amba.parse_reply(bad))


def test_replies_are_parsed_as_tolerantly_as_the_public_host_reads_them() -> None:
    # One 64-byte bulk read: NUL padding, CR LF, junk after the frame are not the reply.
    padded = b"@Ver;OK;#\r\n".ljust(64, b"\0")
    amba.check_login(amba.parse_reply(padded))
    reply = amba.parse_reply(b"\0\0@Gdv;7;A9CAM01;#\xff\x00junk")
    assert amba.parse_device_id(reply) == "A9CAM01" and reply.text == "@Gdv;7;A9CAM01;#"
    bare = amba.parse_reply(b"ERROR\r\n\0\0")
    assert bare.is_error and bare.command == ""
    with pytest.raises(LoginFailed):
        amba.check_login(bare)
    # Replies the host never checks need not be framed, or even ASCII.
    assert not amba.parse_reply(b"OK\r\n").is_error
    assert not amba.parse_reply(b"\xfe\xffok").is_error
    assert amba.reply_complete(b"ERROR") and amba.reply_complete(b"@Sdt;OK;#")
    assert not amba.reply_complete(b"@Sdt;O")


def test_password_rules() -> None:
    assert amba.password_text(None) == "12345678"
    for bad in (b"", b"12;4", "密码".encode(), b"\x01"):
        with pytest.raises(ConfigError):
            amba.password_text(bad)


def test_a9_packets() -> None:
    login = amba.a9_packet(amba.A9_CMD_LOGIN, b"123456")
    assert login[:10] == b"\xa1\x12\x00\x12123456" and len(login) == 64 and login[10:] == bytes(54)
    assert amba.a9_packet(amba.A9_CMD_DISK) == b"\xa1\x23\x00\x23" + bytes(60)
    assert amba.a9_login_ok(b"\x00\x00\x01" + bytes(7))
    assert not amba.a9_login_ok(b"\x00\x00\x02" + bytes(7))
    with pytest.raises(ProtocolError):
        amba.a9_login_ok(b"\x00")
    with pytest.raises(ConfigError):
        amba.a9_packet(amba.A9_CMD_LOGIN, bytes(61))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_reply_decoders_raise_only_protocol_or_login_errors(data: bytes) -> None:
    try:
        reply = amba.parse_reply(data)
        amba.parse_device_id(reply)
    except (ProtocolError, LoginFailed):
        pass
    with contextlib.suppress(ProtocolError, LoginFailed):
        amba.check_login(amba.parse_reply(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_simulated_device_survives_random_frames(data: bytes) -> None:
    responder = AmbaResponder(RecorderState(amba_spec(), SystemClock()))
    reply, _switch = responder.handle(data)
    assert len(reply) <= amba.MAX_REPLY and reply.endswith(b"#")


# --- stream transport over a real pty -------------------------------------------------------

def connect_stream(rec: SimRecorder, password: bytes | None = PASSWORD,
                   timeout_s: float = 0.4) -> RecorderSession:
    spec = TransportSpec("test-serial", path=rec.port, timezone=ZONE, timeout_s=timeout_s)
    return get_driver("amba").open(spec, password, SystemClock())


@pytest.fixture
def rec() -> Iterator[SimRecorder]:
    with SimRecorder(amba_spec(), SystemClock()) as r:
        yield r


def test_stream_login_identify_clock_and_switch(rec: SimRecorder) -> None:
    s = connect_stream(rec)
    ident = s.identify()
    assert (ident.serial, ident.device_label, ident.driver) == ("A9CAM01", "A9CAM01", "amba")
    assert s.battery_percent() is None and s.storage() is None
    assert s.read_clock().recorder_time is None
    s.set_clock(dt.datetime(2099, 12, 31, 15, 59, 58, tzinfo=dt.UTC))
    assert rec.state.clock_sets[-1] == dt.datetime(2099, 12, 31, 23, 59, 58)
    assert rec.state.clock.now() >= dt.datetime(2099, 12, 31, 23, 59, 58)
    s.switch_to_mass_storage()
    assert rec.mass_storage.wait(3)


def test_stream_default_password(rec: SimRecorder) -> None:
    with connect_stream(rec, None) as s:
        assert s.identify().serial == "A9CAM01"


def test_stream_wrong_password(rec: SimRecorder) -> None:
    with pytest.raises(LoginFailed, match="refused the password"):
        connect_stream(rec, b"87654321")


def test_stream_silent_short_garbage_pullout(rec: SimRecorder) -> None:
    rec.inject(Fault.SILENT, "Ver")
    with pytest.raises(RecorderTimeout):
        connect_stream(rec, timeout_s=0.2)
    rec.inject(Fault.SHORT, "Gdv")
    with pytest.raises(ProtocolError, match="short reply"):
        connect_stream(rec, timeout_s=0.2)
    rec.inject(Fault.GARBAGE, "Ver")
    with pytest.raises(ProtocolError):
        connect_stream(rec, timeout_s=0.2)
    rec.inject(Fault.PULL_OUT, "Gdv")
    with pytest.raises(RecorderGone):
        connect_stream(rec)


def test_stream_clock_refused() -> None:
    with SimRecorder(amba_spec(clock_set_fails=True), SystemClock()) as r:
        s = connect_stream(r)
        with pytest.raises(ClockSetFailed, match="@Sdt"):
            s.set_clock(dt.datetime.now(dt.UTC))
        s.close()


def test_stream_no_sd_card_refuses_storage_mode() -> None:
    with SimRecorder(amba_spec(has_sd=False), SystemClock()) as r:
        s = connect_stream(r)
        with pytest.raises(SwitchRefused, match="refused mass-storage"):
            s.switch_to_mass_storage()
        assert not r.mass_storage.is_set()
        s.close()


class ScriptedPort:
    """A pty whose far end answers each frame with a scripted reply (by command prefix)."""

    def __init__(self, replies: dict[bytes, bytes]) -> None:
        self.replies = replies
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        pending = b""
        while True:
            try:
                pending += os.read(self.master, 256)
            except OSError:
                return
            while b"#" in pending:
                frame, pending = pending.split(b"#", 1)
                reply = next((r for k, r in self.replies.items() if frame.startswith(k)), b"")
                os.write(self.master, reply)

    def close(self) -> None:
        os.close(self._slave)
        os.close(self.master)


def test_stream_bare_error_is_recognised_at_once_not_after_the_timeout() -> None:
    port = ScriptedPort({b"@Ver": b"@Ver;OK;#", b"@Gdv": b"ERROR"})
    try:
        started = time.monotonic()
        with pytest.raises(LoginFailed, match="ERROR"):
            connect_stream_path(port.path, timeout_s=3.0)
        assert time.monotonic() - started < 1.5
    finally:
        port.close()


def test_stream_nul_padded_and_unchecked_replies_are_accepted() -> None:
    port = ScriptedPort({b"@Ver": b"@Ver;OK;#\0\0\0", b"@Gdv": b"\0@Gdv;6;CAM777;#\r\n",
                         b"@Sdt": b"???#", b"@Stm": b"OK#", b"@ATH": b"@ATH;OK;#"})
    try:
        s = connect_stream_path(port.path)
        assert s.identify().serial == "CAM777"
        sent = s.set_clock(dt.datetime(2099, 12, 31, 15, 59, 58, tzinfo=dt.UTC))
        assert sent.wall_time == dt.datetime(2099, 12, 31, 23, 59, 58)
        assert sent.wire == "@Sdt;8;20991231;# @Stm;6;23595800;#"
        assert s.switch_to_mass_storage().acknowledged
    finally:
        port.close()


def connect_stream_path(path: str, timeout_s: float = 0.4) -> RecorderSession:
    spec = TransportSpec("test-serial", path=path, timezone=ZONE, timeout_s=timeout_s)
    return get_driver("amba").open(spec, PASSWORD, SystemClock())


# --- USB bulk with a device that behaves like pyusb's ----------------------------------------

class FakeUsbContext:
    """Stands in for pyusb's internal device context (claim/release/dispose)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def managed_claim_interface(self, device: Any, intf: int) -> None:
        self.calls.append(f"claim {intf}")

    def managed_release_interface(self, device: Any, intf: int) -> None:
        if device.gone:
            raise usb.core.USBError("No such device (it may have been disconnected)", -4,
                                    errno.ENODEV)
        self.calls.append(f"release {intf}")

    def dispose(self, device: Any, close_handle: bool = True) -> None:
        self.calls.append("dispose")


class FakeDescriptor:
    """A pyusb descriptor: fields as attributes, iterable over its children."""

    def __init__(self, children: list[FakeDescriptor] | None = None, **fields: int) -> None:
        self.__dict__.update(fields)
        self._children = children or []

    def __iter__(self) -> Iterator[FakeDescriptor]:
        return iter(self._children)


def fake_interface(number: int, *endpoints: tuple[int, int]) -> FakeDescriptor:
    """An interface with (bEndpointAddress, bmAttributes) endpoints (2 = bulk, 3 = interrupt)."""
    return FakeDescriptor([FakeDescriptor(bEndpointAddress=a, bmAttributes=t) for a, t in endpoints],
                          bInterfaceNumber=number, bAlternateSetting=0)


class FakeAmbaUsbDevice:
    """A 4255:0001 recorder as pyusb presents it: bulk write/read with timeouts in ms, on the
    bulk endpoints its interface 0 descriptor names (documented: 0x01 OUT, 0x81 IN)."""

    idVendor = 0x4255
    idProduct = 0x0001

    def __init__(self, state: RecorderState, serial: str = "USBSER1", ep_out: int = 0x01,
                 ep_in: int = 0x81, interfaces: list[FakeDescriptor] | None = None) -> None:
        self.ep_out, self.ep_in = ep_out, ep_in
        self.config = FakeDescriptor(interfaces if interfaces is not None else
                                     [fake_interface(0, (ep_out, 2), (ep_in, 2))])
        self.responder = AmbaResponder(state)
        self.serial_number = serial
        self.bus, self.address = 1, 7
        self._ctx = FakeUsbContext()
        self.pending: bytes | None = None
        self.silent = False
        self.gone = False
        self.written: list[bytes] = []
        self.configured = False
        self.pad = False  # NUL-pad every reply to the full 64-byte read
        self.silent_on: bytes | None = None  # never answer frames starting with this

    def set_configuration(self) -> None:
        self.configured = True

    def get_active_configuration(self) -> FakeDescriptor:
        return self.config

    def write(self, endpoint: int, data: bytes, timeout: int | None = None) -> int:
        if endpoint != self.ep_out:  # a real device stalls / has no such endpoint
            raise usb.core.USBError("Pipe error", -9, errno.EPIPE)
        if self.gone:
            raise usb.core.USBError("No such device (it may have been disconnected)", -4,
                                    errno.ENODEV)
        self.written.append(bytes(data))
        reply, switch = self.responder.handle(bytes(data))
        if self.pad:
            reply = (reply + b"\r\n").ljust(64, b"\0")
        silent = self.silent or (self.silent_on is not None and bytes(data).startswith(
            self.silent_on))
        self.pending = None if silent else reply
        if switch:
            self.gone_after_read = True
        return len(data)

    def read(self, endpoint: int, size: int, timeout: int | None = None) -> array.array[int]:
        assert size == 64
        if endpoint != self.ep_in:
            raise usb.core.USBError("Pipe error", -9, errno.EPIPE)
        if self.gone:
            raise usb.core.USBError("No such device (it may have been disconnected)", -4,
                                    errno.ENODEV)
        if self.pending is None:
            time.sleep((timeout or 1000) / 1000)
            raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
        data, self.pending = self.pending[:size], None
        if getattr(self, "gone_after_read", False):
            self.gone = True
        return array.array("B", data)


@pytest.fixture
def usb_dev() -> FakeAmbaUsbDevice:
    return FakeAmbaUsbDevice(RecorderState(amba_spec(), SystemClock()))


def usb_session(dev: FakeAmbaUsbDevice, password: bytes | None = PASSWORD) -> AmbaSession:
    return AmbaSession(UsbBulkAmbaLink(dev, timeout_ms=100), password, SystemClock(),
                       ZoneInfo(ZONE))


def test_usb_bulk_exchange_frames(usb_dev: FakeAmbaUsbDevice) -> None:
    s = usb_session(usb_dev)
    assert s.identify().serial == "A9CAM01"
    s.set_clock(dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    s.switch_to_mass_storage()
    assert usb_dev.written == [b"@Ver;8;00000000;#", b"@Gdv;8;12345678;#",
                               b"@Sdt;8;19700101;#", b"@Stm;6;08000000;#",
                               b"@ATH;8;12345678;#"]
    # After @ATH the device left the bus: the release fails and is tolerated, dispose still runs.
    assert usb_dev._ctx.calls == ["dispose"]


def test_usb_nul_padded_replies_work_end_to_end(usb_dev: FakeAmbaUsbDevice) -> None:
    usb_dev.pad = True
    s = usb_session(usb_dev)
    assert s.identify().serial == "A9CAM01"
    s.set_clock(dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    assert usb_dev.responder._state.clock_sets[-1] == dt.datetime(1970, 1, 1, 8, 0)
    outcome = s.switch_to_mass_storage()
    assert outcome.acknowledged and "@ATH;OK;#" in outcome.detail


def test_usb_silence_or_vanishing_after_ath_is_an_unacknowledged_switch(
        usb_dev: FakeAmbaUsbDevice) -> None:
    usb_dev.silent_on = b"@ATH"
    s = usb_session(usb_dev)
    outcome = s.switch_to_mass_storage()
    assert not outcome.acknowledged and "@ATH sent" in outcome.detail
    assert "did not answer" in outcome.detail
    assert usb_dev._ctx.calls[-1] == "dispose"  # closed: the recorder is on its way out
    gone = FakeAmbaUsbDevice(RecorderState(amba_spec(), SystemClock()))
    s = usb_session(gone)
    gone.gone = True  # it left the bus as the frame went out
    outcome = s.switch_to_mass_storage()
    assert not outcome.acknowledged and "left the bus" in outcome.detail


def test_usb_timeout_and_unplug(usb_dev: FakeAmbaUsbDevice) -> None:
    s = usb_session(usb_dev)
    usb_dev.silent = True
    started = time.monotonic()
    with pytest.raises(RecorderTimeout):
        s.set_clock(dt.datetime.now(dt.UTC))
    assert time.monotonic() - started >= 0.09
    usb_dev.silent = False
    usb_dev.gone = True
    with pytest.raises(RecorderGone):
        s.set_clock(dt.datetime.now(dt.UTC))


def test_usb_wrong_password(usb_dev: FakeAmbaUsbDevice) -> None:
    with pytest.raises(LoginFailed):
        usb_session(usb_dev, b"00000000")
    assert usb_dev._ctx.calls == ["release 0", "dispose"]  # the failed open released the device


def test_usb_other_usb_error(usb_dev: FakeAmbaUsbDevice) -> None:
    def broken(*args: Any) -> int:
        raise usb.core.USBError("Pipe error", -9, errno.EPIPE)

    usb_dev.write = broken  # type: ignore[method-assign]
    with pytest.raises(RecorderError, match="Pipe error"):
        usb_session(usb_dev)


def test_driver_finds_device_by_serial(monkeypatch: pytest.MonkeyPatch,
                                       usb_dev: FakeAmbaUsbDevice) -> None:
    other = FakeAmbaUsbDevice(RecorderState(amba_spec(serial="OTHER"), SystemClock()), "XX")
    monkeypatch.setattr(usb.core, "find", lambda **kw: iter([other, usb_dev]))
    spec = TransportSpec("usb", usb_serial="USBSER1", timezone=ZONE, timeout_s=0.1)
    with get_driver("amba").open(spec, PASSWORD, SystemClock()) as s:
        assert s.identify().serial == "A9CAM01"
    assert usb_dev.configured and usb_dev._ctx.calls[0] == "claim 0"
    with pytest.raises(RecorderGone, match="no USB device"):
        get_driver("amba").open(TransportSpec("usb", usb_serial="NOPE"), PASSWORD,
                                SystemClock())


def test_driver_rejects_unknown_transport() -> None:
    with pytest.raises(ConfigError, match="cannot use transport 'sg'"):
        get_driver("amba").open(TransportSpec("sg"), None, SystemClock())


# --- A9 control transfers -------------------------------------------------------------------

class FakeA9Device:
    """EP0 vendor requests as the A9 firmware answers them."""

    def __init__(self, password: bytes) -> None:
        self.password = password
        self.log: list[tuple[int, int, int, int, bytes | int]] = []
        self.status = bytes(10)
        self.disk = False

    def ctrl_transfer(self, bm: int, req: int, value: int = 0, index: int = 0,
                      data: bytes | int | None = None, timeout: int | None = None) -> Any:
        assert data is not None
        self.log.append((bm, req, value, index, data))
        if bm == 0x40 and isinstance(data, bytes):
            if data[1] == 0x12:
                ok = data[4:].rstrip(b"\0") == self.password
                self.status = bytes([0xA1, 0x12, 1 if ok else 0]) + bytes(7)
            elif data[1] == 0x23:
                self.disk = True
            return len(data)
        return array.array("B", self.status[: int(data)])


def test_a9_login_and_disk_mode() -> None:
    dev = FakeA9Device(b"123456")
    s = A9Session(dev, "SER9", b"123456", SystemClock(), 100)
    assert s.identify().serial == "SER9" and not s.capabilities.set_clock
    with pytest.raises(ClockSetFailed, match="no public clock"):
        s.set_clock(dt.datetime.now(dt.UTC))
    s.switch_to_mass_storage()
    assert dev.disk
    assert [(e[0], e[1], e[2]) for e in dev.log] == [(0x40, 0x55, 0x80), (0xC0, 0x55, 0x80),
                                                   (0x40, 0x50, 0x80), (0xC0, 0x55, 0x80)]


def test_a9_wrong_password_and_missing_serial() -> None:
    with pytest.raises(LoginFailed, match="status byte 2"):
        A9Session(FakeA9Device(b"123456"), "SER9", b"999999", SystemClock(), 100)
    with pytest.raises(ProtocolError, match="serial"):
        A9Session(FakeA9Device(b"123456"), None, b"123456", SystemClock(), 100)


# --- whole sessions on hostile replies: only the driver's own errors --------------------------

class ScriptedLink:
    """A B1 link whose replies are given: the right one, or random bytes at chosen steps."""

    def __init__(self, replies: dict[str, bytes]) -> None:
        self.replies = replies
        self.closed = False
        self._honest = AmbaResponder(RecorderState(amba_spec(), SystemClock()))

    def exchange(self, frame: bytes) -> bytes:
        command = frame[1:4].decode("ascii")
        honest, _switch = self._honest.handle(frame)
        return self.replies.get(command, honest)

    def close(self) -> None:
        self.closed = True


@settings(max_examples=300, deadline=None)
@given(replies=st.dictionaries(st.sampled_from(["Ver", "Gdv", "Sdt", "Stm", "ATH"]),
                               st.binary(max_size=80), min_size=1))
def test_a_b1_session_on_random_replies_raises_only_recorder_errors(
        replies: dict[str, bytes]) -> None:
    link = ScriptedLink(replies)
    try:
        s = AmbaSession(link, PASSWORD, SystemClock(), ZoneInfo(ZONE))
        s.identify()
        s.set_clock(dt.datetime.now(dt.UTC))
        outcome = s.switch_to_mass_storage()
    except RecorderError:
        return
    # got through: the switch closed the session, and an honest reply acknowledged it
    assert link.closed
    assert outcome.acknowledged or "ATH" in replies


class HostileA9Device(FakeA9Device):
    """The A9 firmware answering its status reads with the given bytes."""

    def __init__(self, status: bytes) -> None:
        super().__init__(b"123456")
        self.hostile = status

    def ctrl_transfer(self, bm: int, req: int, value: int = 0, index: int = 0,
                      data: bytes | int | None = None, timeout: int | None = None) -> Any:
        result = super().ctrl_transfer(bm, req, value, index, data, timeout)
        return array.array("B", self.hostile) if bm == 0xC0 else result


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=16))
def test_a_b2_session_on_random_status_raises_only_recorder_errors(status: bytes) -> None:
    try:
        s = A9Session(HostileA9Device(status), "SER9", b"123456", SystemClock(), 100)
        s.switch_to_mass_storage()
    except RecorderError:
        pass
