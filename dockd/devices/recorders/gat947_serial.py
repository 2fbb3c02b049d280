"""The simulator's test framing over a serial (CDC-ACM) port, via pyserial: control transport
``test-serial``. **No recorder speaks it** (see ``gat947_framing``); it exists so that the
simulator, the demo and the tests can run a GA/T 947 session, with a clock read and a storage
query, over a pseudo-terminal."""

from __future__ import annotations

import datetime as dt
import enum
import logging
import termios
import time

import serial

from dockd.clock import Clock
from dockd.devices.recorders import gat947_framing as framing
from dockd.devices.recorders.base import (
    Capabilities,
    ClockReading,
    NoSdCard,
    ProtocolError,
    RecorderError,
    RecorderGone,
    RecorderTimeout,
    StorageInfo,
    SwitchOutcome,
)
from dockd.devices.recorders.gat947_framing import (
    CRC_LEN,
    HEADER_LEN,
    ExtraCommand,
    body_length,
    decode_response,
    encode_request,
)
from dockd.devices.recorders.gat947_protocol import Command, ZfyLayout, check_result
from dockd.devices.recorders.gat947_session import Gat947Session
from dockd.devices.recorders.wallclock import from_wall
from dockd.i18n import _

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 2.0  # same as the DV16 SCSI read timeout; our choice for serial
BAUDRATE = 115200  # CDC-ACM ignores it; a real UART bridge would not


def open_serial_link(path: str, timeout_s: float | None) -> SerialGat947Link:
    """Open ``path`` raw 8N1 and wrap it; ``RecorderGone`` when the port is not there."""
    try:
        port = serial.Serial(path, BAUDRATE, timeout=0, write_timeout=timeout_s or
                             DEFAULT_TIMEOUT_S, exclusive=True)
    except (serial.SerialException, OSError) as exc:
        raise RecorderGone(_("cannot open recorder control port {path}: {exc}").format(
                             path=path, exc=exc)) from exc
    return SerialGat947Link(port, timeout_s or DEFAULT_TIMEOUT_S)


class SerialGat947Link:
    """One request, one response, each bounded by a deadline."""

    authenticates = True
    zfy_layout: ZfyLayout | None = None  # the recorder answers in either layout

    def __init__(self, port: serial.Serial, timeout_s: float) -> None:
        self._port = port
        self._timeout_s = timeout_s

    def call(self, command: enum.IntEnum, password: bytes,
             payload: bytes = b"") -> tuple[int, bytes]:
        """Send one framed call and read its framed reply."""
        deadline = time.monotonic() + self._timeout_s
        try:
            # Leftovers of an earlier garbled or late reply must not be taken for this one.
            self._port.reset_input_buffer()
            self._port.write(encode_request(command, password, payload))
            self._port.flush()
            header = self._read_exact(HEADER_LEN, deadline, command, 0)
            length = body_length(header)
            rest = self._read_exact(length + CRC_LEN, deadline, command, HEADER_LEN)
        except serial.SerialTimeoutException as exc:
            raise RecorderTimeout(_("recorder control port did not take {name}").format(
                                    name=command.name)) from exc
        # pyserial lets termios.error (not an OSError) out of tcflush on a vanished port.
        except (serial.SerialException, OSError, termios.error) as exc:
            raise RecorderGone(_("recorder control port went away during {name}: {exc}").format(
                                 name=command.name, exc=exc)) from exc
        response = decode_response(header + rest)
        if response.command != command:
            raise ProtocolError(_("recorder answered command {command:#x} to {name}").format(
                                  command=response.command, name=command.name))
        return response.result, response.payload

    def switch(self, password: bytes) -> SwitchOutcome:
        """SetMSDC: a refusing iRet raises (8: ``NoSdCard``); a lost reply is unacknowledged."""
        try:
            code, _body = self.call(Command.SET_MSDC, password)
        except (RecorderTimeout, RecorderGone, ProtocolError) as exc:
            return SwitchOutcome(False, f"SetMSDC sent, no usable reply: {exc}")
        check_result(Command.SET_MSDC, code)
        return SwitchOutcome(True, f"SetMSDC answered iRet {code}")

    def close(self) -> None:
        """Close the port (idempotent in pyserial)."""
        try:
            self._port.close()
        except (serial.SerialException, OSError) as exc:
            raise RecorderError(_("closing recorder control port failed: {exc}").format(exc=exc)) from exc

    def _read_exact(self, size: int, deadline: float, command: enum.IntEnum, already: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._port.timeout = remaining
            chunk = self._port.read(size - len(data))
            data += chunk
        if len(data) < size:
            if already == 0 and not data:
                raise RecorderTimeout(_("recorder did not answer {name} within {timeout_s:g} s").format(
                                        name=command.name, timeout_s=self._timeout_s))
            raise ProtocolError(_("short reply to {name}: {value} bytes, then silence").format(
                                  name=command.name, value=already + len(data)))
        return bytes(data)


class SimFramingSession(Gat947Session):
    """A GA/T 947 session over the test framing, which adds what the function set lacks: the
    recorder's clock (``GET_DEV_TIME``) and its card (``GET_STORAGE``)."""

    def __init__(self, link: SerialGat947Link, password: bytes | None, clock: Clock,
                 zone: dt.tzinfo) -> None:
        log.warning("control transport test-serial: the simulator's test framing, which no "
                    "recorder speaks; for tests and the demo only")
        self._test_link = link
        super().__init__(link, password, clock, zone)

    @property
    def capabilities(self) -> Capabilities:
        """Everything: battery, clock read and set, storage (the recorder checks the password)."""
        return Capabilities(battery=True, read_clock=True, set_clock=True, storage=True,
                            authenticated=True)

    def read_clock(self) -> ClockReading:
        """GET_DEV_TIME, with the dock's time at the middle of the exchange."""
        before = self._clock.now()
        raw = self._extra(ExtraCommand.GET_DEV_TIME)
        after = self._clock.now()
        # The recorder read its clock somewhere inside the exchange; the midpoint halves the error.
        return ClockReading(from_wall(framing.decode_time14(raw), self._zone),
                            before + (after - before) / 2)

    def storage(self) -> StorageInfo:
        """GET_STORAGE; ``NoSdCard`` when the card is missing."""
        present, total, free = framing.decode_storage(self._extra(ExtraCommand.GET_STORAGE))
        if not present:
            raise NoSdCard(_("recorder reports no SD card"))
        return StorageInfo(total_bytes=total, free_bytes=free)

    def _extra(self, command: ExtraCommand) -> bytes:
        if self._closed:
            raise ProtocolError(_("session is closed; cannot send {name}").format(name=command.name))
        code, data = self._test_link.call(command, self._password)
        check_result(command, code)
        return data
