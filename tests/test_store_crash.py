"""Crash safety: ``dockd ingest`` killed with SIGKILL at many points, then run again."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.clock import SystemClock
from dockd.store.evidence import open_store
from dockd.store.ingest import Ingestor
from dockd.store.queries import catalog_items
from dockd.store.verify import verify_store
from tests.conftest import run_dockd, store_config_for, write_tree

Cli = Callable[..., subprocess.CompletedProcess[str]]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]
REPO_ROOT = Path(__file__).resolve().parent.parent



def _wait_for_session_lock(proc: subprocess.Popen[bytes], store_dir: Path,
                           stale: set[Path]) -> bool:
    """Poll until the running ingest holds a new session lock (its session has started;
    ``stale`` are those a killed run left); False if the process ended first."""
    while proc.poll() is None:
        if set((store_dir / "locks").glob("session-*.lock")) - stale:
            return True
        time.sleep(0.002)
    return False


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
    # Calibrate: one run of the same size into a scratch store gives when its session
    # started and ended after the process did, so the kills land anywhere from the
    # interpreter's start-up to the end of the session (a session is a small part of a
    # run: the start-up of the interpreter and the store takes most of it).
    t0 = time.time()
    calib = [*cmd[:-1], str(tmp_path / "calibration-store")]
    subprocess.run(calib, env=env, capture_output=True, check=True)
    calibration = sqlite3.connect(tmp_path / "calibration-store" / "catalog.sqlite")
    started, ended = (dt.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() - t0
                      for t in calibration.execute("SELECT started_at, ended_at FROM sessions")
                      .fetchone())
    calibration.close()
    kills = 0
    for i in range(14):
        # new material before every run, so every run has work to be killed in
        for j in range(12):
            name = f"DCIM/run{i:02}-{j:02}.MP4"
            files[name] = rng.randbytes(rng.choice([0, 10_000, 300_000, 2_000_000]))
            (src / name).write_bytes(files[name])
        stale = set((store_dir / "locks").glob("session-*.lock"))
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i % 2:
            # Every other kill lands inside the session: once its lock file appears, after
            # a random part of the calibrated session's length.
            seen = _wait_for_session_lock(proc, store_dir, stale)
            delay = rng.uniform(0, ended - started) if seen else 0.0
        else:  # the others anywhere from the interpreter's start-up to the session's end
            delay = rng.uniform(0.3 * started, ended)
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
        "ingest._Session._commit = lambda self, *batch: os._exit(9)\n"
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


# Where, inside the publication of one batch of small files, the process is killed: the
# n-th call of a step of ContentStore.publish_batch (or of the commit it calls) kills the
# process with SIGKILL before (or, for "after", just after) the step runs.
_KILL_STEPS = {
    "sync": ("dockd.store.content_store", "ContentStore", "sync", "before"),
    "read_back": ("dockd.store.content_store", "ContentStore", "verify_staged_all", "before"),
    "intent": ("dockd.store.content_store", "ContentStore", "write_intent", "after"),
    "link": ("dockd.store.content_store", "ContentStore", "_publish_one", "before"),
    "linked": ("dockd.store.content_store", "ContentStore", "_publish_one", "after"),
    "rows": ("dockd.store.ingest_catalog", None, "record_files", "after"),
    "custody": ("dockd.store.custody", "CustodyLog", "record_many", "after"),
    "clear": ("dockd.store.content_store", "ContentStore", "clear_intent", "before"),
}
_KILLER = '''
import importlib, os, signal, sys
from pathlib import Path
from dockd.clock import SystemClock
from dockd.config import parse_config
from dockd.store.evidence import open_store
from dockd.store.ingest import Ingestor
module, owner, name, when, nth, store_dir, src = sys.argv[1:8]
target = importlib.import_module(module)
if owner != "-":
    target = getattr(target, owner)
real = getattr(target, name)
calls = []
def step(*args, **kwargs):
    calls.append(1)
    if when == "before" and len(calls) == int(nth):
        os.kill(os.getpid(), signal.SIGKILL)
    result = real(*args, **kwargs)
    if when == "after" and len(calls) == int(nth):
        os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(target, name, step)
config = parse_config({"dock": {"id": "dock-test", "store_dir": store_dir},
                       "ingest": {"commit_batch_files": 8}})
store = open_store(config, SystemClock())
Ingestor(store, "t").ingest(Path(src), "REC-1")
os._exit(3)  # the kill point was never reached
'''


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(step=st.sampled_from(sorted(_KILL_STEPS)), nth=st.integers(1, 3),
       sizes=st.lists(st.sampled_from([0, 1, 4096, 65_536, 300_000]), min_size=10, max_size=20),
       duplicate=st.booleans())
def test_kill_9_anywhere_in_a_batch_of_small_files_loses_and_doubles_nothing(
        step: str, nth: int, sizes: list[int], duplicate: bool) -> None:
    """SIGKILL at a step of publishing a batch (batches of 8 here): the next open undoes
    what was left half-published, the next offload stores every file exactly once, and
    verify is clean."""
    base = Path(tempfile.mkdtemp(prefix="dockd-kill-"))
    try:
        rng = random.Random(f"{step}{nth}{sizes}")
        files = {f"DCIM/100MEDIA/F{i:03}.MP4": rng.randbytes(size) for i, size in enumerate(sizes)}
        if duplicate:  # the same bytes twice in the volume: one object, two sightings
            files["DCIM/101MEDIA/COPY.MP4"] = files["DCIM/100MEDIA/F000.MP4"]
        src = write_tree(base / "src", files)
        store_dir = base / "store"
        module, owner, name, when = _KILL_STEPS[step]
        killed = subprocess.run(
            [sys.executable, "-c", _KILLER, module, owner or "-", name, when, str(nth),
             str(store_dir), str(src)],
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), capture_output=True, text=True,
            timeout=120, check=False)
        assert killed.returncode in (-signal.SIGKILL, 3), killed.stderr
        store = open_store(store_config_for(store_dir), SystemClock())
        try:
            report = Ingestor(store, "t").ingest(src, "REC-1")
            assert report.result == "completed", report.summary()
            catalog = catalog_items(store.catalog)
            by_path: dict[str, set[str]] = {}
            for item in catalog:
                by_path.setdefault(item["source_path"], set()).add(item["sha256"])
            assert by_path == {p: {hashlib.sha256(d).hexdigest()} for p, d in files.items()}
            objects = [p.name for p in (store_dir / "objects").rglob("*") if p.is_file()]
            assert sorted(objects) == sorted({hashlib.sha256(d).hexdigest()
                                              for d in files.values()})
            result = verify_store(store, "t")
            assert result.ok, result.problems
            leftovers = [p.name for p in (store_dir / "tmp").iterdir()
                         if p.name not in (".publish.lock", ".setup.lock")]
            assert leftovers == [store.content._scratch.name]  # type: ignore[union-attr]
        finally:
            store.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
