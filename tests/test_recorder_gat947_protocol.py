"""GA/T 947 codec and our serial framing: exact bytes, every error path, random input."""

from __future__ import annotations

import contextlib
import datetime as dt
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.devices.recorders import cp936
from dockd.devices.recorders import gat947_framing as framing
from dockd.devices.recorders import gat947_protocol as gat
from dockd.devices.recorders.base import (
    ClockSetFailed,
    LoginFailed,
    NoSdCard,
    ProtocolError,
    RecorderError,
)
from dockd.errors import UsageError

INFO = gat.ZfyInfo("1234567", "123456", "张三丰", "330100000000", "城关派出所")


def test_zfy_94_layout_bytes() -> None:
    raw = gat.encode_zfy_info(INFO, gat.ZfyLayout.TERMINATED_94)
    assert len(raw) == 94
    assert raw[:8] == b"1234567\0"
    assert raw[8:15] == b"123456\0"
    assert raw[15:48] == "张三丰".encode("gbk").ljust(33, b"\0")
    assert raw[48:61] == b"330100000000\0"
    reading = gat.decode_zfy_info(raw)
    assert reading.to_info() == INFO and reading.layout is gat.ZfyLayout.TERMINATED_94
    assert reading.officer_name.raw == "张三丰".encode("gbk") and reading.warnings == ()


def test_zfy_89_layout_lets_text_fill_the_field() -> None:
    info = gat.ZfyInfo("1234567", "123456", "名" * 16, "330100000000", "")
    raw = gat.encode_zfy_info(info, gat.ZfyLayout.PACKED_89)
    assert len(raw) == 89 and raw[:7] == b"1234567" and raw[7:13] == b"123456"
    assert gat.decode_zfy_info(raw).to_info() == info
    # The 94 layout keeps a NUL after each field: the same text fits, an 8-char serial does not.
    assert gat.decode_zfy_info(
        gat.encode_zfy_info(info, gat.ZfyLayout.TERMINATED_94)).to_info() == info
    with pytest.raises(UsageError, match=r"serial .* at most 7"):
        gat.encode_zfy_info(gat.ZfyInfo("12345678", "1"), gat.ZfyLayout.TERMINATED_94)
    with pytest.raises(UsageError, match=r"serial .* at most 7"):
        gat.encode_zfy_info(gat.ZfyInfo("12345678", "1"), gat.ZfyLayout.PACKED_89)


def test_zfy_field_limits_and_bad_text() -> None:
    with pytest.raises(UsageError, match="officer name"):
        gat.encode_zfy_info(gat.ZfyInfo("1", "1", "名" * 17), gat.ZfyLayout.PACKED_89)
    with pytest.raises(UsageError, match="CP936/GBK"):
        gat.encode_zfy_info(gat.ZfyInfo("1", "1", "😀"), gat.ZfyLayout.PACKED_89)
    with pytest.raises(UsageError, match="NUL"):
        gat.encode_zfy_info(gat.ZfyInfo("1\0", "1"), gat.ZfyLayout.PACKED_89)


def test_zfy_decode_is_strict_only_for_size_and_serial() -> None:
    with pytest.raises(ProtocolError, match="89 or 94"):
        gat.decode_zfy_info(b"\0" * 90)
    with pytest.raises(ProtocolError, match=r"serial .*CP936"):
        gat.decode_zfy_info(b"\xff\xff" + b"\0" * 92)
    with pytest.raises(ProtocolError, match=r"serial .*control"):
        gat.decode_zfy_info((b"12\x1b[31m" + b"\0" * 88)[:94])
    junk_after_nul = b"123\0\xff\xff\xff\xff" + b"\0" * 86
    assert gat.decode_zfy_info(junk_after_nul).serial == "123"


def _block89(name: bytes, unit_name: bytes = b"", officer: bytes = b"010203") -> bytes:
    return (b"ZFY0001" + officer.ljust(6, b"\0") + name.ljust(32, b"\0")
            + b"330100000000" + unit_name.ljust(32, b"\0"))


def test_user_defined_characters_decode_to_private_use_as_windows_does() -> None:
    # 王 + a user-defined character of area 1 (AAA1 → U+E000) + one of area 3 (A140 → U+E4C6):
    # Python's gbk refuses both; CP936 on Windows, where stations write names, maps them.
    name = "王".encode("gbk") + b"\xaa\xa1\xa1\x40"
    reading = gat.decode_zfy_info(_block89(name, b"\x80\xb3\xc7"))
    assert reading.officer_name == gat.ZfyText("王\ue000\ue4c6", name)
    assert reading.unit_name.text == "€城" and reading.warnings == ()
    # ... and they are written back as the same bytes
    assert gat.encode_zfy_info(reading.to_info(), gat.ZfyLayout.PACKED_89) == _block89(
        name, b"\x80\xb3\xc7")


