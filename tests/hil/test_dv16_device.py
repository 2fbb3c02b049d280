"""The HIL DV16 recorder's Bulk-Only Transport and SCSI target, on the host (normal suite).

The guest runs the same code behind FunctionFS (tests/hil/guest/recorder_fw.py); here its
endpoints are in-memory queues, and dockd's own SCSI link talks to it through a stand-in for
the kernel's SG_IO that frames each call as CBW / data / CSW the way usb-storage does.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import queue
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.devices.recorders.base import NoSdCard
from dockd.devices.recorders.gat947_scsi import ScsiGat947Link
from dockd.devices.recorders.gat947_session import Gat947Session
from dockd.devices.recorders.sgio import DID_ERROR, SG_IO, Direction, SgDevice, SgIoHdr
from dockd.devices.recorders.wallclock import recorder_zone

from .guest.dv16_device import (
    CBW_LEN,
    CSW_FAILED,
    CSW_PASSED,
    CSW_SIGNATURE,
    BadCbw,
    Dv16Target,
    RecorderFacts,
    SwitchMode,
    build_cbw,
    build_csw,
    parse_cbw,
    serve_bot,
)

UNPLUG = b"UNPLUG"


def vendor_cdb(sub: int, write: bool, length: int) -> bytes:
    """The DV16 CDB as the public notes lay it out (not dockd's build_cdb)."""
    cdb = bytearray(16)
    cdb[0], cdb[1] = (0xFB, 0x82) if write else (0xFD, 0x81)
    cdb[5], cdb[7] = sub, length
    return bytes(cdb)


@dataclass
class Bus:
    """Two bulk pipes between a host (the test) and the recorder's serve_bot thread."""

    out: queue.Queue[bytes] = field(default_factory=queue.Queue)  # host -> device
    into: queue.Queue[bytes] = field(default_factory=queue.Queue)  # device -> host
    sizes: list[int] = field(default_factory=list)  # lengths the device asked to read

    def read_out(self, n: int) -> bytes:
        self.sizes.append(n)
        data = self.out.get(timeout=5)
        if data == UNPLUG:
            raise OSError("endpoint shut down")
        return data

    def command(self, cdb: bytes, data_in: int = 0, data_out: bytes = b"",
                tag: int = 7) -> tuple[bytes, bytes]:
        """One BOT command as usb-storage runs it: CBW, data, CSW; returns (data, CSW)."""
        self.out.put(build_cbw(tag, data_in or len(data_out), bool(data_in), cdb))
        if data_out:
            self.out.put(data_out)
        data = self.into.get(timeout=5) if data_in else b""
        return data, self.into.get(timeout=5)


@dataclass
class Running:
    bus: Bus
    target: Dv16Target
    thread: threading.Thread
    ended: list[BaseException | None]


def run_device(facts: RecorderFacts, mode: SwitchMode = SwitchMode.ACK) -> Running:
    bus = Bus()
    target = Dv16Target(facts)
    ended: list[BaseException | None] = []

    def serve() -> None:
        try:
            serve_bot(bus.read_out, bus.into.put, target, mode)
            ended.append(None)
        except BaseException as exc:  # handed to the test, which asserts on it
            ended.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return Running(bus, target, thread, ended)


@pytest.fixture
def facts() -> RecorderFacts:
    return RecorderFacts(serial="DV16001", battery=64, password=b"246810")


@pytest.fixture
def device(facts: RecorderFacts) -> Iterator[Running]:
    running = run_device(facts)
    yield running
    if running.thread.is_alive():
        running.bus.out.put(UNPLUG)
        running.thread.join(5)


def csw_of(raw: bytes) -> tuple[int, int, int, int]:
    assert len(raw) == 13
    signature, tag, residue, status = struct.unpack("<IIIB", raw)
    return signature, tag, residue, status


# -- CBW / CSW ---------------------------------------------------------------------------------

def test_cbw_round_trip_and_csw_layout() -> None:
    raw = build_cbw(0xDEADBEEF, 36, True, bytes([0x12, 0, 0, 0, 36, 0]), lun=0)
    assert len(raw) == CBW_LEN and raw[:4] == b"USBC"
    cbw = parse_cbw(raw)
    assert (cbw.tag, cbw.data_length, cbw.data_in, cbw.lun) == (0xDEADBEEF, 36, True, 0)
    assert cbw.cdb == bytes([0x12, 0, 0, 0, 36, 0])
    assert build_csw(0xDEADBEEF, 4, 1) == b"USBS" + bytes.fromhex("efbeadde04000000") + b"\x01"


@pytest.mark.parametrize(("raw", "message"), [
    (b"USBC" + bytes(26), "30 bytes"),
    (b"USBC" + bytes(28), "32 bytes"),
    (b"USBS" + bytes(27), "signature"),
    (struct.pack("<IIIBBB", 0x43425355, 1, 0, 0, 0, 0) + bytes(16), "CDB length 0"),
    (struct.pack("<IIIBBB", 0x43425355, 1, 0, 0, 0, 17) + bytes(16), "CDB length 17"),
])
def test_invalid_cbw_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(BadCbw, match=message):
        parse_cbw(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=40))
