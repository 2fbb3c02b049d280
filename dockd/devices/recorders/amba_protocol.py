"""Ambarella "simple class" ASCII frames (USB 4255:0001, dialect B1) and the A9 control packets (B2).

Pure codec.  Host frames are ``@Cmd;LEN;PAYLOAD;#``; replies are one read of at most 64 bytes.
The only reply forms public code shows are "contains ``Ver;OK``", ``@Gdv;<n>;<ID>;#`` and
"contains ``ERROR``" (docs/recorder-protocols.md §Ambarella).  The public host decodes a reply as
ASCII, trims it and looks only for those; it never checks the replies to ``@Sdt``, ``@Stm`` and
``@ATH``.  Replies are parsed as tolerantly: NUL padding and whatever follows the first ``#`` are
dropped, non-ASCII bytes become U+FFFD, an unframed reply (a bare ``ERROR``) is a reply.  Only
the device ID, which becomes the recorder's serial and volume label, is checked strictly.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from dockd.devices.recorders.base import LoginFailed, ProtocolError
from dockd.errors import ConfigError
from dockd.i18n import _

MAX_REPLY = 64
DEFAULT_PASSWORD = b"12345678"  # the value public hosts send; [inferred] a factory default
LOGIN_PAYLOAD = "00000000"
_CMD_RE = re.compile(r"[A-Za-z]{3}")
_ID_RE = re.compile(r"[A-Za-z0-9_\-]{1,32}")


@dataclass(frozen=True)
class AmbaReply:
    """A parsed reply: command name and the ``;``-separated fields after it, ``#`` dropped."""

    command: str
    fields: tuple[str, ...]
    text: str

    @property
    def is_error(self) -> bool:
        """Public hosts treat any reply containing ``ERROR`` as a refusal."""
        return "ERROR" in self.text


def encode_frame(command: str, payload: str, declared_len: int | None = None) -> bytes:
    """``@Cmd;LEN;PAYLOAD;#``; ``declared_len`` overrides LEN (``@Stm`` needs 6 for 8 chars)."""
    if not _CMD_RE.fullmatch(command):
        raise ValueError(f"command {command!r} is not three letters")
    if any(ch in payload for ch in ";#@") or not payload.isascii():
        raise ValueError(f"payload {payload!r} must be ASCII without ';', '#' or '@'")
    length = len(payload) if declared_len is None else declared_len
    return f"@{command};{length};{payload};#".encode("ascii")


def password_text(password: bytes | None) -> str:
    """The password field: ``None`` means the public default ``12345678``."""
    raw = DEFAULT_PASSWORD if password is None else password
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(_("Ambarella recorder password must be ASCII")) from None
    if not text or any(ch in text for ch in ";#@") or not text.isprintable():
        raise ConfigError(_("Ambarella recorder password must be printable ASCII without ';', '#' or '@'"))
    return text


def login_frame() -> bytes:
    """``@Ver;8;00000000;#``: the handshake public hosts send after claiming the interface."""
    return encode_frame("Ver", LOGIN_PAYLOAD)


def device_id_frame(password: str) -> bytes:
    """``@Gdv;8;<password>;#``."""
    return encode_frame("Gdv", password)


def set_date_frame(wall: dt.datetime) -> bytes:
    """``@Sdt;8;yyyyMMdd;#`` (local date)."""
    return encode_frame("Sdt", f"{wall.year:04d}{wall.month:02d}{wall.day:02d}")


def set_time_frame(wall: dt.datetime) -> bytes:
    """``@Stm;6;HHmmss00;#``: eight characters with LEN 6, exactly as public hosts send it."""
    return encode_frame("Stm", f"{wall.hour:02d}{wall.minute:02d}{wall.second:02d}00",
                        declared_len=6)


def mass_storage_frame(password: str) -> bytes:
    """``@ATH;8;<password>;#``."""
    return encode_frame("ATH", password)


