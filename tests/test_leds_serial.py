"""The serial LED driver over a real pty against the simulated bay controller board."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.config.leds import DOCK, SerialBoardSpec
from dockd.report.leds.pattern import (
    CHECKING,
    DOCK_FAULT,
    DOCK_ONLINE,
    READY,
    RECORDER_FAULT,
    Colour,
    LedPattern,
    Mode,
)
from dockd.report.leds.serial_board import SerialBoardDriver
from dockd.sim.led_board import SimulatedLedBoard

ACK_TIMEOUT = 0.1
RECONNECT = 0.05


class Rig:
    def __init__(self, tmp_path: Path, plug: bool = True, **board: object) -> None:
        self.link = tmp_path / "dev" / "serial" / "by-id" / "usb-dockd_ledboard-if00"
        self.board = SimulatedLedBoard(self.link, **board)  # type: ignore[arg-type]
        if plug:
            self.board.plug()
        self.faults: list[str] = []
        self.recoveries: list[str] = []
        spec = SerialBoardSpec(port=self.link, ack_timeout_s=ACK_TIMEOUT, retries=2,
                               reconnect_interval_s=RECONNECT)
        self.driver = SerialBoardDriver(spec, self.faults.append, self.recoveries.append)

    def reconnect(self) -> None:
        """Let the reconnect interval pass and run the worker's upkeep."""
        time.sleep(RECONNECT * 1.5)
        self.driver.maintain()

    def close(self) -> None:
        self.driver.close()
        self.board.unplug()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(tmp_path)
    yield rig
    rig.close()


def test_acknowledged_command_lights_the_bay(rig: Rig) -> None:
    assert rig.driver.show(1, READY)
    assert rig.board.leds() == {1: READY}
    assert rig.driver.stats["retries"] == 0
    assert rig.faults == []


def test_dropped_ack_is_retried_with_the_same_seq(rig: Rig) -> None:
    rig.driver.show(1, READY)
    rig.board.drop_acks(1)
    started = time.monotonic()
    assert rig.driver.show(1, CHECKING)
    assert time.monotonic() - started >= ACK_TIMEOUT
    assert rig.driver.stats["retries"] == 1
    last_two = rig.board.commands[-2:]
    assert last_two[0] == last_two[1] and last_two[0].pattern == CHECKING
    assert rig.faults == []


def test_late_ack_is_recognised_as_stale(rig: Rig) -> None:
    rig.board.delay_acks(ACK_TIMEOUT * 2.5)
    assert rig.driver.show(1, READY)  # the retry's prompt ack counts
    time.sleep(ACK_TIMEOUT * 3)  # now the late ack of the first attempt is waiting
    assert rig.driver.show(2, CHECKING)
    assert rig.driver.stats["stale_acks"] == 1
    assert rig.board.leds() == {1: READY, 2: CHECKING}


def test_duplicated_ack_does_not_confirm_the_next_command(rig: Rig) -> None:
    rig.board.duplicate_acks(1)
    assert rig.driver.show(1, READY)
    rig.board.drop_acks(1)  # if the duplicate were taken for this ack, no retry would happen
    assert rig.driver.show(1, RECORDER_FAULT)
    assert rig.driver.stats["stale_acks"] == 1
    assert rig.driver.stats["retries"] == 1


def test_garbled_ack_is_retried(rig: Rig) -> None:
    rig.board.garble_acks(1)
    assert rig.driver.show(3, DOCK_FAULT)
    assert rig.driver.stats["garbled"] == 1
    assert rig.driver.stats["retries"] == 1
    assert rig.board.leds()[3] == DOCK_FAULT


def test_garbled_command_is_refused_by_the_board_and_resent(rig: Rig) -> None:
    rig.board.garble_commands(1)
    started = time.monotonic()
    assert rig.driver.show(1, READY)
    # "ERR - BADCMD" triggers the retry at once, without waiting for the ack timeout.
    assert time.monotonic() - started < ACK_TIMEOUT
    assert rig.board.bad_lines == 1
    assert rig.board.leds() == {1: READY}


