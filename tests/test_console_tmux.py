"""``dockd console`` in a real terminal: tmux runs it against a real StateChannel served
here, and ``tmux capture-pane`` shows what an officer at the dock would see."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockd.report.state_channel import StateChannel
from tests.conftest import REPO_ROOT
from tests.test_console_view import three_bay_snapshot


class Terminal:
    """One tmux server (own socket) with one 160×40 window running a command."""

    def __init__(self, workdir: Path) -> None:
        self.server = workdir / "tmux.sock"
        self.exit_file = workdir / "exit-code"
        self.stty_file = workdir / "stty-after"

    def start(self, argv: list[str], lang: str) -> None:
        env = (f"env -u LANGUAGE -u LC_ALL -u LC_MESSAGES LANG={lang} TERM=screen-256color "
               f"PYTHONPATH={shlex.quote(str(REPO_ROOT))}")
        # After the console: its exit code, then the terminal modes it left behind.
        inner = (f"{env} {shlex.join(argv)}; code=$?; stty -a > {shlex.quote(str(self.stty_file))}; "
                 f"echo $code > {shlex.quote(str(self.exit_file))}")
        self.tmux("new-session", "-d", "-x", "160", "-y", "40", inner)

    def tmux(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-S", str(self.server), *args], capture_output=True,
                                text=True, timeout=10, check=False,
                                env={**os.environ, "LANG": "C.UTF-8"})
        assert result.returncode == 0, result.stderr
        return result.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_for(self, *texts: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            if time.monotonic() > deadline:
                missing = [t for t in texts if t not in screen]
                raise AssertionError(f"not on screen: {missing}\n--- screen ---\n{screen}")
            time.sleep(0.1)

    def exit_code(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while not self.exit_file.exists() or not self.exit_file.read_text().strip():
            assert time.monotonic() < deadline, f"console did not exit\n{self.screen()}"
            time.sleep(0.05)
        return int(self.exit_file.read_text())

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.server), "kill-server"], capture_output=True,
                       timeout=10, check=False)


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Unix socket paths must stay under 108 bytes.
    path = Path(f"/tmp/dockd-ct-{os.getpid()}-{time.monotonic_ns() % 10**9}")
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def terminal(workdir: Path) -> Iterator[Terminal]:
    term = Terminal(workdir)
    yield term
    term.close()


@pytest.fixture
def channels(workdir: Path) -> Iterator[Callable[[Callable[[], dict[str, Any]]], StateChannel]]:
    started: list[StateChannel] = []

    def start(snapshot: Callable[[], dict[str, Any]]) -> StateChannel:
        channel = StateChannel(workdir / "status.sock", snapshot)
        channel.start()
        started.append(channel)
        return channel

    yield start
    for channel in started:
        if channel.path.exists():
            channel.stop()


def console_argv(sock: Path) -> list[str]:
    return [sys.executable, "-m", "dockd.cli", "console", "--socket", str(sock)]


ENGLISH_SCREEN = (
    "● live from", "Dock D-0427", "Store: 412.3 GB free of 1.0 TB", "Broker: offline: TLS: wrong CA",
    "Clock: synchronised", "Outbox: 3 waiting",
    "Offloading", "GAT947-000123", "Zhang Wei 张伟", "81 %", "+1.3 s", "35 % · 12/40 files",
    "1.2 GB of 3.4 GB · 25.0 MB/s · 1 min 28 s left", "━━━━━━━━━━━──",
    "Ready", "AMBA-A9-77", "Ready — you may take this recorder",
    "Fault", "GAT947-000999", "7 %", "Battery low — charge before the shift", "Press q to quit")


def test_three_bays_in_english_and_q_quits(terminal: Terminal, channels: Any, workdir: Path) -> None:
    channel = channels(three_bay_snapshot)
    terminal.start(console_argv(channel.path), "C.UTF-8")
    terminal.wait_for(*ENGLISH_SCREEN)
    terminal.tmux("send-keys", "x")  # other keys do nothing
    time.sleep(0.3)
    terminal.wait_for(*ENGLISH_SCREEN)
    terminal.tmux("send-keys", "q")
    assert terminal.exit_code() == 0
    modes = terminal.stty_file.read_text().split()
    assert "icanon" in modes and "echo" in modes  # the terminal was given back as it was


def test_redraws_for_a_narrow_terminal(terminal: Terminal, channels: Any) -> None:
    channel = channels(three_bay_snapshot)
    terminal.start(console_argv(channel.path), "C.UTF-8")
    terminal.wait_for("Battery low — charge before the shift")
    terminal.tmux("resize-window", "-x", "90", "-y", "40")  # SIGWINCH, no new state
    screen = terminal.wait_for("Bay 3: Battery low — charge before the shift")
    assert "Progress / what to do" not in screen  # the wide layout's column is gone
    terminal.tmux("send-keys", "q")
    assert terminal.exit_code() == 0


def test_three_bays_in_chinese(terminal: Terminal, channels: Any) -> None:
    channel = channels(three_bay_snapshot)
    terminal.start(console_argv(channel.path), "zh_CN.UTF-8")
    screen = terminal.wait_for(
        "实时数据来自", "采集站 D-0427", "证据存储：剩余 412.3 GB，共 1.0 TB",
        "上报服务器：离线：TLS: wrong CA",
        "时钟：已同步", "待发消息：3 条", "仓位", "状态", "记录仪", "执法人员", "电量", "剩余存储",
        "时钟偏差",
        "采集中", "35 % · 12/40 个文件", "25.0 MB/秒 · 剩余 1 分 28 秒", "就绪——可以领用",
        "故障", "电量低——请充电后再领用", "按 q 退出")
    assert "Battery low" not in screen and "Press q" not in screen
    terminal.tmux("send-keys", "q")
    assert terminal.exit_code() == 0


def test_waits_for_the_daemon_and_reconnects_when_it_restarts(
        terminal: Terminal, channels: Any, workdir: Path) -> None:
    sock = workdir / "status.sock"
    terminal.start(console_argv(sock), "C.UTF-8")
    terminal.wait_for(f"Waiting for dockd on {sock} …")
    first = channels(three_bay_snapshot)
    terminal.wait_for("● live from", "Battery low — charge before the shift")
    first.stop()  # the daemon stops (or crashes): the last state stays, marked stale
    terminal.wait_for(f"dockd is not answering on {sock} — showing the state of",
                      "Battery low — charge before the shift")
    recharged = three_bay_snapshot()
    recharged["bays"][2].update(state="ready", fault=None, battery_percent=96)
    channels(lambda: recharged)  # the daemon is back, bay 3 charged meanwhile
    screen = terminal.wait_for("● live from", "96 %")
    assert "Battery low" not in screen and "not answering" not in screen
    terminal.tmux("send-keys", "C-c")
    assert terminal.exit_code() == 0


def test_follows_changes_and_survives_garbage(terminal: Terminal, workdir: Path) -> None:
    # A fake daemon that sends a snapshot, a broken line, then a newer snapshot.
    import json

    sock = workdir / "status.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock))
    server.listen(1)
    proceed, proceed_more = threading.Event(), threading.Event()
    state = three_bay_snapshot()

    def daemon() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(json.dumps(state).encode() + b"\n")
            proceed.wait(20)
            conn.sendall(b"\x1b[2J{not json\n")
            proceed_more.wait(20)
            later = three_bay_snapshot()
            later["bays"][0]["progress"].update(files_done=39, bytes_done=3_350_000_000,
                                                seconds_left=2.0)
            conn.sendall(json.dumps(later).encode() + b"\n")
            time.sleep(20)

    thread = threading.Thread(target=daemon, daemon=True)
    thread.start()
    try:
        terminal.start(console_argv(sock), "C.UTF-8")
        terminal.wait_for("35 % · 12/40 files")
        proceed.set()
        screen = terminal.wait_for("ignored a line from dockd that is not valid JSON", "35 %")
        assert "Battery low — charge before the shift" in screen  # the screen was not cleared
        proceed_more.set()
        screen = terminal.wait_for("99 % · 39/40 files", "3.4 GB of 3.4 GB · 25.0 MB/s · 2 s left")
        assert "not valid JSON" not in screen
        terminal.tmux("send-keys", "q")
        assert terminal.exit_code() == 0
    finally:
        server.close()
