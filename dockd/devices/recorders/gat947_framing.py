"""The simulator's test framing of the GA/T 947 function set over a serial (CDC-ACM) port.

**No recorder speaks this.** No public wire format exists for GA/T 947 over serial; this one
is ours, for the simulator, the demo and the tests (control transport ``test-serial``,
docs/recorder-protocols.md §"Test framing")::

    request : 5A A5 | len u16 LE | cmd u8        | password 6 | payload | crc u16 LE
    response: 5A A5 | len u16 LE | cmd|0x80 u8   | iRet u16 LE | payload | crc u16 LE

``len`` counts the bytes between itself and the CRC; the CRC is CRC-16/CCITT-FALSE over the
``len`` field and those bytes.  Commands 1..8 are the function set's; ``ExtraCommand`` adds a
clock read and a storage query that no public recorder interface has.  Pure codec: both the
host transport and the simulator use it.
"""

from __future__ import annotations

import binascii
import datetime as dt
import enum
import struct
from dataclasses import dataclass

from dockd.devices.recorders.base import ProtocolError
from dockd.devices.recorders.gat947_protocol import PASSWORD_LEN, make_time
from dockd.i18n import _

MAGIC = b"\x5a\xa5"
HEADER_LEN = 4  # magic + len
CRC_LEN = 2
MAX_PAYLOAD = 256
MAX_BODY = 1 + PASSWORD_LEN + MAX_PAYLOAD
REPLY_FLAG = 0x80


class ExtraCommand(enum.IntEnum):
    """The test framing's additions to the function set (no recorder has them)."""

    GET_DEV_TIME = 0x21  # 14 ASCII digits, the format of LibBodycam's BC_GetDevTime
    GET_STORAGE = 0x22  # u8 card present, u64 total, u64 free (LE)


STORAGE_LEN = 17


def encode_time14(wall: dt.datetime) -> bytes:
    """GET_DEV_TIME payload: ``YYYYMMDDhhmmss`` ASCII."""
    return (f"{wall.year:04d}{wall.month:02d}{wall.day:02d}"
            f"{wall.hour:02d}{wall.minute:02d}{wall.second:02d}").encode("ascii")


def decode_time14(data: bytes) -> dt.datetime:
    """Inverse of :func:`encode_time14`; naive local wall time."""
    if len(data) != 14 or not all(0x30 <= b <= 0x39 for b in data):
        raise ProtocolError(_("device time {data!r} is not 14 ASCII digits YYYYMMDDhhmmss").format(
                              data=data))
    t = data.decode("ascii")
    return make_time(int(t[0:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]), int(t[10:12]),
                     int(t[12:14]), data)


def encode_storage(present: bool, total: int, free: int) -> bytes:
    """GET_STORAGE payload: u8 card present, u64 total bytes, u64 free bytes, LE."""
    return struct.pack("<BQQ", 1 if present else 0, total, free)


def decode_storage(data: bytes) -> tuple[bool, int, int]:
    """Inverse of :func:`encode_storage`: (card present, total, free)."""
    if len(data) != STORAGE_LEN:
        raise ProtocolError(_("storage reply is {data_len} bytes; expected {storage_len}").format(
                              data_len=len(data), storage_len=STORAGE_LEN))
    present, total, free = struct.unpack("<BQQ", data)
    if present not in (0, 1) or free > total:
        raise ProtocolError(_("storage reply is inconsistent (present={present}, total={total}, "
                              "free={free})").format(present=present, total=total, free=free))
    return present == 1, int(total), int(free)


@dataclass(frozen=True)
class Request:
    """A host → recorder call."""

    command: int
    password: bytes
    payload: bytes


@dataclass(frozen=True)
class Response:
    """A recorder → host answer: the ``iRet`` and any data."""

    command: int
    result: int
    payload: bytes


def encode_request(command: int, password: bytes, payload: bytes = b"") -> bytes:
    """Frame one call.  ``password`` must already be the 6-byte field."""
    if len(password) != PASSWORD_LEN:
        raise ValueError(f"password field must be {PASSWORD_LEN} bytes")
    return _frame(bytes([command]) + password + payload)


