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
