"""Fast checks of the HIL harness parts that need no guest (run in the normal suite)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.report.state_channel import StateChannel

from .guest.agent import Agent
from .harness import Guest, HilError, HilSetupMissing, HilTimeout, UdevEvent, UdevEventLog
from .images import ImageError, build_fat32_image, list_image, read_image_file


def _event(action: str, sys_path: str) -> UdevEvent:
    return UdevEvent(action, sys_path, "block", "partition", None, {}, (), 0.0, 0.0)


def test_boot_without_kernel_fails_loudly_and_names_setup(tmp_path: Path) -> None:
    with pytest.raises(HilSetupMissing, match=r"vmlinuz.*tests/hil/setup\.sh"):
        Guest.boot(tmp_path / "g", cache_dir=tmp_path / "empty-cache")


def test_image_holds_label_and_exact_files(tmp_path: Path) -> None:
    files: dict[str, int | bytes] = {"DCIM/100MEDIA/VID00001.MP4": 123_457, "DCIM/META.TXT": b"x\n"}
    image = build_fat32_image(tmp_path / "a.img", label="CAM0042", files=files, seed=7)
    assert image.files == {"DCIM/100MEDIA/VID00001.MP4": 123_457, "DCIM/META.TXT": 2}
    assert list_image(image.path) == sorted(files)
    assert read_image_file(image.path, "DCIM/META.TXT") == b"x\n"
    again = build_fat32_image(tmp_path / "b.img", label="CAM0042", files=files, seed=7)
    video = "DCIM/100MEDIA/VID00001.MP4"
    digest = hashlib.sha256(read_image_file(image.path, video)).hexdigest()
    assert digest == hashlib.sha256(read_image_file(again.path, video)).hexdigest()
    # the label is in the FAT32 boot sector of the partition (offset 1 MiB + 0x47)
    with image.path.open("rb") as f:
        f.seek((1 << 20) + 0x47)
        assert f.read(11) == b"CAM0042    "


def test_image_rejects_bad_label_and_overflow(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="label"):
        build_fat32_image(tmp_path / "a.img", label="lower", files={})
    with pytest.raises(ImageError, match="mcopy failed"):
        build_fat32_image(tmp_path / "b.img", label="FULL", files={"BIG.BIN": 70 << 20})


def test_image_missing_file_raises(tmp_path: Path) -> None:
    image = build_fat32_image(tmp_path / "a.img", label="CAM1", files={})
    with pytest.raises(ImageError, match=r"NOPE\.TXT"):
        read_image_file(image.path, "NOPE.TXT")


def test_event_log_waits_for_later_event_and_honours_cursor() -> None:
    log = UdevEventLog()
    log._append(_event("add", "/sys/old"))
    mark = log.mark()
    timer = threading.Timer(0.05, log._append, args=(_event("add", "/sys/old"),))
    timer.start()
    found = log.wait_for(lambda e: e.sys_path == "/sys/old", timeout=5, after=mark)
    assert found is log.events()[1]  # the new one, not the equal event before the mark
    timer.join()


def test_event_log_timeout_lists_what_was_seen() -> None:
    log = UdevEventLog()
    log._append(_event("remove", "/sys/x"))
    with pytest.raises(HilTimeout, match="remove /sys/x"):
        log.wait_for(lambda e: e.action == "add", timeout=0.05)


def test_event_log_reports_a_dead_stream_instead_of_waiting() -> None:
    log = UdevEventLog()
    log._fail("EOF")
    with pytest.raises(HilError, match="ended: EOF"):
        log.wait_for(lambda e: True, timeout=30)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.sampled_from(["add", "remove", "change"]), max_size=20),
    st.integers(min_value=0, max_value=25),
)
def test_event_log_finds_first_match_after_cursor(actions: list[str], after: int) -> None:
    log = UdevEventLog()
    for i, action in enumerate(actions):
        log._append(_event(action, f"/sys/{i}"))
    expected = next((i for i, a in enumerate(actions) if i >= after and a == "add"), None)
    if expected is None:
        with pytest.raises(HilTimeout):
            log.wait_index(lambda e: e.action == "add", timeout=0.01, after=after)
    else:
        assert log.wait_index(lambda e: e.action == "add", timeout=0.01, after=after) == expected


class _Dock:
    """A state channel serving whatever `bays` holds now (what dockd's channel does)."""

    def __init__(self, path: Path) -> None:
        self.bays: list[dict[str, Any]] = [{"bay": 1, "state": "empty"}]
        self.channel = StateChannel(path, lambda: {"v": 1, "dock": {}, "bays": list(self.bays)})

    def set(self, state: str) -> None:
        self.bays = [{"bay": 1, "state": state}]
        self.channel.changed()


def _state_wait(path: Path, timeout: float = 10, **req: Any) -> dict[str, Any]:
    reply: dict[str, Any] = Agent(-1)._op_state_wait({"socket": str(path), "timeout": timeout,
                                                       **req})
    return reply


def test_agent_state_wait_sees_a_short_lived_state_pushed_by_the_channel(tmp_path: Path) -> None:
    dock = _Dock(tmp_path / "status.sock")
    dock.channel.start()
    try:
        def later() -> None:
            while dock.channel.client_count == 0:
                time.sleep(0.01)
            for state in ("identifying", "fault", "empty"):  # fault lasts one push
                dock.set(state)

        pusher = threading.Thread(target=later)
        pusher.start()
        reply = _state_wait(tmp_path / "status.sock", bay=1, states=["fault"])
        pusher.join()
    finally:
        dock.channel.stop()
    assert reply == {"matched": True, "snapshot": {"v": 1, "dock": {}, "bays": [
        {"bay": 1, "state": "fault"}]}}


def test_agent_state_wait_skips_the_snapshot_it_was_given(tmp_path: Path) -> None:
    dock = _Dock(tmp_path / "status.sock")
    dock.channel.start()
    try:
        first = _state_wait(tmp_path / "status.sock")["snapshot"]
        threading.Timer(0.2, dock.set, args=("identifying",)).start()
        reply = _state_wait(tmp_path / "status.sock", skip=first)
    finally:
        dock.channel.stop()
    assert first["bays"] == [{"bay": 1, "state": "empty"}]
    assert reply["matched"] and reply["snapshot"]["bays"] == [{"bay": 1, "state": "identifying"}]


def test_agent_state_wait_waits_for_the_socket_and_times_out_with_the_last_snapshot(
        tmp_path: Path) -> None:
    path = tmp_path / "status.sock"
    dock = _Dock(path)
    # dockd not started yet: the agent tries again until the channel answers
    threading.Timer(0.3, dock.channel.start).start()
    try:
        reply = _state_wait(path, timeout=1.5, bay=1, states=["ready"])
    finally:
        time.sleep(0.3)  # the timer has fired
        dock.channel.stop()
    assert reply == {"matched": False, "snapshot": {"v": 1, "dock": {}, "bays": [
        {"bay": 1, "state": "empty"}]}}
    assert _state_wait(tmp_path / "nothing.sock", timeout=0.3) == {"matched": False,
                                                                   "snapshot": None}
