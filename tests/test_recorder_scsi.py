"""DV16 SCSI pass-through at byte level: sg_io_hdr packing, CDBs, replies, sense, discovery."""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import os
import platform
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.clock import SystemClock
from dockd.devices.recorders.base import (
    ClockSetFailed,
    NoSdCard,
    ProtocolError,
    RecorderError,
    RecorderGone,
    RecorderTimeout,
    SwitchOutcome,
)
from dockd.devices.recorders.gat947_protocol import ZfyInfo
from dockd.devices.recorders.gat947_scsi import ScsiGat947Link, SubCommand, build_cdb
from dockd.devices.recorders.gat947_session import Gat947Session
from dockd.devices.recorders.sgio import (
    Direction,
    Inquiry,
    ScsiResult,
    SgDevice,
    SgIoHdr,
    build_sg_io_hdr,
    find_sg_nodes,
    inquiry_matches,
    parse_inquiry,
    parse_sense,
    raise_for_status,
)
from dockd.sim.recorder_dv16 import Dv16Target, ScsiFault
from dockd.sim.recorders import RecorderState, SimRecorderSpec

ZONE_NAME = "Asia/Shanghai"


@pytest.mark.skipif(platform.machine() != "x86_64", reason="offsets below are the x86_64 ABI")
def test_sg_io_hdr_layout_matches_the_kernel_abi() -> None:
    assert ctypes.sizeof(SgIoHdr) == 88
    offsets = {name: getattr(SgIoHdr, name).offset for name, _ in SgIoHdr._fields_}
    assert offsets == {
        "interface_id": 0, "dxfer_direction": 4, "cmd_len": 8, "mx_sb_len": 9,
        "iovec_count": 10, "dxfer_len": 12, "dxferp": 16, "cmdp": 24, "sbp": 32,
        "timeout": 40, "flags": 44, "pack_id": 48, "usr_ptr": 56, "status": 64,
        "masked_status": 65, "msg_status": 66, "sb_len_wr": 67, "host_status": 68,
        "driver_status": 70, "resid": 72, "duration": 76, "info": 80,
    }


def test_sg_io_hdr_packing_bytes() -> None:
    cdb = ctypes.create_string_buffer(build_cdb(SubCommand.READ_BATTERY_VAL, False, 4), 16)
    data = ctypes.create_string_buffer(4)
    sense = ctypes.create_string_buffer(26)
    hdr = build_sg_io_hdr(cdb, Direction.FROM_DEV, data, 4, sense, 2000)
    raw = bytes(hdr)
    assert struct.unpack_from("<iiBBHI", raw, 0) == (ord("S"), -3, 16, 26, 0, 4)
    assert hdr.dxferp == ctypes.addressof(data) and hdr.cmdp == ctypes.addressof(cdb)
    assert hdr.sbp == ctypes.addressof(sense) and hdr.timeout == 2000
    none = build_sg_io_hdr(cdb, Direction.TO_DEV, data, 0, sense, 10000)
    assert none.dxfer_direction == -1 and not none.dxferp  # zero-length write: no data phase
    with pytest.raises(ValueError):
        build_sg_io_hdr(ctypes.create_string_buffer(3), Direction.NONE, data, 0, sense, 1)


@pytest.mark.parametrize(("sub", "write", "length", "head"), [
    (SubCommand.INIT_USB_DEVICE, True, 0, b"\xfb\x82\x00\x00\x00\x01\x00\x00"),
    (SubCommand.GET_ID_CODE, False, 6, b"\xfd\x81\x00\x00\x00\x02\x00\x06"),
    (SubCommand.GET_DEV_INFO, False, 89, b"\xfd\x81\x00\x00\x00\x03\x00\x59"),
    (SubCommand.SYNC_DEV_TIME, True, 7, b"\xfb\x82\x00\x00\x00\x05\x00\x07"),
    (SubCommand.READ_BATTERY_VAL, False, 4, b"\xfd\x81\x00\x00\x00\x08\x00\x04"),
    (SubCommand.GET_RETURN_STATUS, False, 4, b"\xfd\x81\x00\x00\x00\x0e\x00\x04"),
])
def test_cdb_bytes(sub: SubCommand, write: bool, length: int, head: bytes) -> None:
    cdb = build_cdb(sub, write, length)
    assert cdb == head + bytes(8)


class Rig:
    def __init__(self, spec: SimRecorderSpec) -> None:
        self.clock = SystemClock()
        self.state = RecorderState(spec, self.clock)
        self.target = Dv16Target(self.state)
        self.fd = os.open(os.devnull, os.O_RDWR)
        self.link = ScsiGat947Link(SgDevice(self.fd, "/dev/sg7", self.target))

    def session(self) -> Gat947Session:
        from zoneinfo import ZoneInfo

        return Gat947Session(self.link, b"000000", self.clock, ZoneInfo(ZONE_NAME))

    def subs(self) -> list[int]:
        return [c[5] for c in self.target.cdbs if c[0] in (0xFB, 0xFD)]


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig(SimRecorderSpec(serial="1234567", timezone=ZONE_NAME))
    yield r
    r.link.close()