def test_random_cbw_bytes_parse_or_raise_badcbw(raw: bytes) -> None:
    try:
        cbw = parse_cbw(raw)
    except BadCbw:
        return
    assert 1 <= len(cbw.cdb) <= 16 and len(raw) == CBW_LEN


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=16), st.binary(max_size=100), st.integers(0, 4096))
def test_random_cdbs_never_crash_the_target(cdb: bytes, data: bytes, alloc: int) -> None:
    target = Dv16Target(RecorderFacts(serial="DV16001"))
    reply = target.handle(cdb, data, alloc)
    assert len(reply.data) <= alloc
    if not reply.ok:  # every refusal leaves sense for REQUEST SENSE
        sense = target.handle(bytes([0x03, 0, 0, 0, 18, 0]), b"", 18).data
        assert sense[0] == 0x70 and sense[2] != 0


# -- standard SCSI over BOT --------------------------------------------------------------------

def test_inquiry_names_the_dv16_device(device: Running) -> None:
    data, csw = device.bus.command(bytes([0x12, 0, 0, 0, 36, 0]), data_in=36, tag=11)
    assert csw_of(csw) == (CSW_SIGNATURE, 11, 0, CSW_PASSED)
    assert data[0] == 0 and data[4] == 31  # direct access, 36 bytes in all
    joined = (data[8:16] + data[16:32]).decode("ascii").replace(" ", "").lower()
    assert joined == "dv16devicev1.00"


def test_short_answer_is_padded_and_the_residue_says_so(device: Running) -> None:
    # sd asks MODE SENSE(6) page 3Fh with 192 bytes; the recorder has 4 to say
    data, csw = device.bus.command(bytes([0x1A, 0, 0x3F, 0, 192, 0]), data_in=192)
    assert len(data) == 192 and data[:4] == bytes([3, 0, 0x80, 0]) and not any(data[4:])
    assert csw_of(csw)[2:] == (188, CSW_PASSED)


def test_capacity_and_read10_of_the_blank_medium(device: Running, facts: RecorderFacts) -> None:
    data, csw = device.bus.command(bytes([0x25] + [0] * 9), data_in=8)
    assert struct.unpack(">II", data) == (facts.blocks - 1, 512) and csw[-1] == CSW_PASSED
    cdb = bytes([0x28, 0]) + struct.pack(">I", facts.blocks - 2) + bytes([0]) + struct.pack(">H", 2) + b"\0"
    data, csw = device.bus.command(cdb, data_in=1024)
    assert data == bytes(1024) and csw_of(csw)[2:] == (0, CSW_PASSED)


