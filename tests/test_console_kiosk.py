"""``dockd console --kiosk``: how the dock's own screen (dockd-console.service on tty1)
shows a Chinese view, and the English fallback seen in a real terminal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from dockd.report.kiosk import FRAMEBUFFER, INSIDE_FBTERM, plan_kiosk
from tests.test_console_tmux import ENGLISH_SCREEN, Terminal, channels, terminal, workdir
from tests.test_console_view import three_bay_snapshot

__all__ = ["channels", "terminal", "workdir"]  # fixtures used below

ARGV = ("/opt/dockd/venv/bin/python", "-m", "dockd.cli", "console", "--kiosk")


def _which(found: dict[str, str]) -> Any:
    return lambda name: found.get(name)


@pytest.mark.parametrize("env", [{"LANG": "zh_CN.UTF-8"}, {"LANGUAGE": "zh_CN:en", "LANG": "C"},
                                 {"LC_ALL": "zh_CN.UTF-8", "LANG": "en_GB.UTF-8"}])
def test_chinese_runs_inside_fbterm_when_it_can_draw(env: dict[str, str]) -> None:
    plan = plan_kiosk(ARGV, env, _which({"fbterm": "/usr/bin/fbterm"}), {FRAMEBUFFER}.__contains__)
    assert plan.exec_argv == ("/usr/bin/fbterm", "--", *ARGV)
    assert plan.env == {INSIDE_FBTERM: "1"} and plan.note is None


@pytest.mark.parametrize(("fbterm", "paths", "why"), [
    (None, {FRAMEBUFFER}, "fbterm is not installed"),
    ("/usr/bin/fbterm", set(), "there is no framebuffer (/dev/fb0)"),
])
def test_chinese_without_fbterm_or_framebuffer_falls_back_to_english(
        fbterm: str | None, paths: set[str], why: str) -> None:
    found = {"fbterm": fbterm} if fbterm else {}
    plan = plan_kiosk(ARGV, {"LANG": "zh_CN.UTF-8"}, _which(found), paths.__contains__)
    assert plan.exec_argv is None
    assert plan.env["LANGUAGE"] == "en"
    assert plan.note is not None and why in plan.note and "fbterm" in plan.note


@pytest.mark.parametrize("env", [{"LANG": "en_GB.UTF-8"}, {}, {"LANG": "zh_CN.UTF-8", INSIDE_FBTERM: "1"},
                                 {"LANGUAGE": "en", "LANG": "zh_CN.UTF-8"}])
def test_english_or_already_inside_fbterm_runs_as_it_is(env: dict[str, str]) -> None:
    plan = plan_kiosk(ARGV, env, _which({"fbterm": "/usr/bin/fbterm"}), {FRAMEBUFFER}.__contains__)
    assert plan.exec_argv is None and dict(plan.env) == {} and plan.note is None


def test_kiosk_on_a_text_console_without_fbterm_shows_english(
        terminal: Terminal, channels: Any, workdir: Path) -> None:
    channel = channels(three_bay_snapshot)
    log = workdir / "stderr"
    # PATH without fbterm, as on a dock where it is not installed
    argv = ["env", "PATH=/nonexistent", sys.executable, "-m", "dockd.cli", "console", "--kiosk",
            "--socket", str(channel.path)]
    terminal.start(["sh", "-c", f'exec "$@" 2>{log}', "kiosk", *argv], "zh_CN.UTF-8")
    screen = terminal.wait_for(*ENGLISH_SCREEN)
    assert "按 q 退出" not in screen
    terminal.tmux("send-keys", "q")
    assert terminal.exit_code() == 0
    assert "cannot draw Chinese and fbterm is not installed" in log.read_text()