def encode_response(command: int, result: int, payload: bytes = b"") -> bytes:
    """Frame one answer (used by the simulator)."""
    return _frame(bytes([command | REPLY_FLAG]) + struct.pack("<H", result) + payload)


def body_length(header: bytes) -> int:
    """Validate a 4-byte header and return how many body bytes (plus the CRC) follow."""
    if len(header) != HEADER_LEN:
        raise ProtocolError(_("frame header is {header_len} bytes; expected {header_len2}").format(
                              header_len=len(header), header_len2=HEADER_LEN))
    if header[:2] != MAGIC:
        raise ProtocolError(_("frame does not start with 5A A5 (got {hex})").format(
                              hex=header[:2].hex(' ')))
    length: int = struct.unpack("<H", header[2:])[0]
    if not 1 <= length <= MAX_BODY:
        raise ProtocolError(_("frame length {length} is outside 1..{max_body}").format(
                              length=length, max_body=MAX_BODY))
    return length


def decode_response(frame: bytes) -> Response:
    """Parse one complete response frame, checking magic, length and CRC."""
    body = _unframe(frame)
    if len(body) < 3 or not body[0] & REPLY_FLAG:
        raise ProtocolError(_("response body {hex} is not a reply").format(hex=body[:8].hex(' ')))
    (result,) = struct.unpack("<H", body[1:3])
    return Response(body[0] & ~REPLY_FLAG & 0xFF, result, body[3:])


def decode_request(frame: bytes) -> Request:
    """Parse one complete request frame (used by the simulator)."""
    body = _unframe(frame)
    if len(body) < 1 + PASSWORD_LEN or body[0] & REPLY_FLAG:
        raise ProtocolError(_("request body {hex} is not a call").format(hex=body[:8].hex(' ')))
    return Request(body[0], body[1:1 + PASSWORD_LEN], body[1 + PASSWORD_LEN:])


class FrameSplitter:
    """Cut a byte stream into candidate frames, resynchronising on the magic after garbage."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every complete frame now available (unchecked CRC)."""
        self._buffer += data
        frames: list[bytes] = []
        while True:
            start = self._buffer.find(MAGIC)
            if start < 0:
                # Keep a trailing 0x5A: it may be the first half of the next magic.
                del self._buffer[:max(0, len(self._buffer) - 1)]
                return frames
            del self._buffer[:start]
            if len(self._buffer) < HEADER_LEN:
                return frames
            try:
                length = body_length(bytes(self._buffer[:HEADER_LEN]))
            except ProtocolError:
                del self._buffer[:1]
                continue
            end = HEADER_LEN + length + CRC_LEN
            if len(self._buffer) < end:
                return frames
            frames.append(bytes(self._buffer[:end]))
            del self._buffer[:end]


def _frame(body: bytes) -> bytes:
    if len(body) > MAX_BODY:
        raise ValueError(f"frame body of {len(body)} bytes exceeds {MAX_BODY}")
    covered = struct.pack("<H", len(body)) + body
    return MAGIC + covered + struct.pack("<H", _crc(covered))


def _unframe(frame: bytes) -> bytes:
    length = body_length(frame[:HEADER_LEN])
    if len(frame) != HEADER_LEN + length + CRC_LEN:
        raise ProtocolError(_("frame is {frame_len} bytes; its header announces {value}").format(
                              frame_len=len(frame), value=HEADER_LEN + length + CRC_LEN))
    covered = frame[2:HEADER_LEN + length]
    (crc,) = struct.unpack("<H", frame[HEADER_LEN + length:])
    if crc != _crc(covered):
        raise ProtocolError(_("frame checksum does not match (line noise or garbage)"))
    return covered[2:]


def _crc(data: bytes) -> int:
    # binascii.crc_hqx with initial 0xFFFF is CRC-16/CCITT-FALSE.
    return binascii.crc_hqx(data, 0xFFFF)