def test_read_past_the_end_fails_with_sense_then_request_sense_clears_it(device: Running,
                                                                          facts: RecorderFacts) -> None:
    cdb = bytes([0x28, 0]) + struct.pack(">I", facts.blocks - 1) + bytes([0]) + struct.pack(">H", 2) + b"\0"
    data, csw = device.bus.command(cdb, data_in=1024)
    assert len(data) == 1024 and csw_of(csw)[2:] == (1024, CSW_FAILED)
    sense, csw = device.bus.command(bytes([0x03, 0, 0, 0, 18, 0]), data_in=18)
    assert csw[-1] == CSW_PASSED and (sense[0], sense[2], sense[12], sense[13]) == (0x70, 5, 0x21, 0)
    sense, _ = device.bus.command(bytes([0x03, 0, 0, 0, 18, 0]), data_in=18)
    assert sense[2] == 0 and sense[12] == 0  # reported once


@pytest.mark.parametrize(("cdb", "data_in", "asc"), [
    (bytes([0xA0] + [0] * 11), 16, 0x20),  # REPORT LUNS: not supported -> invalid opcode
    (bytes([0x12, 1, 0x80, 0, 255, 0]), 255, 0x24),  # INQUIRY VPD: invalid field
    (bytes([0x1A, 0, 0x08, 0, 20, 0]), 20, 0x24),  # MODE SENSE caching page: none
])
def test_unsupported_commands_fail_with_illegal_request(device: Running, cdb: bytes,
                                                        data_in: int, asc: int) -> None:
    data, csw = device.bus.command(cdb, data_in=data_in)
    assert len(data) == data_in and csw[-1] == CSW_FAILED
    sense, _ = device.bus.command(bytes([0x03, 0, 0, 0, 18, 0]), data_in=18)
    assert (sense[2], sense[12]) == (5, asc)


def test_a_cdb_shorter_than_its_group_is_an_illegal_request(device: Running) -> None:
    data, csw = device.bus.command(bytes([0x28, 0, 0, 0, 0, 0]), data_in=512)  # READ(10) in 6
    assert len(data) == 512 and csw[-1] == CSW_FAILED
    sense, _ = device.bus.command(bytes([0x03, 0, 0, 0, 18, 0]), data_in=18)
    assert (sense[2], sense[12]) == (5, 0x24)


def test_write10_is_refused_as_write_protected_after_taking_the_data(device: Running) -> None:
    cdb = bytes([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0])
    _, csw = device.bus.command(cdb, data_out=bytes(512))
    assert csw_of(csw)[2:] == (0, CSW_FAILED)
    sense, _ = device.bus.command(bytes([0x03, 0, 0, 0, 18, 0]), data_in=18)
    assert (sense[2], sense[12]) == (7, 0x27)


def test_invalid_cbw_is_skipped_and_the_next_one_answered(device: Running) -> None:
    device.bus.out.put(b"garbage that is not a CBW")
    _, csw = device.bus.command(bytes(6), tag=3)  # TEST UNIT READY
    assert csw_of(csw) == (CSW_SIGNATURE, 3, 0, CSW_PASSED)


# -- DV16 vendor commands ----------------------------------------------------------------------

def test_vendor_reads_return_the_recorder_facts(device: Running, facts: RecorderFacts) -> None:
    idc, _ = device.bus.command(vendor_cdb(2, False, 6), data_in=6)
    assert idc == b"JL016\0"
    info, _ = device.bus.command(vendor_cdb(3, False, 89), data_in=89)
    assert info[:7] == b"DV16001" and info[7:13] == b"000123"
    assert info[13:45].rstrip(b"\0").decode("gbk") == "张三"
    assert info[57:89].rstrip(b"\0").decode("gbk") == "城关派出所"
    battery, _ = device.bus.command(vendor_cdb(8, False, 4), data_in=4)
    assert struct.unpack("<i", battery) == (64,)
    res, _ = device.bus.command(vendor_cdb(7, False, 8), data_in=8)
    assert struct.unpack("<ii", res) == (1920, 1080)
    pw, _ = device.bus.command(vendor_cdb(13, False, 16), data_in=16)
    assert pw == b"246810".ljust(16, b"\0")  # in clear text, as the notes say


