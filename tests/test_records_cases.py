"""Cases (rules art. 8): tagging by items or by a recorder's date range, annotations, and
the catalog views by recorder, officer, day and case -- through the real CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from dockd.errors import UsageError
from dockd.records.cases import annotate_items, tag_items
from dockd.records.fields import recording_fields
from dockd.records.selection import recorder_item_shas, resolve_item, validate_case_no
from tests.conftest import run_dockd
from tests.records_support import (
    T0,
    SettableClock,
    docked_event,
    enrol,
    ingest,
    open_clocked_store,
    snapshot,
)


@pytest.fixture
def two_days(tmp_path: Path) -> dict[str, object]:
    """CAM001 (赵六) docked on 2026-11-23 and 2026-11-25 (UTC+8), one file each day."""
    clock = SettableClock(T0)
    store = open_clocked_store(tmp_path / "store", clock)
    enrol(store, "CAM001", "Hikvision", "DSJ-X1", "0451", "赵六")
    docked_event(store, "CAM001", "0451", "赵六")
    first = ingest(store, tmp_path / "s1", {"DCIM/mon.mp4": b"monday"}).files[0].sha256
    clock.t = T0 + dt.timedelta(days=2)
    docked_event(store, "CAM001", "0999", "周九")  # reassigned: the dock event names who
    second = ingest(store, tmp_path / "s2", {"DCIM/wed.mp4": b"wednesday"}).files[0].sha256
    store.close()
    cfg = tmp_path / "dockd.toml"
    cfg.write_text(f'[dock]\nstore_dir = "{tmp_path / "store"}"\n'
                   'timezone = "Asia/Shanghai"\n', encoding="utf-8")
    return {"cfg": cfg, "store": tmp_path / "store", "mon": first, "wed": second}


def _catalog(two_days, *args: str) -> list[dict[str, object]]:
    done = run_dockd(["catalog", "--config", two_days["cfg"], "--json", *args])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_tag_by_recorder_and_dates_then_catalog_views(two_days) -> None:
    done = run_dockd(["case", "tag", "CASE-7", "--recorder", "CAM001", "--from", "2026-11-25",
                      "--to", "2026-11-25", "--place", "城关镇", "--config", two_days["cfg"],
                      "--json"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == [two_days["wed"]]
    assert [i["sha256"] for i in _catalog(two_days, "--case", "CASE-7")] == [two_days["wed"]]
    assert [i["sha256"] for i in _catalog(two_days, "--day", "2026-11-23")] == [two_days["mon"]]
    assert [i["sha256"] for i in _catalog(two_days, "--officer", "赵六")] == [two_days["mon"]]
    assert [i["sha256"] for i in _catalog(two_days, "--officer", "0999")] == [two_days["wed"]]
    assert _catalog(two_days, "--officer", "nobody") == []
    listed = json.loads(run_dockd(["case", "list", "--config", two_days["cfg"],
                                   "--json"]).stdout)
    assert listed == [{"case": "CASE-7", "place": "城关镇", "items": 1, "bytes": 9,
                       "created_at": listed[0]["created_at"]}]


def test_bad_case_commands_exit_2_and_change_nothing(two_days) -> None:
    before = snapshot(two_days["store"])
    for args, message in (
        (["case", "tag", "C-1", "--recorder", "CAM404"], "unknown recorder CAM404"),
        (["case", "tag", "C-1", "--items", "zz"], "not an item SHA-256"),
        (["case", "tag", "C\x01", "--items", two_days["mon"]], "not valid"),
        (["case", "tag", "C-1", "--recorder", "CAM001", "--from", "2026-11-26", "--to",
          "2026-11-24"], "before --from"),
        (["case", "tag", "C-1", "--recorder", "CAM001", "--from", "2030-01-01"],
         "no recordings match"),
        (["catalog", "--case", "NOPE"], "unknown case NOPE"),
        (["catalog", "--day", "2026-13-01"], "not a date"),
    ):
        done = run_dockd([*args, "--config", two_days["cfg"]])
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
    assert snapshot(two_days["store"]) == before


def test_annotations_and_fields(two_days) -> None:
    clock = SettableClock(T0 + dt.timedelta(days=3))
    store = open_clocked_store(two_days["store"], clock)
    try:
        tag_items(store, "CASE-8", [two_days["mon"]], "clerk", "test", place="甲村")
        f = recording_fields(store.catalog, two_days["mon"])
        assert (f.place, f.officer_name, f.device_brand) == ("甲村", "赵六", "Hikvision")
        annotate_items(store, [two_days["mon"]], "clerk", "test", place="乙村",
                       operator_name="钱七")
        annotate_items(store, [two_days["mon"]], "clerk", "test", operator_name="吴十")
        f = recording_fields(store.catalog, two_days["mon"])
        assert (f.place, f.operator_name) == ("乙村", "吴十")  # the latest of each counts
        assert recording_fields(store.catalog, two_days["wed"]).officer_name == "周九"
        with pytest.raises(UsageError, match="at least one of --place, --operator"):
            annotate_items(store, [two_days["mon"]], "clerk", "test")
        with pytest.raises(UsageError, match="already has the place"):
            tag_items(store, "CASE-8", [two_days["wed"]], "clerk", "test", place="丙村")
        again = tag_items(store, "CASE-8", [two_days["mon"], two_days["wed"]], "c", "test")
        assert (again.added, again.already) == ((two_days["wed"],), (two_days["mon"],))
        assert resolve_item(store.catalog, two_days["mon"][:12].upper()) == two_days["mon"]
        tz = dt.timezone(dt.timedelta(hours=8))
        assert recorder_item_shas(store.catalog, "CAM001", None, None) == sorted(
            [two_days["mon"], two_days["wed"]])
        assert recorder_item_shas(store.catalog, "CAM001",
                                  dt.datetime(2026, 11, 25, tzinfo=tz), None,
                                  strict=True) == [two_days["wed"]]
    finally:
        store.close()


@pytest.mark.parametrize("case_no", ["威自然资罚〔2026〕12号", "2026-001", "A/B 3"])
def test_case_numbers_accept_the_bureaus_forms(case_no: str) -> None:
    assert validate_case_no(case_no) == case_no


@pytest.mark.parametrize("case_no", ["", " lead", "x" * 65, "tab\there"])
def test_case_numbers_refuse_bad_text(case_no: str) -> None:
    with pytest.raises(UsageError):
        validate_case_no(case_no)
