"""Ambarella B1 frames over a byte stream (serial/CDC-ACM port), via pyserial.

On USB bulk a reply is one ≤64-byte read; on a stream it is our choice that a reply ends at
its ``#`` (every public reply form does), or at a bare ``ERROR``, which needs no ``#``.
"""

from __future__ import annotations

import termios
import time

import serial

from dockd.devices.recorders.amba_protocol import MAX_REPLY, reply_complete
from dockd.devices.recorders.base import (
    ProtocolError,
    RecorderError,
    RecorderGone,
    RecorderTimeout,
)
from dockd.i18n import _

DEFAULT_TIMEOUT_S = 3.0  # the public host's USB read/write timeout


def open_stream_link(path: str, timeout_s: float | None) -> StreamAmbaLink:
    """Open ``path`` raw; ``RecorderGone`` when the port is not there."""
    timeout = timeout_s or DEFAULT_TIMEOUT_S
    try:
        port = serial.Serial(path, 115200, timeout=0, write_timeout=timeout, exclusive=True)
    except (serial.SerialException, OSError) as exc:
        raise RecorderGone(_("cannot open recorder control port {path}: {exc}").format(
                             path=path, exc=exc)) from exc
    return StreamAmbaLink(port, timeout)


class StreamAmbaLink:
    """Write a frame, read up to and including ``#`` within the timeout."""

    def __init__(self, port: serial.Serial, timeout_s: float) -> None:
        self._port = port
        self._timeout_s = timeout_s

    def exchange(self, frame: bytes) -> bytes:
        """One request/reply."""
        deadline = time.monotonic() + self._timeout_s
        reply = bytearray()
        try:
            self._port.reset_input_buffer()
            self._port.write(frame)
            self._port.flush()
            while not reply_complete(reply):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._port.timeout = remaining
                reply += self._port.read(1)
                if len(reply) > MAX_REPLY:
                    raise ProtocolError(_("reply exceeds {max_reply} bytes without '#'").format(
                                          max_reply=MAX_REPLY))
        except serial.SerialTimeoutException as exc:
            raise RecorderTimeout(_("recorder control port did not take the frame")) from exc
        # pyserial lets termios.error (not an OSError) out of tcflush on a vanished port.
        except (serial.SerialException, OSError, termios.error) as exc:
            raise RecorderGone(_("recorder control port went away: {exc}").format(exc=exc)) from exc
        if not reply:
            raise RecorderTimeout(_("recorder did not answer {value!r} within {timeout_s:g} s").format(
                                    value=frame[:4], timeout_s=self._timeout_s))
        if not reply_complete(reply):
            raise ProtocolError(_("short reply {bytes!r}, then silence").format(bytes=bytes(reply)))
        return bytes(reply)

    def close(self) -> None:
        """Close the port."""
        try:
            self._port.close()
        except (serial.SerialException, OSError) as exc:
            raise RecorderError(_("closing recorder control port failed: {exc}").format(exc=exc)) from exc