def test_sync_dev_time_sets_the_clock_and_return_status_reports_it(device: Running) -> None:
    payload = struct.pack("<HBBBBB", 2026, 12, 7, 21, 5, 9)
    _, csw = device.bus.command(vendor_cdb(5, True, 7), data_out=payload)
    assert csw[-1] == CSW_PASSED
    status, _ = device.bus.command(vendor_cdb(14, False, 4), data_in=4)
    assert status[0] == 0
    assert device.target.clock_sets == [dt.datetime(2026, 12, 7, 21, 5, 9)]
    # an impossible date is refused by the recorder, seen only in GET_RETURN_STATUS
    _, csw = device.bus.command(vendor_cdb(5, True, 7),
                                data_out=struct.pack("<HBBBBB", 2026, 13, 1, 0, 0, 0))
    assert csw[-1] == CSW_PASSED
    status, _ = device.bus.command(vendor_cdb(14, False, 4), data_in=4)
    assert status[0] == 1 and len(device.target.clock_sets) == 1


def test_write_dev_info_keeps_the_serial_and_needs_an_officer_number(device: Running,
                                                                    facts: RecorderFacts) -> None:
    info = (b"DV16001" + b"000777" + "李四".encode("gbk").ljust(32, b"\0") + bytes(12)
            + bytes(32))
    device.bus.command(vendor_cdb(4, True, 89), data_out=info)
    assert device.bus.command(vendor_cdb(14, False, 4), data_in=4)[0][0] == 0
    assert facts.user_no == b"000777" and facts.user_name.decode("gbk") == "李四"
    device.bus.command(vendor_cdb(4, True, 89), data_out=b"DV16001" + bytes(82))
    assert device.bus.command(vendor_cdb(14, False, 4), data_in=4)[0][0] == 1
    assert facts.user_no == b"000777"


@pytest.mark.parametrize("cdb", [
    vendor_cdb(2, False, 5),  # wrong length for GET_ID_CODE
    vendor_cdb(5, False, 7),  # SYNC_DEV_TIME with the read opcode
    vendor_cdb(99, False, 4),  # no such sub-command
    bytes([0xFD, 0x82, 0, 0, 0, 2, 0, 6]) + bytes(8),  # read opcode with the write user byte
])
def test_malformed_vendor_cdbs_are_illegal_requests(device: Running, cdb: bytes) -> None:
    data_in = cdb[7] if cdb[0] == 0xFD else 0
    _, csw = device.bus.command(cdb, data_in=data_in)
    assert csw[-1] == CSW_FAILED


def test_set_msdc_completes_then_the_loop_ends(device: Running) -> None:
    _, csw = device.bus.command(vendor_cdb(6, True, 0), tag=99)
    assert csw_of(csw) == (CSW_SIGNATURE, 99, 0, CSW_PASSED)
    device.thread.join(5)
    assert device.ended == [None]


def test_set_msdc_in_drop_mode_leaves_without_a_csw(facts: RecorderFacts) -> None:
    running = run_device(facts, SwitchMode.DROP)
    running.bus.out.put(build_cbw(5, 0, False, vendor_cdb(6, True, 0)))
    running.thread.join(5)
    assert running.ended == [None] and running.bus.into.empty()


def test_set_msdc_without_a_card_is_refused_and_stays_in_control_mode(facts: RecorderFacts) -> None:
    facts.sd_card = False
    running = run_device(facts)
    sd, _ = running.bus.command(vendor_cdb(12, False, 4), data_in=4)
    assert sd[0] == 0
    running.bus.command(vendor_cdb(6, True, 0))
    assert running.bus.command(vendor_cdb(14, False, 4), data_in=4)[0][0] == 1
    assert running.thread.is_alive()
    running.bus.out.put(UNPLUG)
    running.thread.join(5)
    assert isinstance(running.ended[0], OSError)  # an endpoint failure ends the loop


