"""The daemon's read-only state channel (``dockd/report/state_channel.py``) with real Unix
sockets: what clients get, and that no client can change anything or hold the daemon up."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockd.report.state_channel import MAX_LINE_BYTES, StateChannel, read_state


@pytest.fixture
def sock_path() -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    short = Path(f"/tmp/dockd-sc-{os.getpid()}-{threading.get_ident() % 10**6}")
    short.mkdir(exist_ok=True)
    yield short / "status.sock"
    for child in short.iterdir():
        child.unlink()
    short.rmdir()


@pytest.fixture
def serve(sock_path: Path) -> Iterator[Callable[[Callable[[], dict[str, Any]]], StateChannel]]:
    channels: list[StateChannel] = []

    def start(snapshot: Callable[[], dict[str, Any]]) -> StateChannel:
        channel = StateChannel(sock_path, snapshot)
        channel.start()
        channels.append(channel)
        return channel

    yield start
    for channel in channels:
        channel.stop()


def connect(path: Path, timeout: float = 5.0) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    client.connect(str(path))
    return client


class LineReader:
    """Whole lines from a socket, kept across reads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"closed after {len(self.buffer)} bytes of a line")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        value: dict[str, Any] = json.loads(line)
        return value


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_snapshot_on_connect_and_on_every_change(serve: Callable[..., StateChannel],
                                                 sock_path: Path) -> None:
    state = {"v": 1, "n": 0}
    channel = serve(lambda: dict(state))
    a, b = LineReader(connect(sock_path)), LineReader(connect(sock_path))
    assert a.line() == {"v": 1, "n": 0} and b.line() == {"v": 1, "n": 0}
    for n in (1, 2, 3):
        state["n"] = n
        channel.changed()
    assert [a.line()["n"] for _ in range(3)] == [1, 2, 3]
    assert [b.line()["n"] for _ in range(3)] == [1, 2, 3]
    assert channel.client_count == 2


def test_socket_is_group_readable_only(serve: Callable[..., StateChannel], sock_path: Path) -> None:
    serve(lambda: {"v": 1})
    mode = stat.S_IMODE(os.stat(sock_path).st_mode)
    assert stat.S_ISSOCK(os.stat(sock_path).st_mode) and mode == 0o660


def test_a_client_that_writes_is_disconnected_and_nothing_changes(
        serve: Callable[..., StateChannel], sock_path: Path) -> None:
    state = {"v": 1, "bays": [{"bay": 1, "state": "ready"}]}
    calls: list[int] = []

    def snapshot() -> dict[str, Any]:
        calls.append(1)
        return json.loads(json.dumps(state))

    channel = serve(snapshot)
    watcher = LineReader(connect(sock_path))
    assert watcher.line() == state
    writer = connect(sock_path)
    assert LineReader(writer).line() == state
    wait_for(lambda: channel.client_count == 2)
    calls_before = len(calls)
    writer.sendall(b'{"v":1,"bays":[{"bay":1,"state":"fault"}]}\nSET bay 1 ready\n')
    assert read_to_eof(writer) == b""  # disconnected, with nothing more sent to it
    wait_for(lambda: channel.client_count == 1)
    # Nothing was pushed to anybody, nothing was recomputed, the state is what it was.
    watcher.sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        watcher.sock.recv(1)
    assert len(calls) == calls_before
    assert state == {"v": 1, "bays": [{"bay": 1, "state": "ready"}]}
    channel.changed()
    watcher.sock.settimeout(5)
    assert watcher.line() == state


def test_survives_a_client_that_disconnects_mid_message(serve: Callable[..., StateChannel],
                                                        sock_path: Path) -> None:
    big = {"v": 1, "pad": "x" * 20_000}  # far more than the quitter reads
    channel = serve(lambda: big)
    steady = LineReader(connect(sock_path))
    assert steady.line() == big
    quitter = connect(sock_path)
    assert len(quitter.recv(1000)) > 0  # part of the first line, then gone
    quitter.close()
    wait_for(lambda: channel.client_count == 1)  # its EOF was noticed
    unread = connect(sock_path)  # never reads a byte before closing
    wait_for(lambda: channel.client_count == 2)
    unread.close()
    for _ in range(3):
        channel.changed()  # sending to the closed sockets must neither raise nor kill the thread
    wait_for(lambda: channel.client_count == 1)
    assert [steady.line() for _ in range(3)] == [big, big, big]
    late = LineReader(connect(sock_path))  # the channel still accepts
    assert late.line() == big


def test_a_client_that_never_reads_is_dropped_without_blocking_others(
        serve: Callable[..., StateChannel], sock_path: Path) -> None:
    # About an 8-bay dock's snapshot; pushed a little faster than the daemon ever does.
    state = {"v": 1, "n": 0, "pad": "y" * 4_000}
    channel = serve(lambda: dict(state))
    stuck = connect(sock_path)
    reader = LineReader(connect(sock_path))
    assert reader.line()["n"] == 0
    pushes = 400  # 1.6 MB: far more than the stuck client's socket buffers hold
    got = collect_in_background(reader, pushes)
    slowest = 0.0
    for n in range(1, pushes + 1):
        state["n"] = n
        start = time.monotonic()
        channel.changed()
        slowest = max(slowest, time.monotonic() - start)
        time.sleep(0.001)
    wait_for(lambda: len(got) == pushes)
    assert got == list(range(1, pushes + 1))  # the reading client lost nothing
    assert slowest < 0.5  # a full socket buffer never made the daemon wait
    assert channel.client_count == 1  # the stuck one is gone
    # What the stuck client can still read is whole lines in order, then at most one cut line.
    data = read_to_eof(stuck)
    *whole, cut = data.split(b"\n")
    numbers = [json.loads(line)["n"] for line in whole]
    assert numbers == list(range(len(numbers))) and len(numbers) < pushes
    assert len(cut) < len(json.dumps(state))


