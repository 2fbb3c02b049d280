"""Help texts (issue 15 item 7): every option of every command described, required options
marked, and every command with examples that parse and the exit codes it can end with."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator

import pytest
from rich.cells import cell_len

from dockd.cli import build_parser
from dockd.commands.helptext import EXAMPLE_WIDTH, EXIT_TEXTS, epilog
from dockd.errors import UsageError, exit_code_classes
from tests.conftest import run_dockd


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases once
                yield from _parsers(sub)


def _is_leaf(parser: argparse.ArgumentParser) -> bool:
    return not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def _sections(parser: argparse.ArgumentParser) -> tuple[list[str], list[int]]:
    """The examples (continuations joined, comments dropped) and exit codes of an epilog."""
    text = parser.epilog or ""
    assert "examples:" in text and "exit status:" in text, f"{parser.prog}: no epilog"
    examples_part, status_part = text.split("examples:")[1].split("exit status:")
    examples = [re.sub(r"\s+#.*$", "", e).strip()
                for e in examples_part.replace("\\\n", " ").splitlines() if e.strip()]
    codes = [int(line.split()[0]) for line in status_part.splitlines() if line.strip()]
    return examples, codes


PARSERS = list(_parsers(build_parser()))
LEAVES = [p for p in PARSERS if _is_leaf(p)]


def test_the_tree_is_walked() -> None:
    assert len(LEAVES) > 35 and any(p.prog == "dockd ledger report weekly" for p in LEAVES)


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.prog)
def test_every_option_has_help(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{parser.prog} {choice.dest}: action without help"
            continue
        assert action.help and action.help != argparse.SUPPRESS and action.help.strip(), \
            f"{parser.prog} {'/'.join(action.option_strings) or action.dest}: no help text"


@pytest.mark.parametrize("parser", LEAVES, ids=lambda p: p.prog)
def test_every_command_has_examples_that_parse_and_its_exit_codes(
        parser: argparse.ArgumentParser) -> None:
    examples, codes = _sections(parser)
    ours = [e for e in examples if e.startswith("dockd ")]
    assert ours, f"{parser.prog}: no example of itself"
    for example in ours:
        words = shlex.split(example)[1:]
        try:
            args = build_parser().parse_args(words)
        except UsageError as exc:
            raise AssertionError(f"{parser.prog}: example {example!r} does not parse: "
                                 f"{exc}") from exc
        assert callable(args.func)
    assert codes == sorted(set(codes)) and 0 in codes and 2 in codes, parser.prog
    assert set(codes) <= set(EXIT_TEXTS), parser.prog
    for line in (parser.epilog or "").splitlines():  # a trailing comment may run over
        assert cell_len(line.split(" # ")[0]) <= EXAMPLE_WIDTH + 2, line


def test_every_exit_code_has_a_line() -> None:
    assert set(EXIT_TEXTS) == {0, 130} | set(exit_code_classes())
    assert _sections(build_parser())[1] == sorted(EXIT_TEXTS)  # dockd --help lists them all


@pytest.mark.parametrize("parser", LEAVES, ids=lambda p: p.prog)
def test_required_options_are_shown_as_required(parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    for action in parser._actions:
        if action.required and action.option_strings:
            option = action.option_strings[-1]
            usage = text.split("\n\n")[0]
            assert f"[{option}" not in usage, f"{parser.prog}: {option} looks optional"
            described = text.split(f"\n  {option}", 1)[1].split("\n  -", 1)[0]
            assert "(required)" in described, f"{parser.prog}: {option} not marked"


def test_export_marks_what_it_checks_itself() -> None:
    """export's registration options are checked by the command (citing art. 13/14), as its
    parser also holds `export verify`: its usage and help still show them as required."""
    export = next(p for p in LEAVES if p.prog == "dockd export verify")
    parent = next(p for p in PARSERS if p.prog == "dockd export")
    help_text = parent.format_help()
    for option in ("--requester", "--requester-unit", "--reason", "--approved-by", "--out"):
        assert f"[{option} " not in help_text.split("\n\n")[0]
        line = help_text.split(f"\n  {option} ", 1)[1].split("\n  -", 1)[0]
        assert "(required)" in line, option
    assert export.epilog


def test_epilog_wraps_long_examples_between_options() -> None:
    text = epilog(["dockd access register --case XA-2026-0042 --requester 李法官 --unit "
                   "某某县人民法院 --reason 庭审质证 --approved-by 王所长"], (0, 2))
    lines = text.splitlines()
    assert lines[1].endswith(" \\") and lines[2].startswith("      --")
    assert "'" not in text and "--unit 某某县人民法院" in text  # an option keeps its value


@pytest.mark.parametrize("lang,heading,required", [("C", "exit status:", "(required)"),
                                                   ("zh_CN", "退出状态：", "（必填）")])
def test_help_through_the_real_command(lang: str, heading: str, required: str) -> None:
    done = run_dockd(["ingest", "--help"], env={"LANGUAGE": lang, "LC_ALL": ""})
    assert done.returncode == 0, done.stderr
    assert "dockd ingest /media/dockd/CAM001 --recorder CAM001" in done.stdout
    assert heading in done.stdout and required in done.stdout
    assert re.search(r"^\s+66\s+\S", done.stdout, re.M)  # its exit codes, each explained


@pytest.mark.parametrize("parser", LEAVES, ids=lambda p: p.prog)
def test_a_command_that_needs_a_role_lists_exit_77(parser: argparse.ArgumentParser) -> None:
    """Issue 14 item 8: the commands gated by dockd.identity.Role say they may refuse."""
    _examples, codes = _sections(parser)
    assert (parser.get_default("role") is not None) == (77 in codes), parser.prog


def test_every_help_text_has_its_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    """With LANGUAGE=zh_CN every command, action and option is described in Chinese: a help
    text left in English (no _() or no translation in dockd.po) fails here."""
    monkeypatch.setenv("LANGUAGE", "zh_CN")
    english = []
    for parser in _parsers(build_parser()):
        texts = [parser.epilog or ""]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                texts += [c.help or "" for c in action._choices_actions]
            else:
                texts.append(action.help or "")
        english += [f"{parser.prog}: {t!r}" for t in texts
                    if not re.search(r"[\u4e00-\u9fff]", t)]
    assert not english, "\n".join(english)
