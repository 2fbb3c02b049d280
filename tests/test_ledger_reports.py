"""Bureau reports from the ledger: the events of two real docks (evidence core), kept by
the ledger in a real PostgreSQL, reported by ``dockd ledger report`` in every format and
both languages."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dockd.clock import SystemClock
from dockd.config import parse_config
from dockd.ledger.judge import judge
from dockd.store.evidence import open_store
from tests.conftest import run_dockd
from tests.custody_support import RawEvent
from tests.ledger_support import PREFIX, ledger_toml, open_db
from tests.postgres_server import PostgresServer, ledger_dsn, postgres  # noqa: F401


def _dock_events(root: Path, dock: str) -> tuple[str, list[tuple[str, bytes]]]:
    config = parse_config({"dock": {"id": dock, "site": "s1", "store_dir": str(root / dock)}})
    store = open_store(config, SystemClock())

    def c_append(type_: str, actor: str, subject: str, payload: dict[str, Any]) -> None:
        store.custody.append(RawEvent(type_, subject, payload), actor)

    c_append("recorder.enrolled", "cli:admin", "SN-NEVER", {"serial": "SN-NEVER"})
    c_append("recorder.enrolled", "cli:admin", "SN-A1", {"serial": "SN-A1"})
    c_append("recorder.docked", "dockd", "SN-A1", {"bay": 1, "serial": "SN-A1",
                                                   "officer_name": "张三", "officer_id": "0417"})
    c_append("session.completed", "dockd", "SN-A1", {"result": "complete", "stored": 3,
                                                     "deduplicated": 1, "bytes_stored": 4096,
                                                     "failed": 0})
    c_append("session.interrupted", "dockd", "SN-A1", {"result": "interrupted", "stored": 1,
                                                       "deduplicated": 0, "bytes_stored": 10,
                                                       "failed": 2, "reason": "pulled out"})
    c_append("bay.fault", "dockd", "SN-A1", {"reason": "battery_low", "detail": "12 %"})
    c_append("export.created", "cli:li", "EXP-1", {"export_id": "EXP-1", "case": "2026-刑-001",
                                                   "requester": "王五", "requester_unit": "检察院",
                                                   "reason": "起诉", "approved_by": "赵局",
                                                   "public_use": False, "recordings": 2})
    c_append("access.registered", "cli:li", "2026-刑-001", {
        "case": "2026-刑-001", "items": ["ab" * 32], "requester": "孙六",
        "requester_unit": "法院", "reason": "审理", "approved_by": "赵局"})
    c_append("hold.added", "cli:li", "2026-刑-001", {"hold_id": 1, "scope": "case",
                                                     "target": "2026-刑-001",
                                                     "reason": "信访", "by": "李四"})
    c_append("verify.completed", "dockd", "store", {"items_checked": 4, "problem_count": 0})
    rows = store.catalog.query("SELECT kind, payload FROM outbox ORDER BY id")
    key = store.custody.signer.public_key_hex
    store.close()
    topics = {"custody": f"{PREFIX}/s1/{dock}/custody",
              "checkpoint": f"{PREFIX}/s1/{dock}/checkpoint"}
    return key, [(topics[r["kind"]], r["payload"].encode()) for r in rows
                 if r["kind"] in topics]


@pytest.fixture
def reported(tmp_path: Path, ledger_dsn: str) -> dict[str, Any]:  # noqa: F811
    db = open_db(ledger_dsn)
    for dock in ("dock-1", "dock-2"):
        key, messages = _dock_events(tmp_path, dock)
        db.add_dock(dock, key, "test", site="s1")
        db.apply_batch([judge(PREFIX, t, p, 1 << 20) for t, p in messages], SystemClock().now())
    db.close()
    config = ledger_toml(tmp_path / "ledger.toml", ledger_dsn, "mqtt://127.0.0.1:1")
    year, week, _ = dt.datetime.now(dt.UTC).astimezone(
        dt.timezone(dt.timedelta(hours=8))).isocalendar()
    return {"config": config, "week": f"{year:04d}-W{week:02d}", "root": tmp_path}


def report(r: dict[str, Any], kind: str, *args: str, lang: str = "en_US.UTF-8"
           ) -> subprocess.CompletedProcess[str]:
    return run_dockd(["ledger", "report", kind, "--week", r["week"], "--config", r["config"],
                      *args], env={"LANG": lang, "LANGUAGE": ""})


def test_weekly_json_across_every_dock(reported: dict[str, Any]) -> None:
    done = report(reported, "weekly", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["report"] == "bureau-weekly"
    rows = {(r["dock"], r["recorder"]): r for r in data["rows"]}
    assert set(rows) == {("dock-1", "SN-A1"), ("dock-2", "SN-A1")}
    row = rows[("dock-1", "SN-A1")]
    assert (row["docks"], row["sessions"], row["files"], row["bytes"], row["failed_files"],
            row["faults"], row["officer"]) == (1, 2, 5, 4106, 2, 1, "张三")
    assert [e["requester"] for e in data["exports"]] == ["王五", "王五"]
    assert [a["requester_unit"] for a in data["access"]] == ["法院", "法院"]
    assert {v["dock"]: v["verification"] for v in data["verification"]} == \
        {"dock-1": "verified", "dock-2": "verified"}
    assert sum(d["files"] for d in data["days"]) == 10


def test_supervision_in_chinese_text_csv_and_pdf(reported: dict[str, Any]) -> None:
    done = report(reported, "supervision", lang="zh_CN.UTF-8")
    assert done.returncode == 0, done.stderr
    assert "全局监督报告" in done.stdout and "（第十五、十六条）" in done.stdout
    assert "从未接入的记录仪: 2" in done.stdout and "SN-NEVER" in done.stdout
    assert "生效中的保全: 2" in done.stdout and "信访" in done.stdout
    assert "采集失败: 2" in done.stdout and "pulled out" in done.stdout
    data = json.loads(report(reported, "supervision", "--format", "json").stdout)
    assert [i["ok"] for i in data["integrity"]] == [True, True]
    assert data["ledger_alerts"] == []
    csv_text = report(reported, "weekly", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[0] == ["section", "details"]
    sections_with_wang = sorted({r[0] for r in rows if "王五" in r})
    assert sections_with_wang == ["Evidence exports (art. 12(4), 13)"]
    pdf = reported["root"] / "supervision.pdf"
    done = report(reported, "supervision", "--format", "pdf", "--out", str(pdf),
                  lang="zh_CN.UTF-8")
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    png = reported["root"] / "supervision"
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(png)],
                   check=True)
    assert list(reported["root"].glob("supervision*.png"))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "全局监督报告" in text and "SN-NEVER" in text


def test_ledger_alerts_read_in_the_reports_language(reported: dict[str, Any],
                                                    ledger_dsn: str) -> None:  # noqa: F811
    _key, unenrolled = _dock_events(reported["root"] / "dock-9", "dock-9")
    db = open_db(ledger_dsn)
    db.apply_batch([judge(PREFIX, f"{PREFIX}/s1/dock-1/custody", b"not json", 1 << 20),
                    judge(PREFIX, *unenrolled[0], 1 << 20)], SystemClock().now())
    db.close()
    zh = {"rejected": "非 JSON：消息体不是 UTF-8 JSON：Expecting value: line 1 column 1 (char 0)"
                      "（主题 dockd/s1/dock-1/custody）",
          "unknown_dock": "收到未登记采集站 dock-9 的消息"}
    en = {"rejected": "not JSON: payload is not UTF-8 JSON: Expecting value: line 1 column 1 "
                      "(char 0) (topic dockd/s1/dock-1/custody)",
          "unknown_dock": "messages from dock dock-9, which is not enrolled"}
    text = report(reported, "supervision", lang="zh_CN.UTF-8").stdout
    assert all(t in text for t in zh.values()), text
    assert "not JSON" not in text and "which is not enrolled" not in text
    assert all(t in report(reported, "supervision").stdout for t in en.values())
    csv_rows = list(csv.reader(io.StringIO(report(reported, "supervision", "--format", "csv",
                                                  lang="zh_CN.UTF-8").stdout)))
    details = {r[1]: r[3] for r in csv_rows if r[0] == "台账未关闭告警"}
    assert details == {"拒收": zh["rejected"], "未登记采集站": zh["unknown_dock"]}
    pdf = reported["root"] / "alerts.pdf"
    done = report(reported, "supervision", "--format", "pdf", "--out", str(pdf),
                  lang="zh_CN.UTF-8")
    assert done.returncode == 0, done.stderr
    words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout
    assert "收到未登记采集站" in words and "消息体不是" in words
    # The stored JSON is the same in either language: the code and values, and English text.
    data = json.loads(report(reported, "supervision", "--format", "json",
                             lang="zh_CN.UTF-8").stdout)
    stored = {a["kind"]: a for a in data["ledger_alerts"]}
    assert stored["unknown_dock"]["detail"] == en["unknown_dock"]
    assert stored["unknown_dock"]["detail_note"] == {"code": "dock.messages_unenrolled",
                                                     "args": {"dock": "dock-9"}}
    status = run_dockd(["ledger", "status", "--config", reported["config"]],
                       env={"LANG": "zh_CN.UTF-8", "LANGUAGE": ""})
    assert zh["unknown_dock"] in status.stdout, status.stderr


def test_report_options_are_checked(reported: dict[str, Any]) -> None:
    assert report(reported, "weekly", "--format", "pdf").returncode == 2
    done = run_dockd(["ledger", "report", "weekly", "--week", "2026-W99", "--config",
                      reported["config"]])
    assert done.returncode == 2 and "ISO week" in done.stderr
    out = reported["root"] / "exists.txt"
    out.write_text("x")
    assert report(reported, "weekly", "--out", str(out)).returncode == 2


def test_a_config_without_ledger_section_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "dock.toml"
    config.write_text('[dock]\nid = "dock-1"\n')
    done = run_dockd(["ledger", "status", "--config", config])
    assert done.returncode == 78 and "no [ledger] section" in done.stderr
    config.write_text('[ledger]\ndatabase = "postgresql://u:secret@db/x"\n')
    done = run_dockd(["ledger", "status", "--config", config])
    assert done.returncode == 78 and "database_password_file" in done.stderr
    assert "secret" not in done.stderr


def test_postgres_down_is_a_one_line_error_with_exit_75(tmp_path: Path) -> None:
    from tests.mqtt_broker import free_port

    config = ledger_toml(tmp_path / "l.toml", f"postgresql://ledger@127.0.0.1:{free_port()}/x",
                         "mqtt://127.0.0.1:1")
    done = run_dockd(["ledger", "status", "--config", config])
    assert done.returncode == 75
    assert done.stderr.count("\n") == 1 and "cannot be used" in done.stderr
