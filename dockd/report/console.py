"""``dockd console``: the live full-screen view of the dock, fed by the state channel.

One thread, one ``select``: the state channel's socket, the keyboard and a wake-up pipe
for SIGWINCH. Each JSON line is a whole snapshot, so when several arrive together only
the newest is drawn, and frames are limited to ``min_frame_s`` apart: eight bays
offloading (16 lines/s) cost a few frames a second, not sixteen. When the daemon goes
away the last state stays on screen, marked stale, and the console reconnects every
``retry_s`` until it is back. ``q`` or Ctrl-C quits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import select
import selectors
import signal
import socket
import termios
import tty
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live

from dockd.clock import Clock, SystemClock, system_zone
from dockd.i18n import _
from dockd.report.console_view import LinkView, render_console
from dockd.report.state_channel import MAX_LINE_BYTES, LineTooLongError, SnapshotLines

# Only debug records here: the log handler writes to the same terminal, under the full-screen
# view; what the user needs to know is drawn on the screen instead.
log = logging.getLogger(__name__)
QUIT_KEYS = (b"q", b"Q")


class ConsoleSession:
    """What the console knows: the newest snapshot and the state of the link (no I/O)."""

    def __init__(self, socket_label: str, clock: Clock, max_line: int = MAX_LINE_BYTES,
                 tz: dt.tzinfo | None = None) -> None:
        self.socket_label = socket_label
        self.clock = clock
        self.tz = tz or system_zone()  # [dock] timezone: what the person reads
        self.state: Any = None
        self.connected = False
        self.detail: str | None = None
        self.received_at: str | None = None
        self._lines = SnapshotLines(max_line)

    def on_connect(self) -> None:
        """A new connection: the first line will be a full snapshot."""
        self.connected, self.detail = True, None
        self._lines.reset()

    def on_disconnect(self, reason: str) -> None:
        """The link is down; the last state stays, marked stale."""
        self.connected, self.detail = False, reason
        self._lines.reset()

    def feed(self, data: bytes) -> bool:
        """Bytes from the socket; True when there is a new snapshot (or a new problem) to draw.

        Raises ``LineTooLongError`` when a line grows past ``max_line`` (the caller drops the
        connection: whatever sends that is not a dock state).
        """
        line = self._lines.feed(data)  # only the newest whole snapshot matters
        return self._take(line) if line is not None else False

    def view(self, width: int) -> RenderableType:
        """The frame to draw now."""
        link = LinkView(self.socket_label, self.connected, self.detail, self.received_at)
        return render_console(self.state, link, width, self.tz)

    def _take(self, line: bytes) -> bool:
        try:
            state = json.loads(line)
        except ValueError:  # UnicodeDecodeError is a ValueError too
            log.debug("state channel sent a line that is not JSON; ignored")
            self.detail = _("ignored a line from dockd that is not valid JSON")
            return True
        self.state = state
        self.detail = None
        self.received_at = self.clock.now().astimezone(self.tz).strftime("%H:%M:%S")
        return True


def run_console(path: Path, console: Console | None = None, keys_fd: int | None = 0,
                clock: Clock | None = None, retry_s: float = 1.0, min_frame_s: float = 0.25,
                tz: dt.tzinfo | None = None) -> int:
    """Show the dock live until ``q``/Ctrl-C (exit 0); ``keys_fd`` None: no keyboard."""
    console = console or Console()
    clock = clock or SystemClock()
    session = ConsoleSession(str(path), clock, tz=tz)
    try:
        with keyboard(keys_fd) as keys, _wakeups() as wake_fd, \
                Live(console=console, screen=True, auto_refresh=False, transient=False) as live:
            return _Loop(path, session, live, console, keys, wake_fd, clock, retry_s,
                         min_frame_s).run()
    except KeyboardInterrupt:
        return 0


# -- helpers ------------------------------------------------------------------------------------


class _Loop:
    def __init__(self, path: Path, session: ConsoleSession, live: Live, console: Console,
                 keys_fd: int | None, wake_fd: int, clock: Clock, retry_s: float,
                 min_frame_s: float) -> None:
        self.path, self.session, self.live, self.console = path, session, live, console
        self.keys_fd, self.wake_fd, self.clock = keys_fd, wake_fd, clock
        self.retry_s, self.min_frame_s = retry_s, min_frame_s
        self.selector = selectors.DefaultSelector()
        self.sock: socket.socket | None = None
        self.next_connect = 0.0
        self.last_frame = -1e9
        self.dirty = True

    def run(self) -> int:
        if self.keys_fd is not None:
            self.selector.register(self.keys_fd, selectors.EVENT_READ, "keys")
        self.selector.register(self.wake_fd, selectors.EVENT_READ, "wake")
        try:
            while True:
                if self.sock is None and self.clock.monotonic() >= self.next_connect:
                    self._connect()
                self._draw_if_due()
                for key, _mask in self.selector.select(self._timeout()):
                    if key.data == "keys" and self._quit_pressed():
                        return 0
                    if key.data == "wake":
                        os.read(self.wake_fd, 512)
                        self.dirty = True
                    elif key.data == "sock":
                        self._receive()
        finally:
            self._close("console closed")
            self.selector.close()

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            self.session.on_disconnect(exc.strerror or str(exc))
            self.next_connect = self.clock.monotonic() + self.retry_s
            self.dirty = True
            return
        sock.setblocking(False)
        self.sock = sock
        self.selector.register(sock, selectors.EVENT_READ, "sock")
        self.session.on_connect()
        self.dirty = True
        log.debug("console connected to %s", self.path)

    def _receive(self) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(exc.strerror or str(exc))
            return
        if not data:
            self._lost(_("connection closed"))
            return
        try:
            self.dirty |= self.session.feed(data)
        except LineTooLongError as exc:
            self._lost(str(exc))

    def _lost(self, reason: str) -> None:
        self._close(reason)
        self.session.on_disconnect(reason)
        self.next_connect = self.clock.monotonic() + self.retry_s
        self.dirty = True

    def _close(self, reason: str) -> None:
        if self.sock is not None:
            log.debug("console link to %s closed: %s", self.path, reason)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self.sock)
            self.sock.close()
            self.sock = None

    def _quit_pressed(self) -> bool:
        assert self.keys_fd is not None
        try:
            data = os.read(self.keys_fd, 64)
        except BlockingIOError:
            return False
        if not data:  # keyboard closed (stdin at EOF): keep showing, stop listening
            self.selector.unregister(self.keys_fd)
            self.keys_fd = None
            return False
        return any(k in data for k in QUIT_KEYS)

    def _draw_if_due(self) -> None:
        if self.dirty and self.clock.monotonic() - self.last_frame >= self.min_frame_s:
            self.live.update(self.session.view(self.console.width), refresh=True)
            self.last_frame = self.clock.monotonic()
            self.dirty = False

    def _timeout(self) -> float | None:
        now = self.clock.monotonic()
        waits = []
        if self.dirty:
            waits.append(self.last_frame + self.min_frame_s - now)
        if self.sock is None:
            waits.append(self.next_connect - now)
        return max(0.0, min(waits)) if waits else None


def quit_pressed(fd: int) -> bool:
    """True when q was typed on ``fd`` (a terminal in :func:`keyboard` mode) since the last
    call; never blocks. For views that draw between other work (``dockd demo``)."""
    ready, _w, _x = select.select([fd], [], [], 0)
    return bool(ready) and any(k in os.read(fd, 64) for k in QUIT_KEYS)


@contextlib.contextmanager
def keyboard(fd: int | None) -> Iterator[int | None]:
    """Keys one at a time without echo (Ctrl-C still interrupts); the terminal is restored."""
    if fd is None or not os.isatty(fd):
        yield None
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)


@contextlib.contextmanager
def _wakeups() -> Iterator[int]:
    """A pipe written on SIGWINCH (redraw at the new size); SIGTERM/SIGHUP end the console
    through the normal exits so the terminal is restored."""
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def on_winch(_signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(write_fd, b"w")

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig, handler in
                ((signal.SIGWINCH, on_winch), (signal.SIGTERM, on_term), (signal.SIGHUP, on_term))}
    try:
        yield read_fd
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(read_fd)
        os.close(write_fd)
