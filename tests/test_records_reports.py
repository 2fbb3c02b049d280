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

from dockd.records.access import AccessRequest, register_access
from dockd.records.holds import HoldRequest, add_hold
from dockd.records.periods import parse_week, previous_week
from dockd.records.reports import supervision_report, weekly_report
from dockd.store.events import ExportCreated, FileFailed, SessionInterrupted, SessionStarted
from dockd.store.registry import set_state
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
                               records={"undocked_alert_hours": 48})
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
    set_state(store, "chief", "CAM002", "in_repair")
    shas = tuple(r[0] for r in store.catalog.query("SELECT sha256 FROM items ORDER BY sha256"))
    register_access(store, AccessRequest(shas[:1], None, "李法官", "某某县人民法院", "庭审质证",
                                         "王所长"), "test")
    with store.catalog.transaction() as tx:  # as dockd export registers a package
        store.custody.record(tx, ExportCreated(
            "exp-1", None, shas, "张检察官", "某某县人民检察院", "审查起诉", "王所长", False,
            "0" * 64, "/media/out", None, None, len(shas), 1_234_567_890), "test")
    assert verify_store(store, "test").ok
    store.close()
    (tmp_path / "dockd.toml").write_text(
        f'[dock]\nstore_dir = "{tmp_path / "store"}"\ntimezone = "Asia/Shanghai"\n'
        '[records]\nunit_name = "某某县公安局"\n',
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
    assert [(r["recorder"], r["state"], r["by"]) for r in report.out_of_service] == \
        [("CAM002", "in_repair", "chief")]
    assert [(e["export_id"], e["recordings"], e["approved_by"]) for e in report.exports] == \
        [("exp-1", 3, "王所长")]
    assert [(a["items"], a["requester"], a["requester_unit"]) for a in report.access] == \
        [(1, "李法官", "某某县人民法院")]


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
    assert f"\n  {col} | " in text.stdout  # the table's header row
    out = week_store / f"csv-{lang}"
    done = run_dockd(["report", "weekly", "--week", WEEK, "--format", "csv", "--out", out,
                      "--config", cfg], env=env)
    assert done.returncode == 0, done.stderr
    rows = _read_csv(out / f"weekly-{WEEK}-activity.csv")
    assert rows[0][0] == col and rows[1][:3] == ["赵六", "CAM001", "1"]


def _read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), f"{path.name} has no UTF-8 byte-order mark"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("kind", ["weekly", "supervision"])
def test_csv_one_rectangular_file_per_table(week_store: Path, kind: str) -> None:
    cfg = week_store / "dockd.toml"
    out = week_store / "csv"
    done = run_dockd(["report", kind, "--week", WEEK, "--format", "csv", "--out", out,
                      "--config", cfg], env={"LANGUAGE": "zh_CN"})
    assert done.returncode == 0, done.stderr
    files = sorted(out.iterdir())
    expected = {"weekly": {"activity", "overdue"},
                "supervision": {"integrity", "offload_failures", "files_not_stored", "faults",
                                "out_of_service", "never_docked", "overdue", "holds", "exports",
                                "access"}}[kind]
    assert {f.name.removeprefix(f"{kind}-{WEEK}-").removesuffix(".csv") for f in files} \
        == expected
    for f in files:
        rows = _read_csv(f)
        assert rows and all(len(r) == len(rows[0]) for r in rows), f.name
        assert rows[0][0] and not any(c == "" for c in rows[0]), f.name  # a header row
    if kind == "supervision":
        exports = _read_csv(out / f"supervision-{WEEK}-exports.csv")
        assert exports[0][:2] == ["时间", "导出编号"]
        assert exports[1][1:5] == ["exp-1", "—", "3", "1234567890"]  # bytes, summable
        assert exports[1][0] == "2026-11-24 09:00:00"  # local time, sortable
        access = _read_csv(out / f"supervision-{WEEK}-access.csv")
        assert access[1][3:] == ["李法官", "某某县人民法院", "庭审质证", "王所长"]
        repair = _read_csv(out / f"supervision-{WEEK}-out_of_service.csv")
        assert repair[1][:2] == ["CAM002", "维修中"]
    # A directory that is not empty is refused before anything is read or written.
    done = run_dockd(["report", kind, "--week", WEEK, "--format", "csv", "--out", out,
                      "--config", cfg])
    assert done.returncode == 2 and "new or empty directory" in done.stderr
    assert sorted(out.iterdir()) == files