def test_open_identify_battery_via_cdbs(rig: Rig) -> None:
    rig.link.check_identity()
    s = rig.session()
    ident = s.identify()
    assert (ident.serial, ident.id_code, ident.officer_name) == ("1234567", "ABCDE", "张三")
    assert s.battery_percent() == 80
    # Init, ID code + status, battery + status (login probe), ZFY info + status, battery + status
    assert rig.subs() == [1, 2, 14, 8, 14, 3, 14, 8, 14]
    assert 13 not in rig.subs()  # never asks the device for its clear-text password
    assert rig.target.directions[0] == -3  # INQUIRY reads
    assert rig.target.directions[1] == -1  # INIT: zero-length write, no data phase
    caps = s.capabilities
    assert not caps.authenticated and not caps.read_clock and not caps.storage
    assert s.read_clock().recorder_time is None and s.storage() is None


def test_sync_time_payload_and_failure(rig: Rig) -> None:
    s = rig.session()
    s.set_clock(dt.datetime(2099, 12, 31, 15, 59, 59, tzinfo=dt.UTC))
    assert rig.state.clock_sets == [dt.datetime(2099, 12, 31, 23, 59, 59)]
    sync = [c for c in rig.target.cdbs if c[0] == 0xFB and c[5] == 5]
    assert sync and sync[-1][7] == 7
    rig.target.faults.append(ScsiFault.STATUS_FAIL)
    with pytest.raises(ClockSetFailed, match="iRet 6"):
        s.set_clock(dt.datetime(1970, 1, 1, tzinfo=dt.UTC))


def test_msdc_without_sd_then_with(rig: Rig) -> None:
    s = rig.session()
    rig.state.has_sd = False
    with pytest.raises(NoSdCard, match="no SD card"):
        s.switch_to_mass_storage()
    assert 6 not in rig.subs()
    rig.state.has_sd = True
    s = rig.session()
    assert s.switch_to_mass_storage() == SwitchOutcome(True, "SET_MSDC completed")
    assert rig.subs()[-2:] == [12, 6] and rig.target.msdc
    assert rig.target.timeouts_ms[-2:] == [2000, 10000]  # the DLL's read / write timeouts


@pytest.mark.parametrize("fault, seen", [(ScsiFault.TRANSPORT_ERROR, "DID_ERROR"),
                                         (ScsiFault.TIMEOUT, "timeout"),
                                         (ScsiFault.GONE, "went away")])
def test_msdc_that_fails_after_it_was_sent_is_unacknowledged_not_an_error(
        rig: Rig, fault: ScsiFault, seen: str) -> None:
    # USBJL's SetMSDC reports success whatever the write returns; a recorder leaving the bus
    # mid-command is normal. Only the disk that follows can tell.
    s = rig.session()
    rig.target.faults[:] = [None, fault]  # GET_SD_STATUS fine, then the SET_MSDC write
    outcome = s.switch_to_mass_storage()
    assert not outcome.acknowledged and seen in outcome.detail and "SET_MSDC sent" in outcome.detail
    assert rig.subs()[-2:] == [12, 6]


def test_msdc_status_read_failing_before_the_switch_is_an_error(rig: Rig) -> None:
    s = rig.session()
    rig.target.faults.append(ScsiFault.TIMEOUT)  # GET_SD_STATUS: nothing was sent yet
    with pytest.raises(RecorderTimeout):
        s.switch_to_mass_storage()
    assert 6 not in rig.subs()


def test_write_info_is_always_the_89_byte_layout(rig: Rig) -> None:
    # Without identify first (a session that never read the block) and after it alike.
    info = ZfyInfo("7654321", "000001", "李四", "330100000001", "西站")
    rig.session().write_info(info)
    s = rig.session()
    s.identify()
    s.write_info(info)
    writes = [(c, d) for c, d in zip(rig.target.cdbs, rig.target.data_out, strict=True)
              if c[0] == 0xFB and c[5] == 4]
    assert len(writes) == 2 and all(c[7] == 89 and len(d) == 89 for c, d in writes)
    assert rig.state.info == info


def test_status_failure_is_iret_0(rig: Rig) -> None:
    s = rig.session()
    rig.target.faults.extend([ScsiFault.STATUS_FAIL])
    with pytest.raises(RecorderError, match="iRet 0"):
        s.battery_percent()


def test_init_status_failure_leaks_102() -> None:
    r = Rig(SimRecorderSpec(timezone=ZONE_NAME))
    r.target.faults.extend([ScsiFault.STATUS_FAIL])  # applies to INIT, read by its status check
    with pytest.raises(RecorderError, match="iRet 102"):
        r.session()


