"""The board line protocol: round trips, and whatever bytes arrive never crash a parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockd.config.leds import DOCK
from dockd.report.leds.pattern import Colour, LedPattern, Mode
from dockd.report.leds.protocol import (
    MAX_LINE,
    Ack,
    Command,
    Hello,
    LineBuffer,
    Nak,
    ProtocolError,
    encode_command,
    encode_reply,
    parse_command,
    parse_reply,
)


@st.composite
def patterns(draw: st.DrawFn) -> LedPattern:
    mode = draw(st.sampled_from(Mode))
    if mode is Mode.OFF:
        return LedPattern(Colour.OFF, Mode.OFF)
    colour = draw(st.sampled_from([Colour.RED, Colour.GREEN, Colour.AMBER]))
    low = 1 if mode in (Mode.BLINK, Mode.PULSE) else 0
    ms = st.integers(min_value=low, max_value=60_000)
    return LedPattern(colour, mode, draw(ms), draw(ms),
                      draw(st.none() | st.integers(min_value=0, max_value=100)))


commands = st.builds(Command, st.integers(0, 65535),
                     st.integers(0, 255) | st.just(DOCK), patterns())


@given(commands)
def test_command_round_trip(command: Command) -> None:
    line = encode_command(command)
    assert line.endswith(b"\n") and len(line) <= MAX_LINE
    assert parse_command(line[:-1]) == command


@given(st.one_of(
    st.builds(Ack, st.integers(0, 65535)),
    st.builds(Nak, st.none() | st.integers(0, 65535),
              st.sampled_from(["BADCMD", "BADARG", "BADBAY", "BUSY"]),
              st.text(alphabet="abcdefghij 0123", max_size=30).map(lambda s: " ".join(s.split()))),
    st.builds(Hello, st.text(alphabet="abc-1 ", max_size=30).map(lambda s: " ".join(s.split()))),
))
def test_reply_round_trip(reply: Ack | Nak | Hello) -> None:
    assert parse_reply(encode_reply(reply)[:-1]) == reply


@pytest.mark.parametrize("line", [
    b"OK", b"OK 1 2", b"OK -1", b"OK 65536", b"OK +5", b"OK 1_0", b"OK \xef\xbc\x91",
    b"ok 1", b"ERR 1 NOPE", b"ERR x BADARG", b"OK 1\xfe", b"", b"   ", b"O" * 200,
])
def test_unreadable_replies_are_none(line: bytes) -> None:
    assert parse_reply(line) is None


@pytest.mark.parametrize("line,code,seq", [
    (b"PING 1", "BADCMD", None),
    (b"LED x 1 red steady 0 0 -", "BADCMD", None),
    (b"LED 1 1 red steady 0 0", "BADCMD", 1),
    (b"LED 2 256 red steady 0 0 -", "BADBAY", 2),
    (b"LED 3 dockk red steady 0 0 -", "BADBAY", 3),
    (b"LED 4 1 blue steady 0 0 -", "BADARG", 4),
    (b"LED 5 1 red blink 0 0 -", "BADARG", 5),
    (b"LED 6 1 red steady 0 0 101", "BADARG", 6),
    (b"LED 7 1 red blink 60001 1 -", "BADARG", 7),
])
def test_bad_commands_get_their_error_code(line: bytes, code: str, seq: int | None) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_command(line)
    assert (info.value.code, info.value.seq) == (code, seq)


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_reply_parser(data: bytes) -> None:
    reply = parse_reply(data)
    assert reply is None or isinstance(reply, Ack | Nak | Hello)


@given(st.binary(max_size=300))
def test_random_bytes_only_raise_protocol_errors_in_the_board(data: bytes) -> None:
    try:
        command = parse_command(data)
    except ProtocolError as exc:
        assert exc.code in ("BADCMD", "BADARG", "BADBAY")
    else:
        assert parse_command(encode_command(command)[:-1]) == command


@given(st.lists(st.binary(max_size=60).filter(lambda b: b"\n" not in b), max_size=8),
       st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=10))
def test_line_buffer_splits_any_chunking(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    buffer, got, pos, i = LineBuffer(), [], 0, 0
    while pos < len(stream):
        size = cuts[i % len(cuts)]
        got.extend(buffer.feed(stream[pos:pos + size]))
        pos, i = pos + size, i + 1
    assert got == [line.rstrip(b"\r") for line in lines]


@given(st.binary(min_size=MAX_LINE + 1, max_size=4 * MAX_LINE).filter(lambda b: b"\n" not in b))
def test_overlong_lines_are_dropped_whole_and_memory_stays_bounded(junk: bytes) -> None:
    buffer = LineBuffer()
    assert buffer.feed(junk) == []
    assert len(buffer._partial) <= MAX_LINE
    assert buffer.feed(b"tail\nOK 7\n") == [b"OK 7"]
    assert buffer.dropped == 1
