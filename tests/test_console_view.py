"""The console's rendering: ``dockd status`` text and live frames, English and Chinese.

Snapshots are built with the daemon's own ``BayStatus.to_json_dict`` and ``BrokerState``, so a
change to the state channel's JSON shows up here.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
import string
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from dockd.dock.reporting import BrokerState
from dockd.dock.states import BayState, BayStatus, FaultReason, Progress
from dockd.i18n import in_language
from dockd.report.console_model import clean_text, parse_state
from dockd.report.console_view import LinkView, render_console, render_status_text
from dockd.report.console_words import fault_sentence, format_duration, is_dock_fault

REPO = Path(__file__).resolve().parent.parent
CONSOLE_MODULES = ["console_words.py", "console_view.py", "console.py"]
PO_FILE = REPO / "dockd/locale/zh_CN/LC_MESSAGES/dockd.po"
LANG_KEYS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def three_bay_snapshot(broker_connected: bool = False) -> dict[str, Any]:
    """Bay 1 offloading with progress, bay 2 ready, bay 3 fault(battery_low)."""
    bays = [
        BayStatus(1, "1", BayState.OFFLOADING, recorder="GAT947-000123", officer="Zhang Wei 张伟",
                  battery_percent=81, storage_free_bytes=20_000_000_000,
                  storage_total_bytes=64_000_000_000, clock_drift_s=1.3,
                  progress=Progress(12, 40, 1_200_000_000, 3_400_000_000, 25_000_000.0),
                  updated_at="2026-11-28T18:20:00Z"),
        BayStatus(2, "2", BayState.READY, recorder="AMBA-A9-77", officer="Li Na", battery_percent=100,
                  storage_free_bytes=60_000_000_000, storage_total_bytes=64_000_000_000,
                  clock_drift_s=-0.2),
        BayStatus(3, "3", BayState.FAULT, FaultReason.BATTERY_LOW, recorder="GAT947-000999",
                  officer="Wang Fang", battery_percent=7, storage_free_bytes=60_000_000_000,
                  storage_total_bytes=64_000_000_000, clock_drift_s=0.0),
    ]
    broker = BrokerState("mqtts://broker.example:8883", connected=broker_connected,
                         error=None if broker_connected else "TLS: wrong CA")
    dock = {"id": "D-0427", "site": "Weixian", "version": "0.1.0", "time": "2026-11-28T18:20:00Z",
            "store_free_bytes": 412_300_000_000, "store_total_bytes": 1_000_000_000_000,
            "clock_synchronised": True, "outbox_depth": 3, "broker": broker.to_json_dict(),
            "public_key": "ab" * 32}
    return {"v": 1, "dock": dock, "bays": [b.to_json_dict() for b in bays]}


@pytest.fixture
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in LANG_KEYS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in LANG_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")


SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def test_console_shows_the_dock_time_in_the_configured_zone(english: None) -> None:
    link = LinkView("/run/dockd/status.sock", True)
    assert "2026-11-29 02:20:00" in frame_text(three_bay_snapshot(), link, tz=SHANGHAI)
    assert "2026-11-28 18:20:00" in frame_text(three_bay_snapshot(), link, tz=dt.UTC)
    garbled = three_bay_snapshot()
    garbled["dock"]["time"] = "yesterday"  # not a time: shown as sent, never a crash
    assert "yesterday" in frame_text(garbled, link, tz=SHANGHAI)


def squash(text: str) -> str:
    """Rendered text with runs of spaces made one (table padding varies with width)."""
    return re.sub(r"[ \t]+", " ", text)


def frame_text(state: object, link: LinkView, width: int = 150,
               tz: dt.tzinfo | None = None) -> str:
    console = Console(width=width, color_system=None, force_terminal=False, record=True,
                      file=open("/dev/null", "w"), _environ={})  # noqa: SIM115
    console.print(render_console(state, link, width, tz))
    console.file.close()
    return console.export_text()


# -- dockd status text --------------------------------------------------------------------------


def _offloading_before_the_count() -> str:
    snapshot = three_bay_snapshot()
    bay = BayStatus(1, "1", BayState.OFFLOADING, recorder="GAT947-000123",
                    progress=Progress(37, 0, 2_400_000, 0, 25_000_000.0))
    snapshot["bays"] = [bay.to_json_dict()]
    return squash(render_status_text(snapshot, width=180, tz=SHANGHAI))


def test_progress_before_the_volume_is_counted_shows_what_is_done(english: None) -> None:
    # dockd copies while it still counts the volume: a total of 0 is not yet known.
    text = _offloading_before_the_count()
    assert "37 files · 2.4 MB · 25.0 MB/s" in text
    assert "37/0" not in text and "of 0 B" not in text


def test_progress_before_the_volume_is_counted_in_chinese(chinese: None) -> None:
    text = _offloading_before_the_count()
    assert "37 个文件 · 2.4 MB · 25.0 MB/秒" in text


def test_status_text_shows_every_bay_and_the_dock_line(english: None) -> None:
    text = squash(render_status_text(three_bay_snapshot(), width=180, tz=SHANGHAI))
    assert "Dock D-0427 Weixian 2026-11-29 02:20:00" in text  # 18:20 UTC, in [dock] timezone
    assert "Store: 412.3 GB free of 1.0 TB" in text
    assert "Broker: offline: TLS: wrong CA" in text
    assert "Clock: synchronised" in text
    assert "Outbox: 3 waiting" in text
    lines = text.splitlines()
    bay1 = next(line for line in lines if line.startswith("1 "))
    assert "Offloading GAT947-000123 Zhang Wei 张伟 81 % 20.0 GB / 64.0 GB +1.3 s" in bay1
    # 2.2 GB left at 25 MB/s: 88 s.
    assert "35 % · 12/40 files · 1.2 GB of 3.4 GB · 25.0 MB/s · 1 min 28 s left" in text
    bay2 = next(line for line in lines if line.startswith("2 "))
    assert "Ready AMBA-A9-77 Li Na 100 %" in bay2 and "−0.2 s" in bay2
    assert "Ready — you may take this recorder" in bay2
    bay3 = next(line for line in lines if line.startswith("3 "))
    assert "Fault GAT947-000999 Wang Fang 7 %" in bay3
    assert "Battery low — charge before the shift" in bay3


def test_status_text_in_chinese(chinese: None) -> None:
    text = squash(render_status_text(three_bay_snapshot(broker_connected=True), width=180,
                                     tz=SHANGHAI))
    assert "2026年11月29日 02:20:00" in text
    for words in ("采集站 D-0427", "证据存储：剩余 412.3 GB，共 1.0 TB", "上报服务器：已连接", "时钟：已同步",
                  "待发消息：3 条", "仓位", "状态", "记录仪", "执法人员", "电量", "采集中", "就绪", "故障",
                  "12/40 个文件", "剩余 1 分 28 秒", "就绪——可以领用", "电量低——请充电后再领用"):
        assert words in text, words
    assert "Battery" not in text and "Ready" not in text


def test_ready_unchecked_names_the_checks_not_done_in_both_languages(
        monkeypatch: pytest.MonkeyPatch, english: None) -> None:
    state = three_bay_snapshot()
    state["bays"][1] = BayStatus(2, "2", BayState.READY_UNCHECKED, recorder="AMBA-B1-01",
                                 storage_free_bytes=60_000_000_000,
                                 storage_total_bytes=64_000_000_000,
                                 unchecked=("battery", "clock")).to_json_dict()
    text = squash(render_status_text(state, width=180))
    bay2 = next(line for line in text.splitlines() if line.startswith("2 "))
    assert "Ready (unchecked) AMBA-B1-01" in bay2
    assert "Not checked: battery, clock — check before the shift" in bay2
    assert "you may take" not in bay2
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    text = squash(render_status_text(state, width=180))
    assert "就绪（未全部检查）" in text and "未能检查：电量、时钟——领用前请自行检查" in text
    # what a daemon of another version might send is shown, never raised
    state["bays"][1]["unchecked"] = ["battery", 7, "\x1b[2Jspare", None]
    text = render_status_text(state, width=180)
    assert "\x1b" not in text and "电量、\ufffd[2Jspare" in text


def test_narrow_status_puts_what_to_do_below_the_table(english: None) -> None:
    text = render_status_text(three_bay_snapshot(), width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "Bay 3: Battery low — charge before the shift" in squash(text)
    assert "Bay 1: 35 % · 12/40 files" in squash(text)
    # the dock line is split into its parts rather than broken mid-phrase
    assert "Clock: synchronised" in text.splitlines()


def test_status_text_has_no_escape_sequences_even_from_hostile_names(english: None) -> None:
    state = three_bay_snapshot()
    state["bays"][0]["officer"] = "\x1b[2J\x1b]0;owned\x07[bold red]x[/]"
    state["bays"][1]["recorder"] = "\u202eevil\r\nline"
    text = render_status_text(state, width=150)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text and "\r" not in text
    assert "[bold red]x[/]" in text  # shown as typed, not taken as markup
    assert "evil\ufffd\ufffdline" in text  # one row: the line break did not reach the table


def test_empty_dock_and_garbage_say_so(english: None) -> None:
    assert "No bays yet." in render_status_text({"v": 1, "dock": {}, "bays": []}, width=120)
    text = render_status_text(["not", "a", "dict"], width=120)
    assert "Part of the state could not be read: snapshot is not a JSON object" in text
    text = render_status_text({"v": 7, "dock": {}, "bays": [1, {"bay": 2, "state": "ready"}]}, 120)
    assert "unknown snapshot version 7" in text and "a bay entry is not a JSON object" in text


def test_broker_disabled_and_clock_unsynchronised(english: None) -> None:
    state = three_bay_snapshot()
    state["dock"]["broker"] = {"state": "disabled"}
    state["dock"]["clock_synchronised"] = False
    state["dock"]["outbox_depth"] = 0
    text = squash(render_status_text(state, width=150))
    assert "Broker: not configured" in text
    assert "Clock: NOT synchronised — call the administrator" in text
    assert "Outbox: 0 waiting" in text


# -- fault sentences ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", list(FaultReason))
def test_every_fault_reason_has_its_own_sentence_in_both_languages(
        reason: FaultReason, monkeypatch: pytest.MonkeyPatch, english: None) -> None:
    english_text = fault_sentence(reason.value)
    assert reason.value not in english_text and "—" in english_text
    assert english_text != fault_sentence(None)
    if reason.is_dock_problem:
        assert english_text.endswith("call the administrator")
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    chinese_text = fault_sentence(reason.value)
    assert chinese_text != english_text and re.search(r"[\u4e00-\u9fff]", chinese_text)
    if reason.is_dock_problem:
        assert chinese_text.endswith("请联系管理员")


def test_fault_without_or_with_unknown_reason_is_a_dock_problem(english: None) -> None:
    assert fault_sentence(None) == "Fault — call the administrator"
    assert fault_sentence("melted") == "Fault (melted) — call the administrator"
    assert is_dock_fault(None) and is_dock_fault("melted") and is_dock_fault("store_full")
    assert not is_dock_fault("battery_low")


def test_fault_sentence_in_the_live_frame(english: None) -> None:
    state = three_bay_snapshot()
    state["bays"][2]["fault"] = "store_full"
    text = squash(frame_text(state, LinkView("/run/dockd/status.sock", True)))
    assert "Dock evidence store is full — call the administrator" in text
    assert "● live from /run/dockd/status.sock" in text


def test_live_frame_has_a_progress_bar_and_link_states(english: None) -> None:
    state = three_bay_snapshot()
    text = frame_text(state, LinkView("S", True))
    assert "━" in text and "25.0 MB/s" in text and "1 min 28 s left" in text
    text = squash(frame_text(None, LinkView("S", False, "No such file or directory")))
    assert "Waiting for dockd on S … (No such file or directory)" in text
    text = squash(frame_text(state, LinkView("S", False, "connection closed", "18:20:05")))
    assert "dockd is not answering on S — showing the state of 18:20:05, retrying" in text
    assert "Battery low — charge before the shift" in text  # the last state stays on screen
    assert "Press q to quit" in text


@pytest.mark.parametrize(("seconds", "words"), [
    (0.2, "1 s"), (59, "59 s"), (60, "1 min 00 s"), (88.0, "1 min 28 s"), (3599.5, "1 h 00 min"),
    (7440, "2 h 04 min"), (10**9, "more than 99 h")])
def test_durations(seconds: float, words: str, english: None) -> None:
    assert format_duration(seconds) == words


# -- translations -------------------------------------------------------------------------------


def console_msgids() -> list[str]:
    ids = []
    for name in CONSOLE_MODULES:
        tree = ast.parse((REPO / "dockd/report" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_":
                assert isinstance(node.args[0], ast.Constant), f"{name}: _() of a non-literal"
                ids.append(node.args[0].value)
    return ids


def test_every_console_message_is_translated_with_the_same_placeholders() -> None:
    ids = console_msgids()
    assert len(ids) > 50
    fields = string.Formatter()
    for msgid in ids:
        translated = in_language("zh_CN", msgid)
        assert translated != msgid, f"no zh_CN translation for {msgid!r}"
        want = sorted((f, s) for _, f, s, _ in fields.parse(msgid) if f is not None)
        got = sorted((f, s) for _, f, s, _ in fields.parse(translated) if f is not None)
        assert got == want, f"placeholders differ in {msgid!r} → {translated!r}"


def test_compiled_catalog_matches_the_po_file() -> None:
    # The .mo is what runs; a .po edited without recompiling must not slip through.
    for msgid, msgstr in parse_po(PO_FILE.read_text()).items():
        if msgid and msgstr:
            assert in_language("zh_CN", msgid) == msgstr, f"dockd.mo is stale for {msgid!r}"


def parse_po(text: str) -> dict[str, str]:
    """msgid → msgstr of a .po file (singular entries; enough to check the compiled file)."""
    entries: dict[str, str] = {}
    key: str | None = None
    current: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        match = re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) (".*")$', line)
        if match:
            key = match.group(1)
            if key in ("msgid", "msgctxt") and "msgstr" in current:
                _flush(current, entries)
                current = {}
            current[key] = ast.literal_eval(match.group(2))
        elif line.startswith('"') and key is not None:
            current[key] += ast.literal_eval(line)
    _flush(current, entries)
    return entries


def _flush(entry: dict[str, str], entries: dict[str, str]) -> None:
    if "msgid" in entry and "msgstr" in entry and "msgctxt" not in entry and "msgid_plural" not in entry:
        entries[entry["msgid"]] = entry["msgstr"]


# -- property tests: whatever arrives, the view draws it ----------------------------------------

json_leaf = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**400)
             | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=80))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
BAY_KEYS = ["bay", "label", "state", "fault", "recorder", "officer", "battery_percent",
            "storage_free_bytes", "storage_total_bytes", "clock_drift_s", "progress", "updated_at",
            "unchecked"]
PROGRESS_KEYS = ["files_done", "files_total", "bytes_done", "bytes_total", "rate_bytes_per_s",
                 "seconds_left"]
state_names = st.sampled_from([s.value for s in BayState] + ["", "weird"])
fault_names = st.sampled_from([f.value for f in FaultReason] + [None, "weird"])


@st.composite
def mangled_snapshots(draw: st.DrawFn) -> object:
    """A real snapshot with keys dropped and values swapped for random JSON."""
    state = three_bay_snapshot()
    for bay in state["bays"]:
        bay["state"] = draw(state_names)
        bay["fault"] = draw(fault_names)
        for key in draw(st.lists(st.sampled_from(BAY_KEYS), max_size=5)):
            if draw(st.booleans()):
                bay.pop(key, None)
            else:
                bay[key] = draw(json_value)
        if isinstance(bay.get("progress"), dict):
            for key in draw(st.lists(st.sampled_from(PROGRESS_KEYS), max_size=3)):
                bay["progress"][key] = draw(json_value)
    for key in draw(st.lists(st.sampled_from(list(state["dock"])), max_size=4)):
        state["dock"][key] = draw(json_value)
    if draw(st.integers(0, 9)) == 0:
        return draw(json_value)
    return state


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled_snapshots(), st.integers(min_value=40, max_value=200))
def test_any_snapshot_renders_without_escapes(state: object, width: int) -> None:
    text = render_status_text(state, width=width)
    assert "\x1b" not in text
    assert all(len(line) <= width for line in text.splitlines())
    frame_text(state, LinkView("S", True), width)
    view = parse_state(state)
    for bay in view.bays:
        for value in (bay.recorder, bay.officer, bay.label, bay.fault):
            assert value is None or len(value) <= 64


@given(st.text())
def test_clean_text_keeps_no_control_characters(text: str) -> None:
    cleaned = clean_text(text)
    assert cleaned is not None and len(cleaned) <= 64
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]", cleaned)


@pytest.mark.parametrize("lang,heading", [("en", "Bay 3: Battery low"), ("zh_CN", "3 号仓位: 电量低")])
def test_default_bay_labels_are_never_doubled(monkeypatch: pytest.MonkeyPatch, lang: str,
                                              heading: str) -> None:
    monkeypatch.setenv("LANGUAGE", lang)
    state = three_bay_snapshot()
    for bay in state["bays"]:
        bay["label"] = f"Bay {bay['bay']}"  # the config's default label
    state["bays"][1]["label"] = "左二"  # a label of the bureau's own stays as it is
    text = render_status_text(state, width=80)
    assert "Bay Bay" not in text and "仓位 Bay" not in text
    assert heading in squash(text)
    assert "左二" in text
    wide = render_status_text(state, width=180)
    assert "Bay 1" not in wide and "左二" in wide  # the table's column already says "Bay"
