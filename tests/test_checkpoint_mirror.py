"""``[dock] checkpoint_mirror``: every checkpoint appended to a file outside the store, so a
store put back to an earlier state (restored from its own backup: log, checkpoints and
checkpoint file together, all genuine) is named ``rolled_back`` by ``dockd verify`` — on a
writable store and on a read-only mount — where plain verify sees it intact."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_dockd, write_tree
from tests.test_verify_read_only import ReadOnlyMount, _error_lines, _snapshot


def _config(where: Path, store: Path, mirror: Path | None, name: str = "dockd.toml") -> Path:
    path = where / name
    text = (f'[dock]\nid = "dock-m"\nstore_dir = "{store}"\n'
            f'signing_key = "{where / "custody.ed25519"}"\n')
    if mirror is not None:
        text += f'checkpoint_mirror = "{mirror}"\n'
    path.write_text(text)
    return path


def _ingest(src: Path, recorder: str, config: Path) -> None:
    done = run_dockd(["ingest", src, "--recorder", recorder, "--config", config])
    assert done.returncode == 0, done.stderr


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "src", {f"DCIM/{i}.MP4": os.urandom(500 + i) for i in range(4)})


def test_a_store_restored_from_its_backup_is_rolled_back(tmp_path: Path, src: Path) -> None:
    store, mirror = tmp_path / "store", tmp_path / "outside" / "checkpoints.jsonl"
    mirror.parent.mkdir()
    config = _config(tmp_path, store, mirror)
    _ingest(src, "REC-1", config)
    subprocess.run(["cp", "-a", str(store), str(tmp_path / "backup")], check=True)
    _ingest(src, "REC-2", config)
    lines = [json.loads(line) for line in mirror.read_text().splitlines()]
    assert len(lines) >= 2 and lines == sorted(lines, key=lambda c: c["seq"])
    newest = lines[-1]["seq"]
    done = run_dockd(["verify", "--config", config])
    assert done.returncode == 0, done.stdout + done.stderr
    # The store put back to the backup: every file in it genuine.
    shutil.rmtree(store)
    subprocess.run(["cp", "-a", str(tmp_path / "backup"), str(store)], check=True)
    plain = run_dockd(["verify", "--config", _config(tmp_path, store, None, "plain.toml")])
    assert plain.returncode == 0, plain.stdout  # what a plain verify cannot see
    ro = ReadOnlyMount(store, tmp_path / "ro")
    try:
        before = _snapshot(ro.path)
        done = run_dockd(["verify", "--json", "--config",
                          _config(tmp_path, ro.path, mirror, "ro.toml")])
        assert done.returncode == 1, done.stderr
        report = json.loads(done.stdout)
        assert report["recorded"] is False
        assert any(p["kind"] == "rolled_back" and p["subject"] == f"seq {newest}"
                   and "the log ends at" in p["detail"] for p in report["problems"]), report
        assert {p["kind"] for p in report["problems"]} == {"rolled_back"}
        assert _snapshot(ro.path) == before
    finally:
        ro.close()
    # Writable, and the log continued after the rollback: the same seqs now hold other
    # records; still rolled_back, never intact again.
    _ingest(src, "REC-3", _config(tmp_path, store, mirror))
    done = run_dockd(["verify", "--config", config])
    assert done.returncode == 1 and "  rolled_back: seq " in done.stdout, done.stdout
    assert _error_lines(done.stderr)[0].startswith("dockd: error: verification found")


def test_mirror_damage_forgery_and_absence(tmp_path: Path, src: Path) -> None:
    store, mirror = tmp_path / "store", tmp_path / "checkpoints.jsonl"
    config = _config(tmp_path, store, mirror)
    _ingest(src, "REC-1", config)
    good = mirror.read_bytes()
    first = json.loads(good.splitlines()[0])
    forged = dict(first, seq=first["seq"] + 1000)  # signature no longer covers it
    mirror.write_bytes(good + b"{not json\n" + json.dumps(forged).encode() + b"\n")
    done = run_dockd(["verify", "--json", "--config", config])
    assert done.returncode == 1, done.stderr
    problems = json.loads(done.stdout)["problems"]
    assert [p["kind"] for p in problems] == ["checkpoint_mirror", "checkpoint_mirror"], problems
    assert problems[0]["detail"].startswith("line 2: ")
    assert problems[1]["subject"] == f"seq {forged['seq']}"
    mirror.unlink()  # gone: said, not a problem (the verify itself starts it again)
    done = run_dockd(["verify", "--config", config])
    assert done.returncode == 0, done.stdout
    assert f"note: the checkpoint mirror {mirror} holds no checkpoint yet" in done.stdout
    assert len(mirror.read_text().splitlines()) == 1  # this verify's checkpoint
    done = run_dockd(["verify", "--config", config])
    assert done.returncode == 0 and "note:" not in done.stdout, done.stdout


@pytest.mark.parametrize("where", ["inside", "relative"])
def test_mirror_inside_the_store_or_relative_is_refused(tmp_path: Path, where: str) -> None:
    store = tmp_path / "store"
    mirror = store / "cp.jsonl" if where == "inside" else Path("cp.jsonl")
    done = run_dockd(["verify", "--config", _config(tmp_path, store, mirror)])
    assert done.returncode == 78, done.stderr
    (line,) = _error_lines(done.stderr)
    assert "checkpoint_mirror" in line and "outside store_dir" in line
    assert not store.exists()


def test_an_unwritable_mirror_stops_the_store_before_anything_is_written(tmp_path: Path,
                                                                          src: Path) -> None:
    store = tmp_path / "store"
    mirror = tmp_path / "no-such-dir" / "cp.jsonl"
    done = run_dockd(["ingest", src, "--recorder", "REC-1", "--config",
                      _config(tmp_path, store, mirror)])
    assert done.returncode == 73, done.stderr
    (line,) = _error_lines(done.stderr)
    assert f"the checkpoint mirror {mirror} cannot be written: No such file or directory" in line
    objects = [p for p in (store / "objects").rglob("*") if p.is_file()]
    assert objects == []
    with sqlite3.connect(store / "catalog.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM custody").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0
    db.close()