def test_mute_board_is_a_fault_then_reopened_and_resynced(rig: Rig) -> None:
    assert rig.driver.show(1, READY)
    rig.board.mute()
    assert rig.driver.show(2, CHECKING) is False
    assert len(rig.faults) == 1
    assert "no acknowledgement of bay 2 after 3 attempts" in rig.faults[0]
    assert not rig.driver.connected
    rig.board.mute(False)
    rig.reconnect()
    assert rig.driver.connected
    assert rig.board.leds() == {1: READY, 2: CHECKING}
    assert len(rig.recoveries) == 1


def test_unplug_and_replug_resends_every_bay(rig: Rig) -> None:
    for bay, pattern in ((1, READY), (2, CHECKING), (3, RECORDER_FAULT)):
        assert rig.driver.show(bay, pattern)
    assert rig.driver.show(DOCK, DOCK_ONLINE)
    rig.board.unplug()
    assert rig.driver.show(2, READY) is False  # changed while unplugged
    assert len(rig.faults) == 1 and "is gone" in rig.faults[0]
    rig.reconnect()  # the link is gone: cannot open, still one fault for this outage
    assert not rig.driver.connected and len(rig.faults) == 1
    rig.board.plug()
    assert rig.board.leds() == {}
    rig.reconnect()
    assert rig.board.leds() == {1: READY, 2: READY, 3: RECORDER_FAULT, DOCK: DOCK_ONLINE}
    assert len(rig.recoveries) == 1


def test_board_absent_at_start_then_plugged(tmp_path: Path) -> None:
    rig = Rig(tmp_path, plug=False)
    try:
        assert rig.driver.show(1, READY) is False
        assert "cannot open the LED board" in rig.faults[0]
        rig.board.plug()
        rig.reconnect()
        assert rig.board.leds() == {1: READY}
    finally:
        rig.close()


def test_restarted_board_says_hello_and_gets_everything_again(rig: Rig) -> None:
    assert rig.driver.show(1, READY) and rig.driver.show(2, CHECKING)
    rig.board.reset()
    assert rig.board.leds() == {}
    time.sleep(0.05)
    rig.driver.maintain()
    assert rig.board.leds() == {1: READY, 2: CHECKING}


def test_board_without_dock_led(tmp_path: Path) -> None:
    rig = Rig(tmp_path, dock_led=False, bays=2)
    try:
        assert rig.driver.show(DOCK, DOCK_ONLINE) is False
        assert not rig.driver.has_target(DOCK)
        assert rig.faults == []  # no dock LED is a fitting, not a fault
        assert rig.driver.show(9, READY) is False
        assert len(rig.faults) == 1
        assert "refused bay 9 green/steady: BADBAY" in rig.faults[0]
    finally:
        rig.close()


def test_board_spewing_garbage_only_is_a_fault_never_an_exception(rig: Rig) -> None:
    assert rig.driver.show(1, CHECKING)  # port open: opening flushes what came before
    rig.board.mute()
    rig.board.send_raw(bytes(range(256)) * 8 + b"\n" + b"\xff" * 500 + b"\nOK x\nERR 1\n")
    assert rig.driver.show(1, READY) is False
    assert rig.driver.stats["garbled"] >= 2
    assert len(rig.faults) == 1


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise=st.binary(max_size=400), colour=st.sampled_from([Colour.RED, Colour.GREEN]))
def test_random_bytes_from_the_board_never_crash_the_driver(
        rig: Rig, noise: bytes, colour: Colour) -> None:
    pattern = LedPattern(colour, Mode.BLINK, 300, 700)
    rig.board.send_raw(noise)
    # The noise may end mid-line; the board's next reply then shares its line and is lost,
    # which the retry covers. Whatever the noise, the driver never raises.
    result = rig.driver.show(1, pattern)
    if result:
        assert rig.board.leds()[1] == pattern
    else:
        assert rig.faults, "a failed show must be reported"
