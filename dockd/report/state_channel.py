"""The daemon's local, read-only state channel: a Unix socket that streams JSON lines.

Each client gets the full dock state at once and again at every change; ``dockd status``
reads one line, ``dockd console`` keeps reading. Clients cannot change anything: a client
that sends a byte is disconnected, and so is one too slow to keep up. File permissions
(0660, the service's group) decide who may read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockd.dock.reporting import DockInfo, RecorderChecked
from dockd.dock.states import BayStatus

log = logging.getLogger(__name__)
SOCKET_MODE = 0o660
MAX_LINE_BYTES = 4 * 1024 * 1024  # a dock's state is a few kB; more is not our daemon


class StateChannel:
    """Serves ``snapshot()`` to every client, pushed again on each :meth:`changed`."""

    def __init__(self, path: Path, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self.snapshot = snapshot
        self._selector = selectors.DefaultSelector()
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._stopped = False

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old_umask = os.umask(0o117)
        try:
            server.bind(str(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, SOCKET_MODE)
        server.listen(16)
        server.setblocking(False)
        self._server = server
        self._selector.register(server, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="state-channel", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close everything; a second call does nothing (closing the
        pipe's descriptors again would close whatever the kernel has given their numbers
        to since, such as the pipe of a channel started after this one)."""
        if self._stopped:
            return
        self._stopped = True
        self._running = False
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            for client in list(self._clients):
                self._drop(client)
        if self._server is not None:
            self._server.close()
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def changed(self) -> None:
        """Push the current snapshot to every client (callable from any thread)."""
        # Snapshot taken under the lock: two bays changing at once must not let the older
        # snapshot go out last (clients would show it until the next change, maybe forever).
        with self._lock:
            line = self._line()
            for client in list(self._clients):
                self._send(client, line)

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)

    def _line(self) -> bytes:
        return json.dumps(self.snapshot(), ensure_ascii=False, sort_keys=True).encode() + b"\n"

    def _serve(self) -> None:
        while self._running:
            for key, _mask in self._selector.select(timeout=None):
                if key.data == "wake":
                    os.read(self._wake_r, 64)
                elif key.data == "accept":
                    self._accept()
                else:
                    self._client_readable(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        assert self._server is not None
        try:
            client, _ = self._server.accept()
        except BlockingIOError:
            return
        client.setblocking(False)
        with self._lock:
            self._clients.add(client)
            self._selector.register(client, selectors.EVENT_READ, "client")
            self._send(client, self._line())

    def _client_readable(self, client: socket.socket) -> None:
        # Read-only channel: any input (or EOF) ends the connection.
        with contextlib.suppress(OSError):
            data = client.recv(64)
            if data:
                log.warning("state channel client wrote to a read-only channel; disconnected")
        with self._lock:
            self._drop(client)

    def _send(self, client: socket.socket, line: bytes) -> None:
        try:
            sent = client.send(line, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
            if sent < len(line):
                raise BlockingIOError("client too slow")
        except OSError:
            self._drop(client)

    def _drop(self, client: socket.socket) -> None:
        if client in self._clients:
            self._clients.discard(client)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(client)
            client.close()


class DockStateChannel(StateChannel):
    """The state channel of a running dock: its bays and dock line (a
    :class:`~dockd.dock.reporting.Reporter`)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, self._dock_snapshot)
        self._bays: dict[int, BayStatus] = {}
        self._dock: DockInfo | None = None
        self._state_lock = threading.Lock()

    def bay_changed(self, status: BayStatus) -> None:
        with self._state_lock:
            self._bays[status.bay] = status
        self.changed()

    def dock_changed(self, info: DockInfo) -> None:
        with self._state_lock:
            self._dock = info
        self.changed()

    def recorder_checked(self, checked: RecorderChecked) -> None:
        """Nothing to show: the bay's status carries the readings."""

    def records_committed(self) -> None:
        """Nothing to show: the dock line's outbox depth follows at its next refresh."""

    def _dock_snapshot(self) -> dict[str, Any]:
        with self._state_lock:
            bays = sorted(self._bays.values(), key=lambda b: b.bay)
            dock = self._dock.to_json_dict() if self._dock is not None else {}
        return {"v": 1, "dock": dock, "bays": [b.to_json_dict() for b in bays]}


class LineTooLongError(ValueError):
    """The state channel sent more than a snapshot can be without a newline."""


class SnapshotLines:
    """The client's side of the channel's framing: JSON lines, each a whole snapshot."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._buffer = b""

    def reset(self) -> None:
        """A new connection: drop what was half received."""
        self._buffer = b""

    def feed(self, data: bytes) -> bytes | None:
        """The newest complete, non-blank line in what has arrived so far, if any.

        Raises LineTooLongError when a line grows past ``max_line`` (the caller drops the
        connection: whatever sends that is not a dock state).
        """
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > self.max_line:
            raise LineTooLongError(f"a line longer than {self.max_line} bytes")
        return next((line for line in reversed(lines) if line.strip()), None)


def read_state(path: Path, timeout: float = 5.0) -> dict[str, Any]:
    """One snapshot from the daemon's state channel (ValueError when it is not one)."""
    lines = SnapshotLines()
    line: bytes | None = None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        while line is None:
            chunk = sock.recv(65536)
            if not chunk:
                break
            line = lines.feed(chunk)
    if line is None:
        raise ValueError("the state channel closed before sending a whole line")
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("the state channel sent something that is not a JSON object")
    return data