def test_an_undecodable_text_field_is_none_with_a_warning_and_the_rest_survives() -> None:
    broken = b"\xb3\xc7\xff\xfe"  # 城, then no character at all
    reading = gat.decode_zfy_info(_block89(broken, "城关".encode("gbk"), b"01\x1b[0m"))
    assert reading.serial == "ZFY0001"
    assert reading.officer_name == gat.ZfyText(None, broken)
    assert reading.officer_id == gat.ZfyText(None, b"01\x1b[0m")  # escape codes are no text
    assert reading.unit_name.text == "城关"
    assert len(reading.warnings) == 2
    assert "officer name b3 c7 ff fe" in reading.warnings[1] or \
        "officer name b3 c7 ff fe" in reading.warnings[0]
    assert reading.to_info().officer_name == ""


def test_id_code() -> None:
    assert gat.decode_id_code(b"byand\0") == "byand"
    for bad in (b"", b"\0abcde", b"ab\x01de\0", b"123456789\0"):
        with pytest.raises(ProtocolError):
            gat.decode_id_code(bad)


def test_the_function_set_is_the_public_one_and_the_test_framing_adds_to_it_apart() -> None:
    # 1..8 are the DV16 sub-command numbers of the eight public functions; the clock read and
    # the storage query are the test framing's own and live with it, not in the protocol.
    assert [c.value for c in gat.Command] == list(range(1, 9))
    assert not {c.value for c in gat.Command} & {c.value for c in framing.ExtraCommand}
    assert not hasattr(gat, "decode_storage") and not hasattr(gat, "decode_time14")


def test_time_encodings() -> None:
    wall = dt.datetime(2099, 12, 31, 23, 59, 58)
    assert gat.encode_time7(wall) == struct.pack("<H", 2099) + bytes([12, 31, 23, 59, 58])
    assert gat.decode_time7(gat.encode_time7(wall)) == wall
    assert framing.encode_time14(wall) == b"20991231235958"
    assert framing.decode_time14(b"19700101000000") == dt.datetime(1970, 1, 1)
    with pytest.raises(ProtocolError, match="not a valid"):
        gat.decode_time7(struct.pack("<HBBBBB", 2024, 13, 1, 0, 0, 0))
    with pytest.raises(ProtocolError, match="14 ASCII digits"):
        framing.decode_time14(b"2024-01-01 000")
    with pytest.raises(ProtocolError, match="not a valid"):
        framing.decode_time14(b"20240230000000")


def test_battery_resolution_storage() -> None:
    assert gat.decode_battery(struct.pack("<i", 100)) == 100
    for bad in (struct.pack("<i", -1), struct.pack("<i", 101), b"\x01\x00"):
        with pytest.raises(ProtocolError):
            gat.decode_battery(bad)
    assert gat.decode_resolution(struct.pack("<ii", 2688, 1512)) == gat.Resolution(2688, 1512)
    with pytest.raises(ProtocolError, match="plausible"):
        gat.decode_resolution(struct.pack("<ii", 0, 1080))
    assert framing.decode_storage(framing.encode_storage(True, 10, 4)) == (True, 10, 4)
    with pytest.raises(ProtocolError, match="inconsistent"):
        framing.decode_storage(framing.encode_storage(True, 4, 10))


