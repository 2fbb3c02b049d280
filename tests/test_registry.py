"""`dockd recorders`: the registry, each change a custody event (rules art. 5, 7, 9, 10)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_dockd


def _cli(store: Path, *args: str) -> tuple[int, str, str]:
    result = run_dockd(["recorders", *args, "--store", store, "--json"])
    return result.returncode, result.stdout, result.stderr


def test_enrol_assign_state_retire_and_their_custody_events(tmp_path: Path) -> None:
    store = tmp_path / "store"
    rc, out, err = _cli(store, "add", "ZFY001", "--brand", "Acme", "--model", "X1",
                        "--officer-id", "007", "--officer-name", "王五", "--unit", "城关所")
    assert rc == 0, err
    assert json.loads(out)["state"] == "in_service"
    assert _cli(store, "assign", "ZFY001", "--officer-id", "008", "--officer-name", "赵六")[0] == 0
    assert _cli(store, "set-state", "ZFY001", "in_repair")[0] == 0
    rc, out, _ = _cli(store, "list")
    listed = json.loads(out)
    assert [(r["serial"], r["officer_id"], r["state"], r["unit"]) for r in listed] == [
        ("ZFY001", "008", "in_repair", "城关所")]
    assert _cli(store, "retire", "ZFY001")[0] == 0
    log = json.loads(run_dockd(["log", "--store", store, "--json"]).stdout)
    events = [(r["type"], r["subject"]) for r in log]
    assert events == [("recorder.enrolled", "ZFY001"), ("recorder.assigned", "ZFY001"),
                      ("recorder.state_changed", "ZFY001"), ("recorder.retired", "ZFY001")]
    assigned = next(r for r in log if r["type"] == "recorder.assigned")
    assert assigned["payload"]["previous_officer_id"] == "007"


def test_bad_registry_input_is_refused_and_logs_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert _cli(store, "add", "ZFY002", "--brand", "A", "--model", "M")[0] == 0
    for args, words in [
        (("add", "ZFY002", "--brand", "A", "--model", "M"), "already enrolled"),
        (("add", "bad/serial", "--brand", "A", "--model", "M"), "not valid"),
        (("assign", "NOPE", "--officer-id", "1"), "not enrolled"),
        (("set-state", "ZFY002", "lost"), "invalid choice"),
    ]:
        rc, _out, err = _cli(store, *args)
        assert rc == 2, (args, err)
        assert words in err
    assert _cli(store, "retire", "ZFY002")[0] == 0
    rc, _out, err = _cli(store, "assign", "ZFY002", "--officer-id", "9")
    assert rc == 2 and "retired" in err
    log = json.loads(run_dockd(["log", "--store", store, "--json"]).stdout)
    assert [r["type"] for r in log] == ["recorder.enrolled", "recorder.retired"]