def _title_pixels(pdf: Path, word: str, tmp: Path) -> tuple[int, int]:
    """(dark pixels, all pixels) of the box pdftotext gives for ``word`` on page 1,
    rendered at 72 dpi (one pixel per point)."""
    from PIL import Image

    html = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout
    for line in html.splitlines():
        if f">{word}<" in line:
            box = {k: float(line.split(f'{k}="')[1].split('"')[0])
                   for k in ("xMin", "yMin", "xMax", "yMax")}
            break
    else:
        raise AssertionError(f"{word!r} not found in the text of {pdf.name}")
    subprocess.run(["pdftoppm", "-r", "72", "-f", "1", "-l", "1", "-png", "-singlefile",
                    str(pdf), str(tmp / "page")], check=True)
    with Image.open(tmp / "page.png") as page:
        crop = page.convert("L").crop((int(box["xMin"]), int(box["yMin"]),
                                       int(box["xMax"]) + 1, int(box["yMax"]) + 1))
        pixels = list(crop.tobytes())
    return sum(1 for p in pixels if p < 128), len(pixels)


@pytest.mark.parametrize("kind,word", [("weekly", "周报"), ("supervision", "监督检查报告")])
def test_pdf_title_glyphs_are_drawn(week_store: Path, kind: str, word: str) -> None:
    cfg = week_store / "dockd.toml"
    pdf = week_store / f"{kind}.pdf"
    done = run_dockd(["report", kind, "--week", WEEK, "--format", "pdf", "--out", pdf,
                      "--config", cfg], env={"LANGUAGE": "zh_CN"})
    assert done.returncode == 0, done.stderr
    dark, total = _title_pixels(pdf, word, week_store)
    assert total > 100 and dark > total // 10, (dark, total)  # ink, not blank boxes


def test_pdf_has_headers_page_numbers_and_human_sizes(week_store: Path) -> None:
    cfg = week_store / "dockd.toml"
    for kind, lang, expect in (
            ("weekly", "zh_CN", ["某某县公安局", "执法人员", "记录仪", "第 1 页，共 1 页", "kB",
                                 "0:00:03", "2026年11月24日 09:00:00"]),
            ("supervision", "en", ["某某县公安局", "Evidence exports", "requester", "page 1 of",
                                   "1.2 GB", "Access register", "李法官", "in repair",
                                   "2026-11-24 09:00:00"])):
        pdf = week_store / f"{kind}-{lang}.pdf"
        done = run_dockd(["report", kind, "--week", WEEK, "--format", "pdf", "--out", pdf,
                          "--config", cfg], env={"LANGUAGE": lang})
        assert done.returncode == 0, done.stderr
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                              text=True, check=True).stdout
        for wanted in expect:
            assert wanted in text, (kind, lang, wanted)
        assert "1234567890" not in text  # sizes are for people in the PDF
        fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True,
                               check=True).stdout.splitlines()[2:]
        # name, type ..., emb, sub, uni, object, id: every font embedded (a subset)
        assert fonts and all(f.split()[-5:-2] == ["yes", "yes", "yes"] for f in fonts), fonts


def test_pdf_refused_without_its_font(week_store: Path) -> None:
    cfg = week_store / "dockd.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + f'pdf_font = "{week_store / "no.ttf"}"\n',
                   encoding="utf-8")
    pdf = week_store / "weekly.pdf"
    done = run_dockd(["report", "weekly", "--week", WEEK, "--format", "pdf", "--out", pdf,
                      "--config", cfg])
    assert done.returncode == 69 and "fonts-wqy-zenhei" in done.stderr
    assert not pdf.exists()


@pytest.mark.parametrize("values,integers,expected", [
    ([0, 0, 0], True, (5.0, 1.0)),
    ([0.0, 0.0], False, (1.0, 0.2)),
    ([3, 1], True, (3.0, 1.0)),
    ([17], True, (20.0, 5.0)),
    ([0.004], False, (0.004, 0.001)),
    ([0.011], False, (0.0125, 0.0025)),
    ([7.3, 2.0], False, (8.0, 2.0)),
])
def test_axis_scale(values: list[float], integers: bool,
                    expected: tuple[float, float]) -> None:
    from dockd.records.render import axis_scale

    top, step = axis_scale(values, integers)
    assert (top, step) == pytest.approx(expected)
    assert top >= max(values) and top / step <= 10


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
                          (["--format", "pdf"], "needs --out"),
                          (["--format", "csv"], "needs --out DIR")):
        done = run_dockd(["report", "weekly", *args, "--config", cfg])
        assert done.returncode == 2 and message in done.stderr
