"""Crash safety: ``dockd ingest`` killed with SIGKILL at many points, then run again."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.conftest import run_dockd

Cli = Callable[..., subprocess.CompletedProcess[str]]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]
REPO_ROOT = Path(__file__).resolve().parent.parent



def test_sigkill_at_many_points_then_reingest(dockd_cli: Cli, make_tree: Tree, tmp_path: Path,
                                              store_dir: Path) -> None:
    rng = random.Random(20240601)
    files = {f"DCIM/{i:03}.MP4": rng.randbytes(rng.choice([0, 10_000, 300_000, 2_000_000]))
             for i in range(12)}
    src = make_tree(tmp_path / "src", files)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("DOCKD_CONFIG", None)
    cmd = [sys.executable, "-m", "dockd.cli", "ingest", str(src), "--recorder", "REC-1",
           "--store", str(store_dir)]
    # Calibrate: time one whole run of the same size into a scratch store, so the kills
    # land anywhere from interpreter start-up to the end of the session.
    t0 = time.monotonic()
    calib = [*cmd[:-1], str(tmp_path / "calibration-store")]
    subprocess.run(calib, env=env, capture_output=True, check=True)
    whole_run = time.monotonic() - t0
    kills = 0
    for i in range(14):
        # new material before every run, so every run has work to be killed in
        for j in range(12):
            name = f"DCIM/run{i:02}-{j:02}.MP4"
            files[name] = rng.randbytes(rng.choice([0, 10_000, 300_000, 2_000_000]))
            (src / name).write_bytes(files[name])
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(0.3, 1.0) * whole_run
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
    assert kills >= 8, "the runs ended before they could be killed: the test is not testing"
    final = dockd_cli(["ingest", src, "--recorder", "REC-1", "--store", store_dir, "--json"])
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["failed"] == 0
    # every file exactly once
    items = json.loads(dockd_cli(["catalog", "--store", store_dir, "--json"]).stdout)
    by_path: dict[str, set[str]] = {}
    for item in items:
        by_path.setdefault(item["source_path"], set()).add(item["sha256"])
    assert by_path == {p: {hashlib.sha256(d).hexdigest()} for p, d in files.items()}
    objects = [p for p in (store_dir / "objects").rglob("*") if p.is_file()]
    assert len(objects) == len({hashlib.sha256(d).hexdigest() for d in files.values()})
    # leftover temp (scratch directories, undone batch intents) cleaned at start: only the
    # store's lock files remain once nothing runs
    assert sorted(p.name for p in (store_dir / "tmp").iterdir()) == [".publish.lock", ".setup.lock"]
    ver = dockd_cli(["verify", "--store", store_dir])
    assert ver.returncode == 0, ver.stdout + ver.stderr
    # sessions the kills left open were closed by crash recovery
    log = json.loads(dockd_cli(["log", "--store", store_dir, "--json"]).stdout)
    started = {r["payload"]["session_id"] for r in log if r["type"] == "session.started"}
    ended = {r["payload"]["session_id"]: r for r in log
             if r["type"] in ("session.completed", "session.interrupted")}
    assert started == set(ended)
    recovered = [r for r in ended.values() if r["type"] == "session.interrupted"]
    assert len(recovered) >= 3, "too few kills landed inside a session"
    assert all(r["payload"]["reason"] == "crash_recovery" for r in recovered)


def test_crash_between_linking_a_batch_and_its_commit_is_undone_at_next_open(
        tmp_path: Path) -> None:
    """The process dies after the batch's objects and session links exist but before the
    catalog commit: the next open removes them (their sources are still on the recorder),
    verify is clean, and the next offload stores every file."""
    src = tmp_path / "card"
    (src / "DCIM").mkdir(parents=True)
    for n in range(5):
        (src / "DCIM" / f"F{n}.MP4").write_bytes(os.urandom(50_000 + n))
    store_dir = tmp_path / "store"
    script = (
        "import os, sys\n"
        "from dockd.clock import SystemClock\n"
        "from dockd.config import parse_config\n"
        "from dockd.store import ingest\n"
        "from dockd.store.evidence import open_store\n"
        "ingest._Session._commit = lambda self, linked: os._exit(9)\n"
        f"store = open_store(parse_config({{'dock': {{'store_dir': {str(store_dir)!r}}}}}),"
        " SystemClock())\n"
        f"ingest.Ingestor(store, 't').ingest(__import__('pathlib').Path({str(src)!r}), 'REC1')\n"
    )
    died = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert died.returncode == 9, died.stderr
    linked = [p for p in (store_dir / "objects").rglob("*") if p.is_file()]
    assert len(linked) == 5, "the crash was meant to come after the links"

    verify = run_dockd(["verify", "--store", store_dir, "--json"])
    assert verify.returncode == 0, verify.stdout
    assert not [p for p in (store_dir / "objects").rglob("*") if p.is_file()]
    assert not [p for p in (store_dir / "sessions").rglob("*") if p.is_file()]
    log = json.loads(run_dockd(["log", "--store", store_dir, "--json"]).stdout)
    undone = [r for r in log if r["type"] == "store.batch_undone"]
    assert len(undone) == 1 and len(undone[0]["payload"]["shas"]) == 5

    again = run_dockd(["ingest", str(src), "--recorder", "REC1", "--store", store_dir, "--json"])
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["stored"] == 5
    assert run_dockd(["verify", "--store", store_dir]).returncode == 0
