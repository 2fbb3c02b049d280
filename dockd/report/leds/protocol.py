"""The bay controller board's line protocol (docs/leds.md), shared by driver and simulator.

Host to board, one command per line::

    LED <seq> <target> <colour> <mode> <on_ms> <off_ms> <progress>\\n

``seq`` 0-65535 (wraps), ``target`` a bay 0-255 or ``dock``, ``colour`` off|red|green|amber,
``mode`` off|steady|blink|pulse, ``on_ms``/``off_ms`` 0-60000, ``progress`` 0-100 or ``-``.

Board to host::

    OK <seq>\\n                   the command with that seq is applied
    ERR <seq|-> <code> [text]\\n  refused (BADCMD, BADARG, BADBAY, BUSY); '-' if unparsable
    HELLO <text>\\n               the board (re)started and shows nothing: send every state

Lines are ASCII, at most ``MAX_LINE`` bytes; a CR before the LF is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockd.config.leds import DOCK, LedTarget
from dockd.report.leds.pattern import Colour, LedPattern, Mode

MAX_LINE = 128
SEQ_MODULO = 65536
MAX_MS = 60_000
ERROR_CODES = ("BADCMD", "BADARG", "BADBAY", "BUSY")


@dataclass(frozen=True)
class Command:
    """One ``LED`` command as the board understands it."""

    seq: int
    target: LedTarget
    pattern: LedPattern


@dataclass(frozen=True)
class Ack:
    """``OK <seq>``."""

    seq: int


@dataclass(frozen=True)
class Nak:
    """``ERR <seq> <code> [text]``; ``seq`` None when the board could not read it."""

    seq: int | None
    code: str
    text: str = ""


@dataclass(frozen=True)
class Hello:
    """``HELLO <text>``: the board has (re)started."""

    text: str


Reply = Ack | Nak | Hello


class ProtocolError(ValueError):
    """A command line the board must refuse; ``code`` is the ERR code it answers."""

    def __init__(self, code: str, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.seq = seq


def encode_command(command: Command) -> bytes:
    """The line that carries ``command`` to the board."""
    p = command.pattern
    progress = "-" if p.progress is None else str(p.progress)
    return (f"LED {command.seq} {command.target} {p.colour} {p.mode} {p.on_ms} {p.off_ms} "
            f"{progress}\n").encode("ascii")


def parse_reply(line: bytes) -> Reply | None:
    """A board line as a reply, or None when it is not one (noise, garbling)."""
    words = _ascii_words(line)
    if not words:
        return None
    if words[0] == "OK" and len(words) == 2:
        seq = _seq(words[1])
        return None if seq is None else Ack(seq)
    if words[0] == "ERR" and len(words) >= 3 and words[2] in ERROR_CODES:
        seq = None if words[1] == "-" else _seq(words[1])
        if seq is None and words[1] != "-":
            return None
        return Nak(seq, words[2], " ".join(words[3:]))
    if words[0] == "HELLO":
        return Hello(" ".join(words[1:]))
    return None


def parse_command(line: bytes) -> Command:
    """A host line as a command; raises ProtocolError with the code to answer."""
    words = _ascii_words(line)
    if not words or words[0] != "LED":
        raise ProtocolError("BADCMD", "not an LED command")
    seq = _seq(words[1]) if len(words) > 1 else None
    if seq is None or len(words) != 8:
        raise ProtocolError("BADCMD", "LED needs seq target colour mode on_ms off_ms progress",
                            seq)
    target = _target(words[2])
    if target is None:
        raise ProtocolError("BADBAY", f"no such target {words[2]!r}", seq)
    try:
        pattern = LedPattern(Colour(words[3]), Mode(words[4]), _ms(words[5]), _ms(words[6]),
                             None if words[7] == "-" else _number(words[7]))
    except ValueError as exc:
        raise ProtocolError("BADARG", str(exc), seq) from None
    return Command(seq, target, pattern)


def encode_reply(reply: Reply) -> bytes:
    """The line a board sends for ``reply`` (the simulator's side)."""
    if isinstance(reply, Ack):
        return f"OK {reply.seq}\n".encode("ascii")
    if isinstance(reply, Nak):
        seq = "-" if reply.seq is None else str(reply.seq)
        text = f" {reply.text}" if reply.text else ""
        return f"ERR {seq} {reply.code}{text}\n".encode("ascii", "replace")
    return f"HELLO {reply.text}\n".encode("ascii", "replace")


class LineBuffer:
    """Splits a byte stream into lines; drops lines longer than ``MAX_LINE`` whole."""

    def __init__(self) -> None:
        self._partial = bytearray()
        self._overflow = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Complete lines (without the newline) found after adding ``data``."""
        lines: list[bytes] = []
        *complete, tail = data.split(b"\n")
        for chunk in complete:
            lines.extend(self._end_line(chunk))
        self._append(tail)
        return lines

    def _end_line(self, chunk: bytes) -> list[bytes]:
        self._append(chunk)
        line, overflow = bytes(self._partial), self._overflow
        self._partial.clear()
        self._overflow = False
        if overflow:
            self.dropped += 1
            return []
        return [line.rstrip(b"\r")]

    def _append(self, chunk: bytes) -> None:
        if self._overflow:
            return
        self._partial += chunk
        if len(self._partial) > MAX_LINE:
            # A board that never sends a newline must not grow our memory without bound.
            self._partial.clear()
            self._overflow = True


def _ascii_words(line: bytes) -> list[str]:
    if len(line) > MAX_LINE or any(b > 0x7E or (b < 0x20 and b not in (9, 13)) for b in line):
        return []
    return line.decode("ascii").split()


def _number(word: str) -> int:
    # Plain decimal only: int() would also take "+1", "1_0" or full-width digits.
    if not word.isascii() or not word.isdigit() or len(word) > 6:
        raise ValueError(f"{word!r} is not a decimal number")
    return int(word)


def _seq(word: str) -> int | None:
    try:
        value = _number(word)
    except ValueError:
        return None
    return value if value < SEQ_MODULO else None


def _ms(word: str) -> int:
    value = _number(word)
    if value > MAX_MS:
        raise ValueError(f"{value} ms is above {MAX_MS}")
    return value


def _target(word: str) -> LedTarget | None:
    if word == DOCK:
        return DOCK
    try:
        bay = _number(word)
    except ValueError:
        return None
    return bay if bay <= 255 else None
