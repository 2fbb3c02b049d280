"""Man pages generated from the argparse definitions (dockd.manpages), rendered by groff."""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
from pathlib import Path

import pytest

from dockd.cli import build_parser
from dockd.errors import DockdError
from dockd.manpages import _subcommands, render_pages, write_pages

DATE = dt.date(2026, 12, 1)


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return render_pages(build_parser(), DATE, "9.9.9")


def _roff(text: str) -> str:
    return text.replace("-", "\\-")


def test_one_page_per_command_naming_every_option_and_action(pages: dict[str, str]) -> None:
    parser = build_parser()
    commands = list(_subcommands(parser))
    assert set(pages) == {"dockd.1"} | {f"dockd-{name}.1" for name, _h, _s in commands}
    for name, help_text, sub in commands:
        page = pages[f"dockd-{name}.1"]
        assert f".TH \"DOCKD-{name.upper()}\" \"1\" \"2026-12-01\" \"dockd 9.9.9\"" in page
        assert _roff(help_text) in page
        assert f"\\fBdockd {_roff(name)}\\fR" in pages["dockd.1"]
        parsers = [sub, *(s for _n, _h, s in _subcommands(sub))]
        for each in parsers:
            assert _roff(each.prog) in page
            for action in each._actions:
                for option in action.option_strings:
                    assert f"\\fB{_roff(option)}\\fR" in page, (name, option)
                if action.help and action.help != argparse.SUPPRESS and "%" not in action.help:
                    assert _roff(action.help) in page, (name, action.help)


def test_required_options_and_exit_codes_are_stated(pages: dict[str, str]) -> None:
    add = pages["dockd-recorders.1"]
    brand = add.index("\\fB\\-\\-brand\\fR")
    assert "(required)" in add[brand:brand + 80]
    codes = {cls.exit_code for cls in _all_errors(DockdError)} | {0}
    status = pages["dockd.1"].split(".SH EXIT STATUS")[1].split(".SH")[0]
    for code in codes:
        assert f"\\fB{code}\\fR" in status


def test_epilog_lines_and_nested_actions_are_kept() -> None:
    parser = argparse.ArgumentParser(prog="dockd")
    sub = parser.add_subparsers()
    tool = sub.add_parser("tool", help="do a thing", epilog="Examples:\n  dockd tool one --fast\n.dot line")
    actions = tool.add_subparsers()
    one = actions.add_parser("one", help="the first way")
    one.add_argument("--fast", action="store_true", help="quickly, 100%% of the time")
    page = render_pages(parser, DATE)["dockd-tool.1"]
    assert ".nf\nExamples:\n  dockd tool one \\-\\-fast\n\\&.dot line\n.fi" in page
    assert ".SS dockd tool one" in page and "quickly, 100% of the time" in page


def test_groff_renders_every_page_without_warnings(tmp_path: Path) -> None:
    written = write_pages(tmp_path, DATE)
    assert len(written) > 10
    for path in written:
        result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-k", "-z", path],
                                capture_output=True, text=True)
        assert result.returncode == 0 and result.stderr == "", (path.name, result.stderr)
    shown = subprocess.run(["man", "-l", tmp_path / "dockd-ingest.1"], capture_output=True, text=True,
                           env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    assert "dockd ingest" in shown.stdout and "--recorder" in shown.stdout


def _all_errors(base: type[DockdError]) -> list[type[DockdError]]:
    out = []
    for sub in base.__subclasses__():
        out += [sub, *_all_errors(sub)]
    return out
