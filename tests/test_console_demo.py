"""``dockd demo`` (issue 15 item 9): its recorders carry real MP4 recordings, so the first
export it suggests has every art. 12(4) field; on a terminal ``q`` really quits."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from dockd.records.fields import ART_12_4_FIELDS
from dockd.sim.demo import READY, run_demo
from dockd.sim.media import CLIP, clip_starting_at, fill_card
from dockd.store.metadata import read_metadata
from tests.conftest import REPO_ROOT, run_dockd
from tests.test_console_tmux import Terminal, workdir  # noqa: F401 (fixture)


def test_clip_copies_carry_their_own_start(tmp_path: Path) -> None:
    starts = [dt.datetime(2026, 12, 1, 1, 10, tzinfo=dt.UTC),
              dt.datetime(2031, 6, 30, 23, 59, 59, tzinfo=dt.UTC)]
    made = fill_card(tmp_path, "DSJ0001", starts)
    datas = [(tmp_path / r.relpath).read_bytes() for r in made]
    assert len(set(datas)) == 2 and all(len(d) == CLIP.stat().st_size for d in datas)
    for recording in made:
        meta = read_metadata(tmp_path / recording.relpath, recording.relpath)
        assert (meta.format, meta.start_time) == ("mp4", recording.start)
        assert meta.duration_s is not None and 5.5 < meta.duration_s < 6.5
        assert meta.end_time == recording.start + dt.timedelta(seconds=meta.duration_s)
    assert made[0].relpath == "DCIM/100MEDIA/DSJ0001_20261201_011000.MP4"
    assert clip_starting_at(starts[0]) == datas[0]  # the same start, the same bytes


def _demo_root(stdout: str) -> Path:
    found = re.search(r"\(config (/\S+)/dockd\.toml\)", stdout)
    assert found, stdout
    return Path(found[1])


@pytest.fixture
def demo_roots() -> Iterator[list[Path]]:
    roots: list[Path] = []
    yield roots
    for root in roots:  # the demo leaves its store for the user to explore
        shutil.rmtree(root, ignore_errors=True)


def test_first_export_of_the_demo_has_every_art_12_4_field(demo_roots: list[Path]) -> None:
    done = run_dockd(["demo", "--recorders", "2", "--no-broker"], timeout=180)
    assert done.returncode == 0, done.stderr + done.stdout
    demo_roots.append(_demo_root(done.stdout))
    hint = done.stdout.split("next: ", 1)[1].splitlines()[1:3]
    assert [h.split()[:3] for h in hint] == [["dockd", "case", "tag"],
                                             ["dockd", "export", "--case"]]
    for line in hint:
        step = run_dockd(shlex.split(line)[1:])
        assert step.returncode == 0, (line, step.stderr)
    out = demo_roots[0] / "export"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["recordings"]) == 4
    for recording in manifest["recordings"]:
        missing = [k for k in ART_12_4_FIELDS if recording[k] in (None, "")]
        assert not missing, (recording["file"], missing)
        assert recording["format"] == "mp4" and 5.5 < recording["length_s"] < 6.5
    assert not manifest.get("missing_fields")


# One language: the demo takes ~40 s; tests/test_console_tmux.py has q in English.
@pytest.mark.parametrize("lang,quit_text,ready", [("zh_CN.UTF-8", "按 q 退出", "就绪")])
def test_q_quits_the_demo_on_a_terminal(workdir: Path, lang: str,  # noqa: F811
                                         quit_text: str, ready: str) -> None:
    terminal = Terminal(workdir)
    try:  # TMPDIR: the demo's directory lands in workdir, removed after the test
        terminal.start(["env", f"TMPDIR={workdir}", sys.executable, "-m", "dockd.cli", "demo",
                        "--recorders", "1", "--no-broker", "--keep-running"], lang)
        terminal.wait_for(quit_text, "DSJ0001", ready, timeout=90)
        terminal.tmux("send-keys", "q")
        # With --keep-running, q ends the demo as it should end: daemon stopped, store
        # verified, exit 0 (without the q the demo would run on).
        assert terminal.exit_code(timeout=60) == 0
    finally:
        terminal.close()
    [config] = workdir.glob("dockd-demo-*/dockd.toml")
    verify = run_dockd(["verify", "--config", config])
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stdout + verify.stderr


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_closed_terminal_stops_the_demo_and_its_daemon(sig: int,
                                                        demo_roots: list[Path]) -> None:
    """SIGHUP (the terminal or tmux session closed) or SIGTERM: the demo ends as Ctrl-C or q
    end it (with --keep-running: the daemon stopped, the store verified, exit 0) and takes its
    daemon and broker with it; nothing of it keeps running."""
    demo = subprocess.Popen([sys.executable, "-m", "dockd.cli", "demo", "--recorders", "1",
                             "--keep-running"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_demo_env())
    everything = [psutil.Process(demo.pid)]
    try:
        assert demo.stdout is not None
        for line in demo.stdout:  # one line per bay state change (not a terminal)
            if "ready" in line:
                break
        children = everything[0].children(recursive=True)
        everything += children
        daemons = [c for c in children if "run" in c.cmdline()]
        assert daemons, [c.cmdline() for c in children]
        config = Path(daemons[0].cmdline()[-1])
        demo_roots.append(config.parent)
        demo.send_signal(sig)
        assert demo.wait(60) == 0, demo.stderr.read() if demo.stderr else None
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [c.cmdline() for c in alive]
    finally:
        for process in everything:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        demo.wait()


def test_an_interrupt_just_as_the_bays_settle_still_stops_verifies_and_exits_0(
        demo_roots: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The signal of the test above, at its worst moment: the first settled state is shown
    and the interrupt comes before the keep-running phase begins (it used to end the demo
    with "interrupted", exit 130, and no verify)."""
    shown: list[dict[str, object]] = []

    def interrupted_at_first_show_of_a_settled_state(state: dict[str, object]) -> None:
        shown.append(state)
        bays = state["bays"]
        assert isinstance(bays, list)
        if bays and bays[0]["state"] in READY:
            raise KeyboardInterrupt

    assert run_demo(1, None, None, True, interrupted_at_first_show_of_a_settled_state,
                    local_broker=False) == 0
    out = capsys.readouterr().out
    demo_roots.append(_demo_root(out))
    assert "intact" in out, out  # the store was verified after the daemon stopped
    last = shown[-1]["bays"]
    assert isinstance(last, list) and len(last) == 1 and last[0]["state"] in READY


def _demo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DOCKD_CONFIG"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env
