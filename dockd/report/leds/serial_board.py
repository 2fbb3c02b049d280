"""The bay controller board on a serial port, speaking the line protocol of protocol.py.

Every command waits for ``OK <seq>``; a missing, garbled or ``BUSY`` answer is retried
(the same command with the same seq: setting an LED twice is harmless, and a late ``OK``
of an earlier attempt then counts, while a stale ``OK`` of an older seq is ignored).
A board that stops answering, disappears (unplugged: the read or write fails) or says
``HELLO`` (it restarted) is reopened every ``reconnect_interval`` and is sent the current
pattern of every target again. Nothing here raises into the caller for a board fault.
"""

from __future__ import annotations

import enum
import logging
import select
from collections import deque
from pathlib import Path
from typing import Any

import serial

from dockd.clock import Clock, SystemClock
from dockd.config.leds import DOCK, LedTarget, SerialBoardSpec
from dockd.report.leds.driver import FaultCallback, FaultLatch
from dockd.report.leds.pattern import LedPattern
from dockd.report.leds.protocol import (
    SEQ_MODULO,
    Ack,
    Command,
    Hello,
    LineBuffer,
    Nak,
    encode_command,
    parse_reply,
)

log = logging.getLogger(__name__)

_BOARD = "board"  # fault key of the link itself


class _Outcome(enum.Enum):
    ACKED = "acked"
    REFUSED = "refused"
    RETRY = "retry"
    LOST = "lost"