def collect_in_background(reader: LineReader, count: int) -> list[int]:
    """Read ``count`` lines in a thread (as a live console does); their ``n`` values."""
    got: list[int] = []

    def run() -> None:
        for _ in range(count):
            got.append(reader.line()["n"])

    threading.Thread(target=run, daemon=True).start()
    return got


def test_concurrent_changes_reach_clients_in_order(serve: Callable[..., StateChannel],
                                                   sock_path: Path) -> None:
    lock = threading.Lock()
    state = {"n": 0}

    # 4 × 50 changes: the channel drops a client whose socket buffer is full (~270 lines
    # here), so with more the test would depend on the reader thread getting the CPU in time.
    def bump_and_push() -> None:
        for _ in range(50):
            with lock:
                state["n"] += 1
            channel.changed()

    channel = serve(lambda: {"v": 1, "n": state["n"]})
    reader = LineReader(connect(sock_path))
    assert reader.line()["n"] == 0
    seen = collect_in_background(reader, 200)
    threads = [threading.Thread(target=bump_and_push) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    wait_for(lambda: len(seen) == 200)
    assert seen == sorted(seen)  # no older snapshot after a newer one
    assert seen[-1] == 200  # and the last thing a client sees is the current state


def test_a_slow_snapshot_cannot_overwrite_a_newer_one(serve: Callable[..., StateChannel],
                                                      sock_path: Path) -> None:
    # Bay 1 changes (snapshot taken, then the thread is preempted), bay 2 changes and is
    # pushed, then bay 1's push goes out: a console would show bay 2's old state until the
    # next change, which may never come (a bay that went ready stays "offloading").
    state = {"n": 0}
    in_snapshot, release = threading.Event(), threading.Event()

    def snapshot() -> dict[str, Any]:
        value = {"v": 1, "n": state["n"]}
        if threading.current_thread().name == "bay-1":
            in_snapshot.set()
            release.wait(5)
        return value

    channel = serve(snapshot)
    reader = LineReader(connect(sock_path))
    assert reader.line()["n"] == 0

    def push(n: int) -> None:
        state["n"] = n
        channel.changed()

    first = threading.Thread(target=push, args=(1,), name="bay-1")
    first.start()
    assert in_snapshot.wait(5)
    second = threading.Thread(target=push, args=(2,), name="bay-2")
    second.start()
    second.join(0.5)  # either it went out already (ordering bug) or it waits for bay 1's push
    release.set()
    first.join(5)
    second.join(5)
    lines = [reader.line()["n"], reader.line()["n"]]
    assert lines[-1] == 2, f"client saw {lines}: the newest state was overwritten by an older one"


def test_stop_closes_clients_and_removes_the_socket(sock_path: Path) -> None:
    channel = StateChannel(sock_path, lambda: {"v": 1})
    channel.start()
    client = connect(sock_path)
    assert LineReader(client).line() == {"v": 1}
    channel.stop()
    assert read_to_eof(client) == b""
    assert not sock_path.exists()


def test_a_second_stop_leaves_a_later_channel_alone(sock_path: Path) -> None:
    """A daemon restarted on the same socket: stopping the first channel again must not
    touch the file descriptors the second one was given (the kernel reuses the numbers)."""
    first = StateChannel(sock_path, lambda: {"v": 1})
    first.start()
    first.stop()
    second = StateChannel(sock_path, lambda: {"v": 2})
    second.start()
    try:
        first.stop()
        client = connect(sock_path)
        reader = LineReader(client)
        assert reader.line() == {"v": 2}
        second.changed()  # its wake pipe and thread are still its own
        assert reader.line() == {"v": 2}
    finally:
        second.stop()


def test_read_state_reads_one_snapshot(serve: Callable[..., StateChannel], sock_path: Path) -> None:
    serve(lambda: {"v": 1, "dock": {"id": "D-1", "site": "交警中队"}, "bays": []})
    assert read_state(sock_path) == {"v": 1, "dock": {"id": "D-1", "site": "交警中队"}, "bays": []}


def test_read_state_failures(sock_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_state(sock_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(sock_path))
        server.listen(4)
        with pytest.raises(TimeoutError):  # listening but never answering
            read_state(sock_path, timeout=0.2)
        server.accept()[0].close()  # the timed-out connection

        def answer(data: bytes) -> None:
            conn, _ = server.accept()
            # The reader may hang up before an over-long line is all sent: that is its right.
            with conn, contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.sendall(data)

        # Nothing, half a line, not JSON, and a line past the limit (never read without bound).
        for bad in (b"", b'{"v": 1, "dock"', b"\xff\xfe not json\n", b"[" * (MAX_LINE_BYTES + 10)):
            t = threading.Thread(target=answer, args=(bad,))
            t.start()
            with pytest.raises(ValueError):
                read_state(sock_path)
            t.join(5)