@pytest.mark.parametrize(("command", "code", "error"), [
    (gat.Command.READ_BATTERY, 4, LoginFailed),
    (gat.Command.SYNC_DEV_TIME, 6, ClockSetFailed),
    (gat.Command.SYNC_DEV_TIME, 1, ProtocolError),  # 1 is not success for SyncDevTime
    (gat.Command.SET_MSDC, 8, NoSdCard),
    (gat.Command.SET_MSDC, 101, RecorderError),
    (gat.Command.INIT, 102, RecorderError),
    (gat.Command.INIT, 2, RecorderError),
    (gat.Command.GET_ZFY_INFO, 0, RecorderError),
    (gat.Command.GET_ZFY_INFO, 3, ProtocolError),  # intermediate value as a final answer
    (gat.Command.GET_ZFY_INFO, 999, ProtocolError),
])
def test_result_codes(command: gat.Command, code: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        gat.check_result(command, code)


def test_success_codes() -> None:
    gat.check_result(gat.Command.SYNC_DEV_TIME, 5)
    gat.check_result(gat.Command.SET_MSDC, 7)
    gat.check_result(gat.Command.READ_BATTERY, 1)


def test_frame_bytes_are_as_documented() -> None:
    frame = framing.encode_request(gat.Command.READ_BATTERY, b"123456")
    assert frame[:4] == b"\x5a\xa5\x07\x00"
    assert frame[4:11] == b"\x08123456"
    # CRC-16/CCITT-FALSE of "123456789" is 0x29B1: the standard check value.
    assert framing._crc(b"123456789") == 0x29B1
    reply = framing.encode_response(gat.Command.READ_BATTERY, 1, b"\x50\0\0\0")
    assert framing.decode_response(reply) == framing.Response(8, 1, b"\x50\0\0\0")
    assert framing.decode_request(frame) == framing.Request(8, b"123456", b"")


def test_frame_errors() -> None:
    good = framing.encode_response(2, 1, b"abc")
    with pytest.raises(ProtocolError, match="checksum"):
        framing.decode_response(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(ProtocolError, match="5A A5"):
        framing.decode_response(b"\x00" + good[1:])
    with pytest.raises(ProtocolError, match="announces"):
        framing.decode_response(good[:-1])
    with pytest.raises(ProtocolError, match="not a reply"):
        framing.decode_response(framing.encode_request(2, b"\0" * 6))
    with pytest.raises(ProtocolError, match="outside"):
        framing.body_length(b"\x5a\xa5\xff\xff")


def test_splitter_resynchronises_after_garbage() -> None:
    f1 = framing.encode_request(1, b"\0" * 6)
    f2 = framing.encode_request(8, b"123456")
    splitter = framing.FrameSplitter()
    got = splitter.feed(b"\x5a\x00garbage\x5a" + f1[:3])
    got += splitter.feed(f1[3:] + b"\x5a\xa5\xff\xff" + f2)
    assert got == [f1, f2]


# --- property tests: random bytes never raise anything but ProtocolError -------------------

DECODERS = [gat.decode_zfy_info, gat.decode_id_code, gat.decode_time7, framing.decode_time14,
            gat.decode_battery, gat.decode_resolution, framing.decode_storage,
            framing.decode_response, framing.decode_request]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), index=st.integers(0, len(DECODERS) - 1))
def test_decoders_raise_only_protocol_error(data: bytes, index: int) -> None:
    with contextlib.suppress(ProtocolError):
        DECODERS[index](data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=89, max_size=89) | st.binary(min_size=94, max_size=94))
def test_zfy_decode_random_blocks(data: bytes) -> None:
    try:
        reading = gat.decode_zfy_info(data)
    except ProtocolError:
        return
    assert "\0" not in reading.serial and reading.layout == len(data)
    offsets = [0]
    for size in reading.layout.sizes:
        offsets.append(offsets[-1] + size)
    undecoded = 0
    for index, text in enumerate(reading.texts.values(), start=1):
        field = data[offsets[index]:offsets[index + 1]]
        assert text.raw == field.split(b"\0", 1)[0]  # the bytes as the recorder sent them
        if text.text is None:
            undecoded += 1
        else:
            assert "\0" not in text.text and cp936.encode(text.text) == text.raw
    assert len(reading.warnings) == undecoded


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_cp936_decode_raises_only_value_error_and_round_trips(data: bytes) -> None:
    try:
        text = cp936.decode(data)
    except ValueError:
        return
    assert cp936.encode(text) == data


def test_cp936_user_defined_areas_agree_with_gb18030() -> None:
    # GB18030 maps the same three areas to the same private-use code points (its codec is an
    # independent oracle here): all 1894 of them, both ways.
    count = 0
    for lead in range(0x81, 0xFF):
        for trail in range(0x40, 0xFF):
            pair = bytes([lead, trail])
            if trail == 0x7F or _decodes(pair, "gbk"):
                continue
            try:
                char = cp936.decode(pair)
            except ValueError:
                continue
            count += 1
            assert char == pair.decode("gb18030") and cp936.encode(char) == pair
    assert count == 0xE765 - 0xE000 + 1


def _decodes(raw: bytes, codec: str) -> bool:
    try:
        raw.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(command=st.integers(0, 127), result=st.integers(0, 0xFFFF), payload=st.binary(max_size=256),
       flip=st.integers(0, 10_000))
def test_framing_round_trip_and_single_bit_flips(command: int, result: int, payload: bytes,
                                                  flip: int) -> None:
    frame = framing.encode_response(command, result, payload)
    assert framing.decode_response(frame) == framing.Response(command, result, payload)
    bit = flip % (len(frame) * 8)
    corrupted = bytearray(frame)
    corrupted[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ProtocolError):
        framing.decode_response(bytes(corrupted))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=10))
def test_splitter_never_crashes_and_frames_have_valid_headers(chunks: list[bytes]) -> None:
    splitter = framing.FrameSplitter()
    for chunk in chunks:
        for frame in splitter.feed(chunk):
            assert framing.body_length(frame[:4]) + 6 == len(frame)


@settings(max_examples=200, deadline=None)
@given(code=st.integers(-1, 70000), command=st.sampled_from(list(gat.Command)))
def test_check_result_raises_only_recorder_errors(code: int, command: gat.Command) -> None:
    try:
        gat.check_result(command, code)
    except RecorderError:
        assert code != gat.success_code(command)
    else:
        assert code == gat.success_code(command)
