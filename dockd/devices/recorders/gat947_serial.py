"""GA/T 947 over a serial (CDC-ACM) port with our framing, via pyserial."""

from __future__ import annotations

import termios
import time

import serial

from dockd.devices.recorders.base import (
    ProtocolError,
    RecorderError,
    RecorderGone,
    RecorderTimeout,
    SwitchOutcome,
)
from dockd.devices.recorders.gat947_framing import (
    CRC_LEN,
    HEADER_LEN,
    body_length,
    decode_response,
    encode_request,
)
from dockd.devices.recorders.gat947_protocol import Command, ZfyLayout, check_result

DEFAULT_TIMEOUT_S = 2.0  # same as the DV16 SCSI read timeout; our choice for serial
BAUDRATE = 115200  # CDC-ACM ignores it; a real UART bridge would not


def open_serial_link(path: str, timeout_s: float | None) -> SerialGat947Link:
    """Open ``path`` raw 8N1 and wrap it; ``RecorderGone`` when the port is not there."""
    try:
        port = serial.Serial(path, BAUDRATE, timeout=0, write_timeout=timeout_s or
                             DEFAULT_TIMEOUT_S, exclusive=True)
    except (serial.SerialException, OSError) as exc:
        raise RecorderGone(f"cannot open recorder control port {path}: {exc}") from exc
    return SerialGat947Link(port, timeout_s or DEFAULT_TIMEOUT_S)


class SerialGat947Link:
    """One request, one response, each bounded by a deadline."""

    authenticates = True
    zfy_layout: ZfyLayout | None = None  # the recorder answers in either layout

    def __init__(self, port: serial.Serial, timeout_s: float) -> None:
        self._port = port
        self._timeout_s = timeout_s

    def supports(self, command: Command) -> bool:
        """Our serial protocol carries every function, including clock read and storage."""
        return True

    def call(self, command: Command, password: bytes, payload: bytes = b"") -> tuple[int, bytes]:
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
            raise RecorderTimeout(f"recorder control port did not take {command.name}") from exc
        # pyserial lets termios.error (not an OSError) out of tcflush on a vanished port.
        except (serial.SerialException, OSError, termios.error) as exc:
            raise RecorderGone(f"recorder control port went away during {command.name}: "
                               f"{exc}") from exc
        response = decode_response(header + rest)
        if response.command != command:
            raise ProtocolError(f"recorder answered command {response.command:#x} to "
                                f"{command.name}")
        return response.result, response.payload

    def switch(self, password: bytes) -> SwitchOutcome:
        """SetMSDC: a refusing iRet raises (8: ``NoSdCard``); a lost reply is unacknowledged."""
        try:
            code, _ = self.call(Command.SET_MSDC, password)
        except (RecorderTimeout, RecorderGone, ProtocolError) as exc:
            return SwitchOutcome(False, f"SetMSDC sent, no usable reply: {exc}")
        check_result(Command.SET_MSDC, code)
        return SwitchOutcome(True, f"SetMSDC answered iRet {code}")

    def close(self) -> None:
        """Close the port (idempotent in pyserial)."""
        try:
            self._port.close()
        except (serial.SerialException, OSError) as exc:
            raise RecorderError(f"closing recorder control port failed: {exc}") from exc

    def _read_exact(self, size: int, deadline: float, command: Command, already: int) -> bytes:
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
                raise RecorderTimeout(f"recorder did not answer {command.name} within "
                                      f"{self._timeout_s:g} s")
            raise ProtocolError(f"short reply to {command.name}: {already + len(data)} bytes, "
                                f"then silence")
        return bytes(data)
