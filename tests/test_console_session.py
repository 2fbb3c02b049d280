"""``dockd console``'s line handling (``ConsoleSession``) and the ``status``/``console``
commands run as real subprocesses against a real state channel."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockd.report.console import ConsoleSession
from dockd.report.state_channel import LineTooLongError, StateChannel
from tests.conftest import run_dockd
from tests.test_console_view import three_bay_snapshot


class FixedClock:
    def now(self) -> dt.datetime:
        return dt.datetime(2026, 11, 28, 18, 20, 5, tzinfo=dt.UTC)

    def monotonic(self) -> float:
        return 0.0


def session(max_line: int = 1 << 20) -> ConsoleSession:
    s = ConsoleSession("S", FixedClock(), max_line=max_line)
    s.on_connect()
    return s


def test_only_the_newest_whole_line_is_taken() -> None:
    s = session()
    assert s.feed(b'{"n": 1}\n{"n": 2}\n{"n": 3') is True
    assert s.state == {"n": 2}  # "3" is not complete yet
    assert s.feed(b"}\n") is True
    assert s.state == {"n": 3}
    assert s.feed(b'{"n": 4') is False and s.state == {"n": 3}


def test_a_line_split_into_single_bytes_is_put_together() -> None:
    s = session()
    line = json.dumps(three_bay_snapshot(), ensure_ascii=False).encode() + b"\n"
    results = [s.feed(line[i:i + 1]) for i in range(len(line))]
    assert results[-1] is True and not any(results[:-1])
    assert s.state == three_bay_snapshot()


def test_a_bad_line_keeps_the_last_good_state_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(key, raising=False)
    s = session()
    s.feed(b'{"n": 1}\n')
    assert s.feed(b"\xff\xfe{{{\n") is True
    assert s.state == {"n": 1}
    assert s.detail == "ignored a line from dockd that is not valid JSON"
    s.feed(b'{"n": 2}\n')
    assert s.state == {"n": 2} and s.detail is None


def test_a_line_that_never_ends_is_refused() -> None:
    s = session(max_line=1000)
    s.feed(b"x" * 999)
    with pytest.raises(LineTooLongError):
        s.feed(b"x" * 2)


def test_disconnect_keeps_the_state_and_when_it_arrived() -> None:
    s = session()
    s.feed(b'{"n": 1}\n{"n": 2')
    s.on_disconnect("connection closed")
    assert s.state == {"n": 1} and not s.connected and s.detail == "connection closed"
    assert s.received_at is not None and len(s.received_at) == 8  # local HH:MM:SS
    s.on_connect()
    s.feed(b'}\n')  # the half line of the old connection must not be glued to the new one
    assert s.state == {"n": 1}


@given(st.lists(st.binary(max_size=300), max_size=30))
def test_random_bytes_never_crash_and_never_yield_a_partial_line(chunks: list[bytes]) -> None:
    s = session(max_line=2000)
    complete = {None}
    stream = b""
    for chunk in chunks:
        stream += chunk
        try:
            s.feed(chunk)
        except LineTooLongError:
            return
        for line in stream.split(b"\n")[:-1]:
            with contextlib.suppress(ValueError):
                complete.add(json.dumps(json.loads(line), sort_keys=True))
        assert (None if s.state is None else json.dumps(s.state, sort_keys=True)) in complete
        s.view(100)  # and whatever it holds can be drawn


# -- the commands -------------------------------------------------------------------------------


@pytest.fixture
def channel() -> Iterator[StateChannel]:
    path = Path(f"/tmp/dockd-cs-{os.getpid()}-{threading.get_ident() % 10**6}.sock")
    ch = StateChannel(path, three_bay_snapshot)
    ch.start()
    yield ch
    ch.stop()


ENGLISH = {"LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8", "COLUMNS": "180"}


def test_dockd_status_prints_the_table(channel: StateChannel) -> None:
    result = run_dockd(["status", "--socket", channel.path], env=ENGLISH)
    assert result.returncode == 0, result.stderr
    assert "Battery low — charge before the shift" in result.stdout
    assert "Offloading" in result.stdout and "GAT947-000123" in result.stdout
    assert "\x1b" not in result.stdout


def test_dockd_status_in_chinese(channel: StateChannel) -> None:
    result = run_dockd(["status", "--socket", channel.path], env={**ENGLISH, "LANG": "zh_CN.UTF-8"})
    assert result.returncode == 0, result.stderr
    assert "电量低——请充电后再领用" in result.stdout and "采集中" in result.stdout


def test_dockd_status_json_is_the_raw_state(channel: StateChannel) -> None:
    result = run_dockd(["status", "--socket", channel.path, "--json"], env=ENGLISH)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == three_bay_snapshot()


def test_dockd_status_without_a_daemon(tmp_path: Path) -> None:
    result = run_dockd(["status", "--socket", tmp_path / "none.sock"], env=ENGLISH)
    assert result.returncode == 69
    assert f"dockd is not answering on {tmp_path / 'none.sock'}" in result.stderr


def test_dockd_console_refuses_a_pipe(channel: StateChannel) -> None:
    result = run_dockd(["console", "--socket", channel.path], env=ENGLISH)
    assert result.returncode == 2
    assert "dockd console needs a terminal" in result.stderr
