"""GA/T 947 function set: result codes, ZFY_INFO layouts, ID code, battery, resolution, time.

Pure codec, no I/O.  The facts come from public vendor DLL headers and the JL "DV16" DLL (see
docs/recorder-protocols.md §GA/T 947); nothing here is ours but the names.  Every decoder raises
only ``ProtocolError`` on bad bytes.

Text is decoded as tolerantly as the stations that wrote it (CP936, user-defined characters
included, see ``cp936``): a text field that still cannot be decoded is ``None`` with a warning,
never a failed identify.  Only the serial, the dock's key for the recorder, stays strict.
"""

from __future__ import annotations

import datetime as dt
import enum
import struct
import unicodedata
from dataclasses import dataclass

from dockd.devices.recorders import cp936
from dockd.devices.recorders.base import (
    ClockSetFailed,
    LoginFailed,
    NoSdCard,
    ProtocolError,
    RecorderError,
)
from dockd.errors import ConfigError, UsageError
from dockd.i18n import _

PASSWORD_LEN = 6
ID_CODE_WIRE_LEN = 6


class ResultCode(enum.IntEnum):
    """``iRet`` values: the shared enum plus the two USBJL leaks and the bare failure 0."""

    FAILED = 0
    CONNECT_SUCCESS = 1
    CONNECT_FAILED = 2
    CHECK_PWD_SUCCESS = 3
    CHECK_PWD_FAILED = 4
    SET_SYSTEMTIME_SUCCESS = 5
    SET_SYSTEMTIME_FAILED = 6
    MSDC_SUCCESS = 7
    MSDC_FAILED = 8
    SD_STATUS_PENDING = 101
    ID_CODE_PENDING = 102


class Command(enum.IntEnum):
    """The eight functions, numbered as the public DV16 sub-commands."""

    INIT = 1
    GET_ID_CODE = 2
    GET_ZFY_INFO = 3
    WRITE_ZFY_INFO = 4
    SYNC_DEV_TIME = 5
    SET_MSDC = 6
    READ_RESOLUTION = 7
    READ_BATTERY = 8


SUCCESS_CODE: dict[int, ResultCode] = {
    Command.SYNC_DEV_TIME: ResultCode.SET_SYSTEMTIME_SUCCESS,
    Command.SET_MSDC: ResultCode.MSDC_SUCCESS,
}


def success_code(command: enum.IntEnum) -> ResultCode:
    """The ``iRet`` that means success for ``command`` (5 for time, 7 for MSDC, else 1)."""
    return SUCCESS_CODE.get(command, ResultCode.CONNECT_SUCCESS)


def check_result(command: enum.IntEnum, code: int) -> None:
    """Raise the error an ``iRet`` of ``code`` means for ``command`` (a function, or a command of
    the simulator's test framing); return on success."""
    if code == success_code(command):
        return
    name = command.name
    if code == ResultCode.CHECK_PWD_FAILED:
        raise LoginFailed(_("recorder refused the admin password ({name} answered iRet 4, "
                            "CHECK_PWD_FAILED); check the password enrolled for this recorder").format(
                            name=name))
    if code == ResultCode.SET_SYSTEMTIME_FAILED:
        raise ClockSetFailed(_("recorder refused the new time (iRet 6, SET_SYSTEMTIME_FAILED)"))
    if code == ResultCode.MSDC_FAILED:
        raise NoSdCard(_("recorder cannot enter mass-storage mode: no SD card (iRet 8, MSDC_FAILED)"))
    if code == ResultCode.SD_STATUS_PENDING:
        raise RecorderError(_("recorder stopped while reading its SD-card status (iRet 101)"))
    if code == ResultCode.ID_CODE_PENDING:
        raise RecorderError(_("recorder stopped while reading its ID code (iRet 102)"))
    if code == ResultCode.CONNECT_FAILED:
        raise RecorderError(_("recorder reports the link failed during {name} (iRet 2)").format(name=name))
    if code == ResultCode.FAILED:
        raise RecorderError(_("recorder reports {name} failed (iRet 0)").format(name=name))
    raise ProtocolError(_("recorder answered {name} with iRet {code}, which that call never returns").format(
                          name=name, code=code))


def encode_password(password: bytes | None) -> bytes:
    """The 6-byte admin password field: NUL-padded, empty when ``None``."""
    raw = password or b""
    if len(raw) > PASSWORD_LEN:
        raise ConfigError(_("recorder admin password is {raw_len} bytes; GA/T 947 recorders take at most "
                            "{password_len}").format(raw_len=len(raw), password_len=PASSWORD_LEN))
    return raw.ljust(PASSWORD_LEN, b"\0")


