"""The pure LED pattern function: every state, every fault reason, progress, broker link."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockd.dock.states import BayState, BayStatus, FaultReason, Progress
from dockd.report.leds.pattern import (
    CHECKING,
    DOCK_FAULT,
    DOCK_OFFLINE,
    DOCK_ONLINE,
    LED_OFF,
    READY,
    READY_OFFLINE,
    READY_UNCHECKED,
    READY_UNCHECKED_OFFLINE,
    RECORDER_FAULT,
    Colour,
    LedPattern,
    Mode,
    dock_pattern,
    led_pattern,
    offload_percent,
)

RECORDER_REASONS = [r for r in FaultReason if not r.is_dock_problem]
DOCK_REASONS = [r for r in FaultReason if r.is_dock_problem]


def status(state: BayState, fault: FaultReason | None = None,
           progress: Progress | None = None) -> BayStatus:
    return BayStatus(bay=1, label="Bay 1", state=state, fault=fault,
                     progress=progress or Progress())


@pytest.mark.parametrize("online", [True, False])
def test_empty_bay_is_dark(online: bool) -> None:
    assert led_pattern(status(BayState.EMPTY), online) == LED_OFF


@pytest.mark.parametrize("state", [BayState.IDENTIFYING, BayState.CHECKING])
@pytest.mark.parametrize("online", [True, False])
def test_identifying_and_checking_blink_amber(state: BayState, online: bool) -> None:
    pattern = led_pattern(status(state), online)
    assert pattern == CHECKING
    assert (pattern.colour, pattern.mode, pattern.on_ms, pattern.off_ms) == \
        (Colour.AMBER, Mode.BLINK, 500, 500)


def test_offloading_pulses_amber_with_progress_by_bytes() -> None:
    pattern = led_pattern(status(BayState.OFFLOADING, progress=Progress(
        files_done=1, files_total=10, bytes_done=750, bytes_total=1000)), True)
    assert (pattern.colour, pattern.mode, pattern.progress) == (Colour.AMBER, Mode.PULSE, 75)
    # Where only blinking exists, offloading must still differ from checking.
    assert (pattern.on_ms, pattern.off_ms) != (CHECKING.on_ms, CHECKING.off_ms)


def test_offload_progress_falls_back_to_files_then_unknown() -> None:
    assert offload_percent(Progress(files_done=1, files_total=4)) == 25
    assert offload_percent(Progress()) is None
    # Counters that overshoot (a file grew while copying) never leave 0-100.
    assert offload_percent(Progress(bytes_done=5000, bytes_total=1000)) == 100


@pytest.mark.parametrize("online,expected", [(True, READY), (False, READY_OFFLINE)])
def test_ready_is_green_and_winks_while_the_broker_is_offline(
        online: bool, expected: LedPattern) -> None:
    pattern = led_pattern(status(BayState.READY), online)
    assert pattern == expected
    assert pattern.colour is Colour.GREEN
    if not online:
        # Mostly on: still reads as green, the short gap says "not reporting".
        assert pattern.mode is Mode.BLINK and pattern.on_ms > 10 * pattern.off_ms


@pytest.mark.parametrize("online,expected", [(True, READY_UNCHECKED),
                                             (False, READY_UNCHECKED_OFFLINE)])
def test_ready_unchecked_is_never_green_and_differs_from_every_waiting_state(
        online: bool, expected: LedPattern) -> None:
    pattern = led_pattern(status(BayState.READY_UNCHECKED), online)
    assert pattern == expected
    assert pattern.colour is Colour.AMBER
    # Told apart from checking (even blink) and offloading (pulse) by mode or rhythm, also
    # on hardware that can only blink.
    waiting = [led_pattern(status(s), online) for s in (BayState.CHECKING, BayState.OFFLOADING)]
    for other in waiting:
        assert (pattern.mode, pattern.on_ms, pattern.off_ms) != \
            (other.mode, other.on_ms, other.off_ms)
    if online:
        assert pattern.mode is Mode.STEADY
    else:
        assert pattern.mode is Mode.BLINK and pattern.on_ms > 10 * pattern.off_ms


@pytest.mark.parametrize("reason", RECORDER_REASONS)
@pytest.mark.parametrize("online", [True, False])
def test_recorder_problem_blinks_red_slowly(reason: FaultReason, online: bool) -> None:
    assert led_pattern(status(BayState.FAULT, reason), online) == RECORDER_FAULT


@pytest.mark.parametrize("reason", DOCK_REASONS)
@pytest.mark.parametrize("online", [True, False])
def test_dock_problem_blinks_red_fast(reason: FaultReason, online: bool) -> None:
    assert led_pattern(status(BayState.FAULT, reason), online) == DOCK_FAULT


def test_fault_classes_are_told_apart() -> None:
    assert RECORDER_REASONS and DOCK_REASONS
    assert RECORDER_FAULT.colour is DOCK_FAULT.colour is Colour.RED
    assert RECORDER_FAULT.on_ms >= 4 * DOCK_FAULT.on_ms


def test_fault_without_reason_is_shown_as_dock_problem() -> None:
    assert led_pattern(status(BayState.FAULT, None), True) == DOCK_FAULT


def test_dock_led_shows_broker_link() -> None:
    assert dock_pattern(True) == DOCK_ONLINE
    assert dock_pattern(False) == DOCK_OFFLINE
    assert DOCK_ONLINE != DOCK_OFFLINE


@pytest.mark.parametrize("kwargs", [
    {"colour": Colour.RED, "mode": Mode.OFF},
    {"colour": Colour.OFF, "mode": Mode.STEADY},
    {"colour": Colour.RED, "mode": Mode.BLINK, "on_ms": 0, "off_ms": 100},
    {"colour": Colour.RED, "mode": Mode.STEADY, "progress": 101},
])
def test_inconsistent_patterns_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LedPattern(**kwargs)  # type: ignore[arg-type]


counts = st.integers(min_value=-(2**63), max_value=2**63)


@given(state=st.sampled_from(BayState), fault=st.none() | st.sampled_from(FaultReason),
       online=st.booleans(), files=st.tuples(counts, counts), sizes=st.tuples(counts, counts))
def test_any_status_gives_a_valid_pattern(state: BayState, fault: FaultReason | None,
                                          online: bool, files: tuple[int, int],
                                          sizes: tuple[int, int]) -> None:
    progress = Progress(files_done=files[0], files_total=files[1],
                        bytes_done=sizes[0], bytes_total=sizes[1])
    pattern = led_pattern(status(state, fault, progress), online)
    assert (pattern.mode is Mode.OFF) == (state is BayState.EMPTY)
    assert pattern.progress is None or 0 <= pattern.progress <= 100
    assert (pattern.colour is Colour.RED) == (state is BayState.FAULT)