def parse_reply(raw: bytes) -> AmbaReply:
    """Decode one reply (≤ 64 bytes); framed ``@Cmd;…;#`` replies get their fields split."""
    if len(raw) > MAX_REPLY:
        raise ProtocolError(_("reply of {raw_len} bytes exceeds the {max_reply}-byte read").format(
                              raw_len=len(raw), max_reply=MAX_REPLY))
    end = raw.find(b"#")
    if end >= 0:
        raw = raw[:end + 1]  # NUL padding, CR LF or junk after the frame
    text = raw.replace(b"\0", b"").decode("ascii", "replace").strip()
    if not text:
        raise ProtocolError(_("empty reply"))
    if not (text.startswith("@") and text.endswith("#")):
        return AmbaReply("", (), text)
    parts = text[1:-1].split(";")
    if parts and parts[-1] == "":
        parts.pop()
    if not parts or not _CMD_RE.fullmatch(parts[0]):
        return AmbaReply("", (), text)
    return AmbaReply(parts[0], tuple(parts[1:]), text)


def reply_complete(partial: bytes | bytearray) -> bool:
    """Whether a reply read from a byte stream is complete: it ends at ``#``, and a bare
    ``ERROR`` (which public hosts take as a refusal) needs nothing after it."""
    return b"#" in partial or b"ERROR" in partial


def check_login(reply: AmbaReply) -> None:
    """``LoginFailed`` unless the reply contains ``Ver;OK`` (the public host's test)."""
    if "Ver;OK" in reply.text and not reply.is_error:
        return
    raise LoginFailed(_("recorder refused the login handshake (replied {text!r})").format(text=reply.text))


def parse_device_id(reply: AmbaReply) -> str:
    """The ID from ``@Gdv;<n>;<ID>;#``; ``LoginFailed`` when the recorder answers ERROR."""
    if reply.is_error:
        raise LoginFailed(_("recorder refused the password with {text!r} (or is already in mass-storage "
                            "mode; unplug and re-dock it)").format(text=reply.text))
    # The public host's test is "starts with @Gdv"; the ID is the third field.
    if reply.command != "Gdv" or len(reply.fields) < 2:
        raise ProtocolError(_("reply {text!r} is not @Gdv;<n>;<ID>;#").format(text=reply.text))
    device_id = reply.fields[1]
    if not _ID_RE.fullmatch(device_id):
        raise ProtocolError(_("device ID {device_id!r} is not 1..32 letters, digits, '_' or '-'").format(
                              device_id=device_id))
    return device_id


def check_ack(reply: AmbaReply, command: str) -> None:
    """``ProtocolError`` for a framed reply to another command; the caller maps ``is_error``."""
    if reply.command and reply.command != command:
        raise ProtocolError(_("recorder answered {command!r} to {command2!r}").format(
                              command=reply.command, command2=command))


# --- dialect B2: "A9" 64-byte vendor control transfers -----------------------------------

A9_PACKET_LEN = 64
A9_STATUS_LEN = 10
A9_REQUEST_TYPE_OUT = 0x40
A9_REQUEST_TYPE_IN = 0xC0
A9_REQUEST_LOGIN = 0x55
A9_REQUEST_DISK = 0x50
A9_REQUEST_STATUS = 0x55
A9_VALUE = 0x0080
A9_CMD_LOGIN = 0x12
A9_CMD_DISK = 0x23


def a9_packet(command: int, data: bytes = b"") -> bytes:
    """``A1 cmd 00 cmd`` + data, zero-padded to 64 bytes."""
    body = bytes([0xA1, command, 0x00, command]) + data
    if len(body) > A9_PACKET_LEN:
        raise ConfigError(_("A9 packet data of {data_len} bytes does not fit 64 bytes").format(
                            data_len=len(data)))
    return body.ljust(A9_PACKET_LEN, b"\0")


def a9_login_ok(status: bytes) -> bool:
    """Login status: byte[2] == 1 means the password was accepted."""
    if len(status) < 3:
        raise ProtocolError(_("A9 status is {status_len} bytes; need at least 3").format(
                              status_len=len(status)))
    return status[2] == 1