class ZfyLayout(enum.IntEnum):
    """The two ZFY_INFO conventions, by total size."""

    PACKED_89 = 89  # USBJL, Android E12: text may fill the whole field
    TERMINATED_94 = 94  # LibBodycam, zfyMC, Eylog: one byte more per field for the NUL

    @property
    def sizes(self) -> tuple[int, int, int, int, int]:
        """Field sizes: serial, officer number, officer name, unit number, unit name."""
        base = (7, 6, 32, 12, 32)
        extra = 1 if self is ZfyLayout.TERMINATED_94 else 0
        s, o, n, u, un = (size + extra for size in base)
        return s, o, n, u, un

    @property
    def max_text(self) -> tuple[int, int, int, int, int]:
        """Longest text (bytes) each field may hold."""
        if self is ZfyLayout.PACKED_89:
            return self.sizes
        s, o, n, u, un = (size - 1 for size in self.sizes)
        return s, o, n, u, un


@dataclass(frozen=True)
class ZfyInfo:
    """执法记录仪 info block as written: serial, officer number and name, unit number and name."""

    serial: str
    officer_id: str
    officer_name: str = ""
    unit_id: str = ""
    unit_name: str = ""


@dataclass(frozen=True)
class ZfyText:
    """One text field as read: the text (``None`` when it cannot be decoded) and its bytes up to
    the first NUL."""

    text: str | None
    raw: bytes


@dataclass(frozen=True)
class ZfyReading:
    """A ZFY_INFO block as read from a recorder, with what decoding had to tolerate."""

    serial: str
    officer_id: ZfyText
    officer_name: ZfyText
    unit_id: ZfyText
    unit_name: ZfyText
    layout: ZfyLayout
    warnings: tuple[str, ...] = ()

    @property
    def texts(self) -> dict[str, ZfyText]:
        """The text fields by identity name (``officer_id`` … ``unit_name``)."""
        return {"officer_id": self.officer_id, "officer_name": self.officer_name,
                "unit_id": self.unit_id, "unit_name": self.unit_name}

    def to_info(self) -> ZfyInfo:
        """The block as a writable ``ZfyInfo`` (undecodable text becomes empty)."""
        return ZfyInfo(self.serial, self.officer_id.text or "", self.officer_name.text or "",
                       self.unit_id.text or "", self.unit_name.text or "")


@dataclass(frozen=True)
class Resolution:
    """Recording resolution in pixels."""

    width: int
    height: int


_FIELD_NAMES = ("serial", "officer number", "officer name", "unit number", "unit name")


def encode_zfy_info(info: ZfyInfo, layout: ZfyLayout) -> bytes:
    """CP936, NUL-padded ZFY_INFO; ``UsageError`` when a field does not fit or is not CP936."""
    values = (info.serial, info.officer_id, info.officer_name, info.unit_id, info.unit_name)
    out = bytearray()
    for name, value, size, limit in zip(_FIELD_NAMES, values, layout.sizes, layout.max_text,
                                        strict=True):
        try:
            raw = cp936.encode(value)
        except ValueError as exc:
            raise UsageError(_("{name} {value!r} cannot be written in CP936/GBK: {exc}").format(
                               name=name, value=value, exc=exc)) from exc
        if len(raw) > limit:
            raise UsageError(_("{name} {value!r} is {raw_len} bytes in CP936/GBK; this recorder holds at "
                               "most {limit}").format(
                               name=name, value=value, raw_len=len(raw), limit=limit))
        if b"\0" in raw:
            raise UsageError(_("{name} {value!r} contains a NUL character").format(name=name, value=value))
        out += raw.ljust(size, b"\0")
    return bytes(out)


def decode_zfy_info(data: bytes) -> ZfyReading:
    """Parse an 89- or 94-byte ZFY_INFO (layout chosen by length).

    ``ProtocolError`` only for a block of the wrong size or an unusable serial; any other
    field that cannot be decoded is ``None`` with a warning."""
    try:
        layout = ZfyLayout(len(data))
    except ValueError:
        raise ProtocolError(_("ZFY_INFO is {data_len} bytes; expected 89 or 94").format(
                              data_len=len(data))) from None
    raws: list[bytes] = []
    offset = 0
    for size in layout.sizes:
        # C strings: the text ends at the first NUL; firmware may leave junk after it.
        raws.append(data[offset:offset + size].split(b"\0", 1)[0])
        offset += size
    serial = _decode_serial(raws[0])
    warnings: list[str] = []
    texts = [_decode_text(raw, name, warnings) for raw, name in zip(raws[1:], _FIELD_NAMES[1:],
                                                                       strict=True)]
    officer_id, officer_name, unit_id, unit_name = texts
    return ZfyReading(serial, officer_id, officer_name, unit_id, unit_name, layout,
                      tuple(warnings))