# -- dockd's SCSI link against the emulator --------------------------------------------------------

class BotKernel:
    """Stands in for SG_IO through usb-storage: each ioctl becomes CBW, data and CSW on the Bus;
    a recorder that leaves without its CSW gives DID_ERROR, as usb-storage reports it."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.cdbs: list[bytes] = []

    def __call__(self, fd: int, request: int, hdr: SgIoHdr, mutate: bool) -> int:
        assert request == SG_IO
        cdb = ctypes.string_at(hdr.cmdp, hdr.cmd_len)
        self.cdbs.append(cdb)
        bus = self.running.bus
        data_in = hdr.dxfer_direction == Direction.FROM_DEV
        out = ctypes.string_at(hdr.dxferp, hdr.dxfer_len) if hdr.dxfer_direction == Direction.TO_DEV else b""
        bus.out.put(build_cbw(len(self.cdbs), hdr.dxfer_len, data_in, cdb))
        if out:
            bus.out.put(out)
        try:
            data = bus.into.get(timeout=2) if data_in and hdr.dxfer_len else b""
            csw = bus.into.get(timeout=2)
        except queue.Empty:
            hdr.host_status = DID_ERROR
            return 0
        _, _, residue, status = struct.unpack("<IIIB", csw)
        if data:
            ctypes.memmove(hdr.dxferp, data, len(data))
        hdr.resid = residue
        hdr.status = 0x02 if status else 0
        return 0


def open_link(running: Running) -> tuple[ScsiGat947Link, BotKernel]:
    kernel = BotKernel(running)
    link = ScsiGat947Link(SgDevice(-1, "/dev/sg-test", kernel))
    link.check_identity()
    return link, kernel


class Clock:
    def now(self) -> dt.datetime:
        return dt.datetime(2026, 12, 7, 13, 5, 9, tzinfo=dt.UTC)

    def monotonic(self) -> float:
        return 0.0


def test_dockd_session_identifies_sets_the_clock_and_switches(device: Running) -> None:
    link, kernel = open_link(device)
    session = Gat947Session(link, b"123456", Clock(), recorder_zone("Asia/Shanghai"))
    identity = session.identify()
    assert (identity.serial, identity.id_code, identity.officer_id) == ("DV16001", "JL016", "000123")
    assert identity.officer_name == "张三" and identity.unit_name == "城关派出所"
    assert session.battery_percent() == 64
    sent = session.set_clock(Clock().now())
    assert device.target.clock_sets == [dt.datetime(2026, 12, 7, 21, 5, 9)]  # Beijing wall time
    assert "ea 07 0c 07 15 05 09" in sent.wire
    outcome = session.switch_to_mass_storage()
    assert outcome.acknowledged
    device.thread.join(5)
    assert device.ended == [None]
    assert not [c for c in kernel.cdbs if c[0] == 0xFD and c[5] == 13]  # password never read


def test_dockd_sees_a_recorder_that_drops_off_during_set_msdc_as_unacknowledged(
        facts: RecorderFacts) -> None:
    running = run_device(facts, SwitchMode.DROP)
    link, _ = open_link(running)
    session = Gat947Session(link, b"123456", Clock(), recorder_zone("Asia/Shanghai"))
    outcome = session.switch_to_mass_storage()
    assert not outcome.acknowledged and "DID_ERROR" in outcome.detail


def test_dockd_refuses_the_switch_without_an_sd_card(facts: RecorderFacts) -> None:
    facts.sd_card = False
    running = run_device(facts)
    link, kernel = open_link(running)
    session = Gat947Session(link, b"123456", Clock(), recorder_zone("Asia/Shanghai"))
    with pytest.raises(NoSdCard):
        session.switch_to_mass_storage()
    assert not [c for c in kernel.cdbs if c[0] == 0xFB and c[5] == 6]  # SET_MSDC never sent
    running.bus.out.put(UNPLUG)
    running.thread.join(5)
