"""A simulated bay controller board on a real pseudo-terminal.

The board holds the pty's master side and publishes the slave under a stable symlink
(as udev's ``/dev/serial/by-id/...`` link), which is what the serial LED driver opens.
It speaks the protocol of dockd/report/leds/protocol.py and can misbehave the way boards
and cables do: drop, delay, duplicate or garble acknowledgements, garble commands it
receives, go mute, be unplugged (pty closed, link removed, LED state lost) and plugged
back in (a new pty behind the same link, announcing itself with ``HELLO``).

Run ``python -m dockd.sim.led_board LINK`` for the demo: it prints every LED change.
"""

from __future__ import annotations

import heapq
import logging
import os
import random
import select
import sys
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dockd.config.leds import DOCK, LedTarget
from dockd.report.leds.pattern import LedPattern
from dockd.report.leds.protocol import (
    Ack,
    Command,
    Hello,
    LineBuffer,
    Nak,
    ProtocolError,
    encode_reply,
    parse_command,
)

log = logging.getLogger(__name__)

HELLO_TEXT = "dockd-sim-ledboard 1"


@dataclass(frozen=True)
class Chaos:
    """Random misbehaviour for the demo and soak tests (probabilities per reply)."""

    drop: float = 0.0
    garble: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    delay_s: float = 0.3