def decode_id_code(data: bytes) -> str:
    """The manufacturer/model ID code: printable ASCII up to the first NUL, 1..8 characters."""
    if not 1 <= len(data) <= 32:
        raise ProtocolError(_("ID code reply is {data_len} bytes; expected 6").format(data_len=len(data)))
    text = data.split(b"\0", 1)[0]
    if not 1 <= len(text) <= 8 or not all(0x21 <= b <= 0x7E for b in text):
        raise ProtocolError(_("ID code {text!r} is not 1..8 printable ASCII characters").format(text=text))
    return text.decode("ascii")


def encode_time7(wall: dt.datetime) -> bytes:
    """SYNC_DEV_TIME payload: u16 year LE, then month, day, hour, minute, second (local)."""
    return struct.pack("<HBBBBB", wall.year, wall.month, wall.day, wall.hour, wall.minute,
                       wall.second)


def decode_time7(data: bytes) -> dt.datetime:
    """Inverse of :func:`encode_time7`; naive local wall time."""
    if len(data) != 7:
        raise ProtocolError(_("packed time is {data_len} bytes; expected 7").format(data_len=len(data)))
    year, month, day, hour, minute, second = struct.unpack("<HBBBBB", data)
    return make_time(year, month, day, hour, minute, second, data)


def encode_battery(percent: int) -> bytes:
    """READ_BATTERY payload: int32 LE percent."""
    return struct.pack("<i", percent)


def decode_battery(data: bytes) -> int:
    """Battery percent 0..100 from an int32 LE."""
    if len(data) != 4:
        raise ProtocolError(_("battery reply is {data_len} bytes; expected 4").format(data_len=len(data)))
    (value,) = struct.unpack("<i", data)
    if not 0 <= value <= 100:
        raise ProtocolError(_("battery reply {value}% is outside 0..100").format(value=value))
    return int(value)


def encode_resolution(res: Resolution) -> bytes:
    """READ_RESOLUTION payload: int32 width, int32 height, LE."""
    return struct.pack("<ii", res.width, res.height)


def decode_resolution(data: bytes) -> Resolution:
    """Inverse of :func:`encode_resolution`, with a sanity range."""
    if len(data) != 8:
        raise ProtocolError(_("resolution reply is {data_len} bytes; expected 8").format(
                              data_len=len(data)))
    width, height = struct.unpack("<ii", data)
    if not (0 < width <= 16384 and 0 < height <= 16384):
        raise ProtocolError(_("resolution {width}x{height} is not plausible").format(
                              width=width, height=height))
    return Resolution(width, height)


def _decode_serial(raw: bytes) -> str:
    # The serial files every recording: no guessing, no replacement characters.
    try:
        value = cp936.decode(raw)
    except ValueError as exc:
        raise ProtocolError(_("ZFY_INFO serial {raw!r} is not valid CP936/GBK ({exc})").format(
                              raw=raw, exc=exc)) from None
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") for ch in value):
        raise ProtocolError(_("ZFY_INFO serial {value!r} contains control or private-use characters").format(
                              value=value))
    return value


def _decode_text(raw: bytes, name: str, warnings: list[str]) -> ZfyText:
    try:
        value = cp936.decode(raw)
    except ValueError as exc:
        warnings.append(f"ZFY_INFO {name} {raw.hex(' ')} left undecoded: {exc}")
        return ZfyText(None, raw)
    # Private-use characters are user-defined CP936 characters (生僻字 in names): kept.
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in value):
        warnings.append(f"ZFY_INFO {name} {raw.hex(' ')} left undecoded: control characters")
        return ZfyText(None, raw)
    return ZfyText(value, raw)


def make_time(year: int, month: int, day: int, hour: int, minute: int, second: int,
              raw: bytes) -> dt.datetime:
    """A naive wall time from a recorder's fields; ``ProtocolError`` naming ``raw`` when they
    are no date and time."""
    try:
        return dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise ProtocolError(_("recorder time {raw!r} is not a valid date and time").format(
                              raw=raw)) from None
