"""The core commands speak the dock's language (zh_CN or English, by locale)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_dockd


def test_ingest_and_verify_summaries_follow_the_locale(tmp_path: Path) -> None:
    card = tmp_path / "card"
    (card / "DCIM").mkdir(parents=True)
    (card / "DCIM/A.MP4").write_bytes(b"x" * 1000)
    store = tmp_path / "store"
    zh = {"LANG": "zh_CN.UTF-8", "LANGUAGE": "", "LC_ALL": ""}
    ingest = run_dockd(["ingest", card, "--recorder", "R1", "--store", store], env=zh)
    assert ingest.returncode == 0, ingest.stderr
    assert "新存入 1" in ingest.stdout and "已完成" in ingest.stdout
    verify = run_dockd(["verify", "--store", store], env=zh)
    assert verify.returncode == 0
    assert verify.stdout.startswith("已校验 1 个文件")
    english = run_dockd(["verify", "--store", store], env={"LANG": "C.UTF-8", "LANGUAGE": "",
                                                           "LC_ALL": ""})
    assert english.stdout.startswith("checked 1 files")


def test_recorders_list_is_a_table_aligned_for_chinese_names(tmp_path: Path) -> None:
    from rich.cells import cell_len

    store = tmp_path / "store"
    for serial, brand, officer in (("CAM-LONG-SERIAL-02", "海康威视", "欧阳娜娜"),
                                   ("DSJ0001", "Hikvision", "赵六")):
        done = run_dockd(["recorders", "add", serial, "--brand", brand, "--model", "X1",
                          "--officer-id", "0451", "--officer-name", officer, "--store", store])
        assert done.returncode == 0, done.stderr
    assert run_dockd(["recorders", "set-state", "DSJ0001", "in_repair", "--store",
                      store]).returncode == 0
    zh = run_dockd(["recorders", "list", "--store", store], env={"LANGUAGE": "zh_CN"})
    assert zh.returncode == 0, zh.stderr
    lines = [line for line in zh.stdout.splitlines() if line.strip()]
    assert lines[0].split()[:4] == ["记录仪", "状态", "品牌", "型号"]  # a header row
    rows = [line for line in lines if line.startswith(("CAM-", "DSJ"))]
    assert "维修中" in rows[1] and "在用" in rows[0]  # states in Chinese
    # Each column starts at the same terminal cell in every row (ljust would not be).
    for word in ("X1", "0451"):
        starts = {cell_len(row[:row.index(word)]) for row in rows}
        assert len(starts) == 1, (word, rows)
    en = run_dockd(["recorders", "list", "--store", store], env={"LANGUAGE": "en"})
    assert "in repair" in en.stdout and en.stdout.split()[0] == "recorder"
