"""The Ambarella USB link takes its bulk endpoints from the interface descriptors.

Recorders are documented with 0x01 OUT / 0x81 IN, but the device decides: the HIL guest's gadget
gets 0x02 OUT / 0x81 IN from its UDC (docs/hil.md). The fake pyusb device answers only on the
endpoints its descriptors name, so a link that hard-coded 0x01 would get a pipe error here.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import usb.core

from dockd.clock import SystemClock
from dockd.devices.recorders.amba_session import AmbaSession
from dockd.devices.recorders.amba_usb import BulkEndpoints, UsbBulkAmbaLink, bulk_endpoints
from dockd.devices.recorders.base import ProtocolError, RecorderError, TransportSpec
from dockd.devices.recorders.registry import get_driver
from dockd.sim.recorders import RecorderState

from .test_recorder_amba import PASSWORD, ZONE, FakeAmbaUsbDevice, amba_spec, fake_interface

FRAMES = [b"@Ver;8;00000000;#", b"@Gdv;8;12345678;#", b"@Sdt;8;19700101;#",
          b"@Stm;6;08000000;#", b"@ATH;8;12345678;#"]


def device(**kw: object) -> FakeAmbaUsbDevice:
    return FakeAmbaUsbDevice(RecorderState(amba_spec(), SystemClock()), **kw)  # type: ignore[arg-type]


class Traced(FakeAmbaUsbDevice):
    """Records (endpoint, bytes) of every transfer, in order."""

    def __init__(self, **kw: object) -> None:
        super().__init__(RecorderState(amba_spec(), SystemClock()), **kw)  # type: ignore[arg-type]
        self.trace: list[tuple[int, bytes]] = []

    def write(self, endpoint: int, data: bytes, timeout: int | None = None) -> int:
        self.trace.append((endpoint, bytes(data)))
        return super().write(endpoint, data, timeout)

    def read(self, endpoint: int, size: int, timeout: int | None = None):  # type: ignore[no-untyped-def]
        data = super().read(endpoint, size, timeout)
        self.trace.append((endpoint, bytes(data)))
        return data


def run_session(dev: FakeAmbaUsbDevice) -> AmbaSession:
    s = AmbaSession(UsbBulkAmbaLink(dev, timeout_ms=100), PASSWORD, SystemClock(), ZoneInfo(ZONE))
    assert s.identify().serial == "A9CAM01"
    s.set_clock(dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    s.switch_to_mass_storage()
    return s


@pytest.mark.parametrize(("ep_out", "ep_in"), [(0x01, 0x81), (0x02, 0x81), (0x03, 0x84)])
def test_frames_go_to_the_endpoints_the_descriptor_names(ep_out: int, ep_in: int) -> None:
    dev = Traced(ep_out=ep_out, ep_in=ep_in)
    run_session(dev)
    assert [e for e, _ in dev.trace] == [ep_out, ep_in] * len(FRAMES)
    assert [d for e, d in dev.trace if e == ep_out] == FRAMES
    assert [d for e, d in dev.trace if e == ep_in] == [
        b"@Ver;OK;#", b"@Gdv;7;A9CAM01;#", b"@Sdt;OK;#", b"@Stm;OK;#", b"@ATH;OK;#"]


def test_the_gadget_layout_is_found_among_other_interfaces_and_endpoints() -> None:
    # interrupt IN first, then the bulk pair; a mass-storage interface 1 with its own bulk pair
    intf0 = fake_interface(0, (0x83, 3), (0x02, 2), (0x81, 2))
    intf1 = fake_interface(1, (0x86, 2), (0x07, 2))
    dev = device(ep_out=0x02, ep_in=0x81, interfaces=[intf1, intf0])
    assert bulk_endpoints(dev) == BulkEndpoints(0x02, 0x81)
    run_session(dev)


def test_documented_default_is_0x01_0x81() -> None:
    assert BulkEndpoints() == BulkEndpoints(0x01, 0x81)


def test_given_endpoints_skip_the_descriptor_read() -> None:
    dev = device(ep_out=0x02, ep_in=0x81, interfaces=[])
    link = UsbBulkAmbaLink(dev, 100, BulkEndpoints(0x02, 0x81))
    assert link.exchange(b"@Ver;8;00000000;#") == b"@Ver;OK;#"


@pytest.mark.parametrize(("interfaces", "match"), [
    ([], "no interface 0"),
    ([fake_interface(1, (0x01, 2), (0x81, 2))], "no interface 0"),
    ([fake_interface(0, (0x81, 2), (0x82, 2))], r"found: 0x81, 0x82"),
    ([fake_interface(0, (0x01, 3), (0x81, 3))], "found: none"),
])
def test_interface_without_a_bulk_pair_is_refused_and_released(
        interfaces: list[object], match: str) -> None:
    dev = device(interfaces=interfaces)
    with pytest.raises(ProtocolError, match=match):
        UsbBulkAmbaLink(dev, 100)
    assert dev._ctx.calls == ["release 0", "dispose"]
    assert dev.written == []


def test_configuration_read_failure_is_a_recorder_error() -> None:
    dev = device()

    def gone() -> None:
        raise usb.core.USBError("Input/Output Error", -1, 5)

    dev.get_active_configuration = gone  # type: ignore[assignment,method-assign]
    with pytest.raises(RecorderError, match="reading the configuration"):
        UsbBulkAmbaLink(dev, 100)


def test_driver_opens_a_gadget_numbered_recorder(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = Traced(ep_out=0x02, ep_in=0x81)
    monkeypatch.setattr(usb.core, "find", lambda **kw: iter([dev]))
    spec = TransportSpec("usb", usb_serial="USBSER1", timezone=ZONE, timeout_s=0.1)
    with get_driver("amba").open(spec, PASSWORD, SystemClock()) as s:
        assert s.identify().serial == "A9CAM01"
    assert dev.trace[0] == (0x02, FRAMES[0])