def test_timeout_short_and_gone(rig: Rig) -> None:
    s = rig.session()
    rig.target.faults.append(ScsiFault.TIMEOUT)
    with pytest.raises(RecorderTimeout):
        s.battery_percent()
    rig.target.faults.append(ScsiFault.SHORT)
    with pytest.raises(ProtocolError, match="battery reply is 2 bytes"):
        s.battery_percent()
    rig.target.faults.append(ScsiFault.GONE)
    with pytest.raises(RecorderGone, match="/dev/sg7"):
        s.battery_percent()


def test_wrong_device_is_refused() -> None:
    state = RecorderState(SimRecorderSpec(), SystemClock())
    target = Dv16Target(state, vendor=b"Kingston", product=b"DataTraveler 3.0")
    fd = os.open(os.devnull, os.O_RDWR)
    link = ScsiGat947Link(SgDevice(fd, "/dev/sg1", target))
    with pytest.raises(RecorderError, match="not a DV16"):
        link.check_identity()
    link.close()


def test_unknown_cdb_gives_check_condition_with_sense(rig: Rig) -> None:
    result = rig.link._device.execute(bytes([0xF9]) + bytes(15), Direction.FROM_DEV,
                                      data_in_len=4)
    assert result.status == 2 and parse_sense(result.sense) == (0x5, 0x20, 0x00)
    with pytest.raises(RecorderError, match="sense key 0x5"):
        raise_for_status(result, "READ_CAMERA")


def test_status_mapping() -> None:
    with pytest.raises(RecorderTimeout):
        raise_for_status(ScsiResult(0, 0x03, 0, b"", b""), "x")
    with pytest.raises(RecorderGone):
        raise_for_status(ScsiResult(0, 0x01, 0, b"", b""), "x")
    with pytest.raises(RecorderError, match="host DID_ERROR"):
        raise_for_status(ScsiResult(0, 0x07, 0, b"", b""), "x")
    raise_for_status(ScsiResult(0, 0, 0, b"", b"abc"), "x")
    assert parse_sense(bytes([0x72, 0x06, 0x29, 0x00])) == (6, 0x29, 0)


def test_inquiry_parsing_and_matching() -> None:
    data = bytes(8) + b"DV16    " + b"DEVICE V1.00    " + b"1.00"
    inq = parse_inquiry(data)
    assert inq == Inquiry("DV16", "DEVICE V1.00", "1.00")
    assert inquiry_matches(inq, ["DV16 DEVICE V1.00"])
    assert inquiry_matches(Inquiry("DV16 DEV", "ICE V1.00", ""), ["dv16 device v1.00"])
    assert not inquiry_matches(Inquiry("DV12", "DEVICE V1.00", ""), ["DV16 DEVICE V1.00"])
    with pytest.raises(ProtocolError):
        parse_inquiry(data[:30])
    with pytest.raises(ProtocolError, match="printable"):
        parse_inquiry(bytes(8) + b"\xffV16    " + bytes(20))


def test_find_sg_nodes_in_a_sysfs_tree(tmp_path: Path) -> None:
    def node(n: int, vendor: str, model: str) -> None:
        d = tmp_path / "class" / "scsi_generic" / f"sg{n}" / "device"
        d.mkdir(parents=True)
        (d / "vendor").write_text(vendor.ljust(8) + "\n")
        (d / "model").write_text(model.ljust(16) + "\n")
        (d / "rev").write_text("1.00\n")

    node(0, "ATA", "Samsung SSD")
    node(2, "DV16", "DEVICE V1.00")
    node(10, "DV16", "DEVICE V1.00")
    (tmp_path / "class" / "scsi_generic" / "bogus").mkdir()
    found = find_sg_nodes(["DV16 DEVICE V1.00"], sysfs=tmp_path, dev=Path("/dev"))
    assert found == ["/dev/sg10", "/dev/sg2"]  # newest first, as the DLL picks the newest
    assert find_sg_nodes(["X"], sysfs=tmp_path / "missing") == []


def test_open_missing_node() -> None:
    with pytest.raises(RecorderGone):
        SgDevice.open("/dev/sg-does-not-exist")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_sense_and_inquiry_parsers_raise_only_protocol_error(data: bytes) -> None:
    for parser in (parse_sense, parse_inquiry):
        with contextlib.suppress(ProtocolError):
            parser(data)


@settings(max_examples=200, deadline=None)
@given(reply=st.binary(max_size=100), sub=st.sampled_from([2, 3, 7, 8, 12, 14]))
def test_random_device_data_raises_only_recorder_errors(reply: bytes, sub: int) -> None:
    r = Rig(SimRecorderSpec(timezone=ZONE_NAME))
    original = r.target._answer

    def hostile(cdb: bytes, data_out: bytes) -> bytes | None:
        return reply if len(cdb) > 5 and cdb[5] == sub else original(cdb, data_out)

    r.target._answer = hostile  # type: ignore[method-assign]
    try:
        s = r.session()
        s.identify()
        s.battery_percent()
        s.switch_to_mass_storage()
    except RecorderError:
        pass
    finally:
        r.link.close()
