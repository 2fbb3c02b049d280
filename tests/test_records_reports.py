"""Weekly (art. 12(2)) and supervision (art. 15-16) reports: the numbers from a real store
with dock-runtime events, and the text, JSON, CSV and PDF outputs in both languages."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
from pathlib import Path

import pytest

from dockd.records.holds import HoldRequest, add_hold
from dockd.records.periods import parse_week, previous_week
from dockd.records.reports import supervision_report, weekly_report
from dockd.store.events import FileFailed, SessionInterrupted, SessionStarted
from dockd.store.verify import verify_store
from tests.conftest import run_dockd
from tests.records_support import (
    T0,
    SettableClock,
    docked_event,
    enrol,
    fault_event,
    ingest,
    make_mp4,
    open_clocked_store,
)

TZ = dt.timezone(dt.timedelta(hours=8))
WEEK = "2026-W48"


@pytest.fixture
def week_store(tmp_path: Path, ffmpeg: str) -> Path:
    clock = SettableClock(T0 - dt.timedelta(days=10))
    store = open_clocked_store(tmp_path / "store", clock,
                               records={"utc_offset": "+08:00", "undocked_alert_hours": 48})
    ingest(store, tmp_path / "old", {"a.mp4": b"old"}, recorder="CAM003")  # before the week
    clock.t = T0
    enrol(store, "CAM001", "Hikvision", "DSJ-X1", "0451", "赵六")
    enrol(store, "CAM002", "Hikvision", "DSJ-X1", "0452", "孙八")  # never docked
    docked_event(store, "CAM001", "0451", "赵六")
    mp4 = make_mp4(tmp_path / "m" / "clip.mp4", seconds=3).read_bytes()
    ingest(store, tmp_path / "src", {"DCIM/clip.MP4": mp4, "DCIM/x.MP4": b"junk"})
    fault_event(store, "CAM001", "battery_low")
    clock.t = T0 + dt.timedelta(days=1)
    with store.catalog.transaction() as tx:  # an offload cut short, as the core records it
        tx.execute("INSERT INTO sessions (id, recorder, started_at, ended_at, result, reason,"
                   " failed) VALUES ('s-int', 'CAM001', ?, ?, 'interrupted', 'source_removed', 1)",
                   ("2026-11-24T01:00:00.000000Z", "2026-11-24T01:01:00.000000Z"))
        store.custody.record(tx, SessionStarted("s-int", "CAM001", "/mnt"), "test")
        store.custody.record(tx, FileFailed("CAM001", "s-int", "DCIM/y.MP4", "vanished", "gone"),
                             "test")
        store.custody.record(tx, SessionInterrupted("CAM001", {
            "session_id": "s-int", "recorder": "CAM001", "result": "interrupted",
            "reason": "source_removed"}), "test")
    add_hold(store, HoldRequest("recorder", "CAM001", "信访 2026-3", "chief"), "test")
    assert verify_store(store, "test").ok
    store.close()
    (tmp_path / "dockd.toml").write_text(
        f'[dock]\nstore_dir = "{tmp_path / "store"}"\n[records]\nutc_offset = "+08:00"\n',
        encoding="utf-8")
    return tmp_path


def _catalog(base: Path):
    from dockd.store.queries import open_catalog_read_only

    return open_catalog_read_only(base / "store")


def test_weekly_numbers(week_store: Path) -> None:
    catalog = _catalog(week_store)
    report = weekly_report(catalog, parse_week(WEEK, TZ), T0 + dt.timedelta(days=8), 48)
    catalog.close()
    rows = {(r.officer, r.recorder): r for r in report.rows}
    assert set(rows) == {("赵六", "CAM001")}  # CAM003's offload was in the week before
    r = rows[("赵六", "CAM001")]
    assert (r.docks, r.sessions, r.files, r.faults, r.files_without_length) == (1, 2, 2, 1, 1)
    assert 2.5 / 3600 < r.seconds / 3600 < 3.5 / 3600 and r.bytes > 1000
    overdue = {o.recorder: o for o in report.overdue}
    assert set(overdue) == {"CAM001", "CAM003"}  # week end: 7 and 17 days since the dock
    assert report.days[0].day == "2026-11-23" and len(report.days) == 7
    assert report.days[0].files == 2 and report.days[0].problems == 1


def test_supervision_numbers(week_store: Path) -> None:
    catalog = _catalog(week_store)
    report = supervision_report(catalog, parse_week(WEEK, TZ), T0 + dt.timedelta(days=8), 48)
    catalog.close()
    assert [i["ok"] for i in report.integrity] == [True]
    assert [f["session"] for f in report.offload_failures] == ["s-int"]
    assert [f["path"] for f in report.file_failures] == ["DCIM/y.MP4"]
    assert [f["reason"] for f in report.faults] == ["battery_low"]
    assert report.never_docked == ["CAM002"]
    assert [h.target for h in report.holds] == ["CAM001"]
    assert report.days[1].problems == 1  # the interrupted session on Tuesday


def test_previous_week_is_the_last_complete_one() -> None:
    monday = dt.datetime(2026, 11, 30, 0, 30, tzinfo=TZ)  # Monday of W49, local time
    assert previous_week(monday, TZ).label == WEEK
    assert previous_week(monday - dt.timedelta(hours=1), TZ).label == "2026-W47"


@pytest.mark.parametrize("lang,title,col", [("C", "Weekly report 2026-W48", "officer"),
                                            ("zh_CN.UTF-8", "周报 2026-W48", "执法人员")])
def test_weekly_text_and_csv_in_both_languages(week_store: Path, lang: str, title: str,
                                               col: str) -> None:
    env = {"LANGUAGE": "", "LC_ALL": lang, "LANG": lang}
    cfg = week_store / "dockd.toml"
    text = run_dockd(["report", "weekly", "--week", WEEK, "--config", cfg], env=env)
    assert text.returncode == 0, text.stderr
    assert title in text.stdout and "CAM001" in text.stdout
    out = run_dockd(["report", "weekly", "--week", WEEK, "--format", "csv", "--config", cfg],
                    env=env)
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0][0] == col and rows[1][:3] == ["赵六", "CAM001", "1"]


def test_json_and_pdf_outputs(week_store: Path) -> None:
    cfg = week_store / "dockd.toml"
    out = run_dockd(["report", "supervision", "--week", WEEK, "--format", "json",
                     "--config", cfg])
    data = json.loads(out.stdout)
    assert data["never_docked"] == ["CAM002"] and data["week"] == WEEK
    for kind in ("weekly", "supervision"):
        pdf = week_store / f"{kind}.pdf"
        done = run_dockd(["report", kind, "--week", WEEK, "--format", "pdf", "--out", pdf,
                          "--config", cfg], env={"LANGUAGE": "zh_CN"})
        assert done.returncode == 0, done.stderr
        text = "".join(subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True,
                                      text=True, check=True).stdout.split())
        assert ("周报" if kind == "weekly" else "监督检查报告") in text
        assert "11-23" in text  # the chart's day axis
        png = subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(week_store / kind)],
                             capture_output=True, check=False)
        assert png.returncode == 0
        done = run_dockd(["report", kind, "--format", "pdf", "--out", pdf, "--config", cfg])
        assert done.returncode == 2 and "already exists" in done.stderr


def test_bad_report_arguments(week_store: Path) -> None:
    cfg = week_store / "dockd.toml"
    for args, message in ((["--week", "2026-48"], "not an ISO week"),
                          (["--week", "2026-W54"], "not an ISO week"),
                          (["--format", "pdf"], "needs --out")):
        done = run_dockd(["report", "weekly", *args, "--config", cfg])
        assert done.returncode == 2 and message in done.stderr