class SimulatedLedBoard:
    """A bay controller board with ``bays`` bay LEDs (1..bays) and, optionally, a dock LED."""

    def __init__(self, link: Path, bays: int = 8, dock_led: bool = True,
                 chaos: Chaos | None = None, rng: random.Random | None = None,
                 on_change: Callable[[LedTarget, LedPattern], None] | None = None) -> None:
        self.link = link
        self.bays = bays
        self.dock_led = dock_led
        self.chaos = chaos or Chaos()
        self._rng = rng or random.Random(0)
        self._on_change = on_change
        self._lock = threading.Condition()
        self._leds: dict[LedTarget, LedPattern] = {}
        self.commands: list[Command] = []
        self.bad_lines = 0
        self._drop = self._garble = self._duplicate = self._garble_in = 0
        self._delays: list[float] = []
        self._mute = False
        self._session: _Session | None = None

    # -- plugging ------------------------------------------------------------------------

    def plug(self) -> None:
        """Power up: a new pty behind ``link``; the board says HELLO and shows nothing."""
        with self._lock:
            if self._session is not None:
                return
            self._leds.clear()
            self._session = _Session(self)
            self._lock.notify_all()

    def unplug(self) -> None:
        """Pull the cable: the pty and the link vanish, the LEDs go dark."""
        with self._lock:
            session, self._session = self._session, None
            self._leds.clear()
        if session is not None:
            session.close()

    def replug(self) -> None:
        """Unplug, then plug in again at the same link."""
        self.unplug()
        self.plug()

    def reset(self) -> None:
        """A firmware restart without unplugging: the LEDs go dark and it says HELLO."""
        with self._lock:
            self._leds.clear()
            session = self._session
        if session is not None:
            session.write(encode_reply(Hello(HELLO_TEXT)))

    @property
    def plugged(self) -> bool:
        return self._session is not None

    # -- misbehaviour (deterministic, for tests) -----------------------------------------

    def drop_acks(self, count: int) -> None:
        """Apply but do not answer the next ``count`` commands."""
        with self._lock:
            self._drop += count

    def delay_acks(self, seconds: float, count: int = 1) -> None:
        """Answer the next ``count`` commands ``seconds`` late (after later answers)."""
        with self._lock:
            self._delays.extend([seconds] * count)

    def garble_acks(self, count: int) -> None:
        """Answer the next ``count`` commands with an unreadable line."""
        with self._lock:
            self._garble += count

    def duplicate_acks(self, count: int) -> None:
        """Answer each of the next ``count`` commands twice."""
        with self._lock:
            self._duplicate += count

    def garble_commands(self, count: int) -> None:
        """Corrupt the next ``count`` received lines, as line noise would."""
        with self._lock:
            self._garble_in += count

    def mute(self, muted: bool = True) -> None:
        """A wedged board: it reads commands and neither applies nor answers them."""
        with self._lock:
            self._mute = muted

    def send_raw(self, data: bytes) -> None:
        """Write arbitrary bytes to the host (noise, a forged reply)."""
        session = self._session
        if session is not None:
            session.write(data)

    # -- observation ---------------------------------------------------------------------

    def leds(self) -> dict[LedTarget, LedPattern]:
        """What every LED shows now (absent = dark)."""
        with self._lock:
            return dict(self._leds)

    def wait_for(self, target: LedTarget, pattern: LedPattern | None,
                 timeout_s: float) -> bool:
        """Wait until ``target`` shows ``pattern`` (None: dark)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._leds.get(target) == pattern, timeout_s)

    # -- the firmware --------------------------------------------------------------------

    def _handle(self, line: bytes) -> list[tuple[float, bytes]]:
        """Replies to one received line, each with its delay in seconds."""
        with self._lock:
            if self._mute:
                return []
            if self._garble_in:
                self._garble_in -= 1
                line = _garble(line)
            try:
                command = parse_command(line)
            except ProtocolError as exc:
                self.bad_lines += 1
                return [(0.0, encode_reply(Nak(exc.seq, exc.code, str(exc)[:60])))]
            if not self._has(command.target):
                return [(0.0, encode_reply(Nak(command.seq, "BADBAY", "no such LED")))]
            self.commands.append(command)
            changed = self._leds.get(command.target) != command.pattern
            self._leds[command.target] = command.pattern
            self._lock.notify_all()
            replies = self._misbehave(encode_reply(Ack(command.seq)))
        if changed and self._on_change is not None:
            self._on_change(command.target, command.pattern)
        return replies

    def _misbehave(self, ack: bytes) -> list[tuple[float, bytes]]:
        chaos, rng = self.chaos, self._rng
        if self._drop or rng.random() < chaos.drop:
            self._drop = max(0, self._drop - 1)
            return []
        delay = 0.0
        if self._delays:
            delay = self._delays.pop(0)
        elif rng.random() < chaos.delay:
            delay = chaos.delay_s
        if self._garble or rng.random() < chaos.garble:
            self._garble = max(0, self._garble - 1)
            ack = _garble(ack)
        replies = [(delay, ack)]
        if self._duplicate or rng.random() < chaos.duplicate:
            self._duplicate = max(0, self._duplicate - 1)
            replies.append((delay, ack))
        return replies

    def _has(self, target: LedTarget) -> bool:
        if target == DOCK:
            return self.dock_led
        return isinstance(target, int) and 1 <= target <= self.bays


class _Session:
    """One plugged-in period: a pty, the link to its slave, and the firmware's thread."""

    def __init__(self, board: SimulatedLedBoard) -> None:
        self.board = board
        self.master, self.slave = os.openpty()
        # Raw before anyone opens it: an echoing tty would bounce our replies back to us.
        tty.setraw(self.slave)
        self._wake_r, self._wake_w = os.pipe()
        self._write_lock = threading.Lock()
        _replace_symlink(board.link, Path(os.ttyname(self.slave)))
        self.write(encode_reply(Hello(HELLO_TEXT)))
        self._thread = threading.Thread(target=self._run, name="sim-ledboard", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        with self._write_lock:
            try:
                os.write(self.master, data)
            except OSError as exc:
                log.debug("simulated LED board could not write: %s", exc)

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        self.board.link.unlink(missing_ok=True)
        for fd in (self.master, self.slave, self._wake_r, self._wake_w):
            os.close(fd)

    def _run(self) -> None:
        lines = LineBuffer()
        later: list[tuple[float, int, bytes]] = []
        order = 0
        while True:
            timeout = max(0.0, later[0][0] - time.monotonic()) if later else None
            ready, _, _ = select.select([self.master, self._wake_r], [], [], timeout)
            if self._wake_r in ready:
                return
            if self.master in ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    return
                for line in lines.feed(data):
                    for delay, reply in self.board._handle(line):
                        order += 1
                        heapq.heappush(later, (time.monotonic() + delay, order, reply))
            while later and later[0][0] <= time.monotonic():
                self.write(heapq.heappop(later)[2])


def _garble(line: bytes) -> bytes:
    # Digits become '#', and a byte no ASCII line contains is added: never a valid line.
    body = bytes(0x23 if 0x30 <= b <= 0x39 else b for b in line.rstrip(b"\n"))
    return body + b"\xfe" + (b"\n" if line.endswith(b"\n") else b"")


def _replace_symlink(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    os.replace(temporary, link)


def main(argv: list[str] | None = None) -> int:
    """Demo: run a board at LINK and print each LED change until interrupted."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dockd.sim.led_board LINK", file=sys.stderr)
        return 2

    def show(target: LedTarget, pattern: LedPattern) -> None:
        progress = "" if pattern.progress is None else f" {pattern.progress}%"
        print(f"{target}: {pattern.colour} {pattern.mode}{progress}", flush=True)

    board = SimulatedLedBoard(Path(args[0]), on_change=show)
    board.plug()
    print(f"simulated LED board at {board.link}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        board.unplug()


if __name__ == "__main__":
    sys.exit(main())


def make_sysfs_led(root: Path, name: str, max_brightness: int = 255,
                   channels: tuple[str, ...] | None = None, max_intensity: bool = False,
                   timer_files: bool = True) -> Path:
    """Lay out ``<root>/<name>`` as the kernel's LED class does; returns the device dir.

    As in sysfs, the class entry is a symlink to the device's directory, which holds
    ``brightness``, ``max_brightness``, ``trigger`` (the available triggers, current one in
    brackets), ``uevent``, ``power/`` and ``subsystem``; a multicolour LED adds
    ``multi_index`` and ``multi_intensity`` (and ``multi_max_intensity`` on newer kernels).
    ``delay_on``/``delay_off`` exist only while the timer trigger is active; plain files
    cannot appear on a write, so ``timer_files`` decides whether they are already there.
    """
    devices = root.parent.parent / "devices" / "platform" / "dockd-leds" / "leds"
    device = devices / name
    (device / "power").mkdir(parents=True)
    files = {
        "brightness": "0",
        "max_brightness": str(max_brightness),
        "trigger": "[none] kbd-scrolllock disk-activity timer heartbeat default-on",
        "uevent": "",
    }
    if channels is not None:
        files["multi_index"] = " ".join(channels)
        files["multi_intensity"] = " ".join("0" for _ in channels)
        if max_intensity:
            files["multi_max_intensity"] = " ".join(str(max_brightness) for _ in channels)
    if timer_files:
        files.update(delay_on="500", delay_off="500")
    for attr, text in files.items():
        (device / attr).write_text(text + "\n" if text else "")
    (device / "max_brightness").chmod(0o444)
    if channels is not None:
        (device / "multi_index").chmod(0o444)
    root.mkdir(parents=True, exist_ok=True)
    (device / "subsystem").symlink_to(os.path.relpath(root, device))
    (root / name).symlink_to(os.path.relpath(device, root))
    return device