class SerialBoardDriver:
    """Drives one bay controller board; only the LedController's worker calls it."""

    name = "serial"

    def __init__(self, spec: SerialBoardSpec, on_fault: FaultCallback,
                 on_recover: FaultCallback | None = None, clock: Clock | None = None) -> None:
        if spec.port is None:
            raise ValueError("SerialBoardSpec.port is required")
        self.port_path: Path = spec.port
        self.spec = spec
        self._clock = clock or SystemClock()
        self._latch = FaultLatch(on_fault, on_recover)
        self._port: Any = None  # serial.Serial while open
        self._lines = LineBuffer()
        self._inbox: deque[Ack | Nak] = deque()
        self._seq = 0
        self._desired: dict[LedTarget, LedPattern] = {}
        self._absent: set[LedTarget] = set()
        self._resync_needed = True
        self._next_connect = 0.0
        self.stats = {"sent": 0, "retries": 0, "stale_acks": 0, "garbled": 0, "reconnects": 0}

    def has_target(self, target: LedTarget) -> bool:
        """Every bay is assumed fitted; the dock LED only until the board says BADBAY."""
        return target not in self._absent

    def show(self, target: LedTarget, pattern: LedPattern) -> bool:
        """Send ``pattern`` to ``target`` and wait for its acknowledgement."""
        self._desired[target] = pattern
        if target in self._absent or not self._ensure_open():
            return False
        if self._resync_needed:
            return target not in self._resync()
        ok = self._send(target, pattern)
        if self._resync_needed and self._port is not None:
            ok = target not in self._resync() and ok  # the board said HELLO meanwhile
        return ok

    def maintain(self) -> None:
        """Reconnect when due; notice an unplug or a restarted board while idle."""
        if self._port is None:
            if self._ensure_open() and self._resync_needed:
                self._resync()
            return
        self._drain(timeout=0.0)
        if self._port is not None and self._resync_needed:
            self._resync()

    def close(self) -> None:
        self._close_port()

    def failing(self) -> dict[str, str]:
        """Fault keys currently failing, with the message of the outage."""
        return self._latch.failing()

    @property
    def connected(self) -> bool:
        return self._port is not None

    # -- helpers -------------------------------------------------------------------------

    def _resync(self) -> set[LedTarget]:
        """Send every target's current pattern (after open, reconnect or HELLO).

        Returns the targets that did not take their pattern. A board that keeps saying
        HELLO gets a few rounds, not an endless loop.
        """
        failed: set[LedTarget] = set()
        for _round in range(3):
            if not self._resync_needed or self._port is None:
                break
            self._resync_needed = False
            failed = set()
            for target, pattern in list(self._desired.items()):
                if target in self._absent:
                    continue
                if not self._send(target, pattern):
                    failed.add(target)
                if self._port is None:
                    return set(self._desired)
        return failed

    def _send(self, target: LedTarget, pattern: LedPattern) -> bool:
        seq = self._seq
        self._seq = (self._seq + 1) % SEQ_MODULO
        line = encode_command(Command(seq, target, pattern))
        attempts = 1 + self.spec.retries
        for attempt in range(attempts):
            if attempt:
                self.stats["retries"] += 1
            if not self._write(line):
                return False
            self.stats["sent"] += 1
            outcome, nak = self._await(seq)
            if outcome is _Outcome.ACKED:
                self._latch.ok(_BOARD, f"LED board on {self.port_path} answers again")
                self._latch.ok(f"target:{target}", f"{_label(target)} accepted by the board")
                return True
            if outcome is _Outcome.LOST:
                return False
            if outcome is _Outcome.REFUSED and nak is not None:
                return self._refused(target, pattern, nak)
        self._latch.fault(_BOARD, f"LED board on {self.port_path}: no acknowledgement of "
                                  f"{_label(target)} after {attempts} attempts; reopening it")
        self._drop_link()
        return False

    def _refused(self, target: LedTarget, pattern: LedPattern, nak: Nak) -> bool:
        self._latch.ok(_BOARD, f"LED board on {self.port_path} answers again")
        if nak.code == "BADBAY" and target == DOCK:
            log.info("LED board on %s has no dock LED", self.port_path)
            self._absent.add(DOCK)
            return False
        self._latch.fault(f"target:{target}", f"LED board on {self.port_path} refused "
                          f"{_label(target)} {pattern.colour}/{pattern.mode}: {nak.code} "
                          f"{nak.text}".rstrip())
        return False

    def _await(self, seq: int) -> tuple[_Outcome, Nak | None]:
        deadline = self._clock.monotonic() + self.spec.ack_timeout_s
        while True:
            # Replies read along with an earlier ack wait in the inbox, so none is lost.
            while self._inbox:
                reply = self._inbox.popleft()
                if reply.seq == seq:
                    if isinstance(reply, Ack):
                        return _Outcome.ACKED, None
                    return (_Outcome.RETRY if reply.code == "BUSY" else _Outcome.REFUSED), reply
                if isinstance(reply, Nak) and reply.seq is None:
                    # The board could not read a line: most likely ours, garbled.
                    return _Outcome.RETRY, None
                self.stats["stale_acks"] += 1
            if self._port is None:
                return _Outcome.LOST, None
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                return _Outcome.RETRY, None
            self._inbox.extend(self._drain(remaining))

    def _drain(self, timeout: float) -> list[Ack | Nak]:
        """Replies that arrive within ``timeout``; HELLO only marks a resync as needed."""
        port = self._port
        if port is None:
            return []
        try:
            ready, _, _ = select.select([port.fileno()], [], [], timeout)
            data = port.read(4096) if ready else b""
            if ready and not data:
                raise serial.SerialException("the port reports data but returns none")
        except (serial.SerialException, OSError, ValueError) as exc:
            self._lost(exc)
            return []
        replies: list[Ack | Nak] = []
        for line in self._lines.feed(data):
            reply = parse_reply(line)
            if reply is None:
                self.stats["garbled"] += 1
                log.debug("LED board sent an unreadable line: %r", line[:80])
            elif isinstance(reply, Hello):
                log.info("LED board on %s (re)started: %s", self.port_path, reply.text)
                self._resync_needed = True
            else:
                replies.append(reply)
        return replies

    def _write(self, line: bytes) -> bool:
        # No flush(): on POSIX pyserial writes straight to the descriptor, and flush() is
        # tcdrain(), which can stall for many milliseconds (or for ever on a wedged
        # USB adapter) while the ack timeout already bounds how long we wait.
        try:
            self._port.write(line)
        except (serial.SerialException, OSError) as exc:
            self._lost(exc)
            return False
        return True

    def _ensure_open(self) -> bool:
        if self._port is not None:
            return True
        now = self._clock.monotonic()
        if now < self._next_connect:
            return False
        self._next_connect = now + self.spec.reconnect_interval_s
        try:
            self._port = serial.Serial(str(self.port_path), self.spec.baud, timeout=0,
                                       write_timeout=self.spec.ack_timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._latch.fault(_BOARD, f"cannot open the LED board on {self.port_path}: {exc}; "
                                      f"retrying every {self.spec.reconnect_interval_s:g} s")
            return False
        self.stats["reconnects"] += 1
        log.info("LED board on %s opened", self.port_path)
        self._lines = LineBuffer()
        self._inbox.clear()
        self._resync_needed = True
        return True

    def _lost(self, exc: BaseException) -> None:
        self._latch.fault(_BOARD, f"LED board on {self.port_path} is gone ({exc}); "
                                  f"retrying every {self.spec.reconnect_interval_s:g} s")
        self._drop_link()

    def _drop_link(self) -> None:
        self._close_port()
        self._resync_needed = True
        self._next_connect = self._clock.monotonic() + self.spec.reconnect_interval_s

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is None:
            return
        try:
            port.close()
        except (serial.SerialException, OSError) as exc:
            # Closing a port whose device vanished can fail; the fault is already reported.
            log.debug("closing LED board port %s: %s", self.port_path, exc)


def _label(target: LedTarget) -> str:
    return "the dock LED" if target == DOCK else f"bay {target}"
