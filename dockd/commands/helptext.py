"""What ``dockd COMMAND --help`` shows besides the options: required options marked as
such, and an epilog with examples and the command's exit codes (the man pages are made
from the same parsers, see :mod:`dockd.manpages`)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Sequence

from dockd.i18n import N_, _

# One line per exit code of dockd.errors (tests/test_cli_help.py keeps them in step).
EXIT_TEXTS: dict[int, str] = {
    0: N_("success"),
    1: N_("an integrity check failed: store, catalog, custody log, package or stream"),
    2: N_("the command line is wrong (option, serial, item, date) or names something unknown"),
    3: N_("some files were not stored; each is named"),
    66: N_("the recorder volume is missing or unreadable"),
    69: N_("a device or service did not answer: recorder, MQTT broker, daemon, PDF font"),
    70: N_("dockd did not reach the state it promised (demo, simulated dock)"),
    73: N_("the evidence store cannot be read or written (read-only, owner, damaged, locked)"),
    75: N_("the archive or ledger did not answer; try again later"),
    77: N_("you lack the role the command needs"),
    78: N_("the configuration is missing, unreadable or has a bad value"),
    130: N_("interrupted (Ctrl-C)"),
}

# Example lines are wrapped at this width with a shell continuation (" \\").
EXAMPLE_WIDTH = 86
# A shell word: a quoted string, a trailing comment, or anything up to a space.
_WORD = re.compile(r"#.*$|'[^']*'\S*|\S+")

# The codes most commands share: success, bad command line, unreadable store, bad config.
STORE_CODES = (0, 2, 73, 78)
# ... and those of a command that needs a role (dockd.identity.Role): 77 without it.
ROLE_CODES = (*STORE_CODES, 77)


# argparse's error messages (its gettext domain has no Chinese) and ours for them.
_ARGPARSE_ERRORS = (
    (re.compile(r"^the following arguments are required: (?P<args>.*)$"),
     N_("the following arguments are required: {args}")),
    (re.compile(r"^unrecognized arguments: (?P<args>.*)$"), N_("unrecognized arguments: {args}")),
    (re.compile(r"^argument (?P<arg>\S+): invalid choice: (?P<value>.*?) \(choose from "
                r"(?P<choices>.*)\)$"),
     N_("argument {arg}: invalid choice: {value} (choose from {choices})")),
    (re.compile(r"^argument (?P<arg>\S+): expected one argument$"),
     N_("argument {arg}: expected one argument")),
    (re.compile(r"^argument (?P<arg>\S+): invalid (?P<type>\w+) value: (?P<value>.*)$"),
     N_("argument {arg}: invalid {type} value: {value}")),
    (re.compile(r"^one of the arguments (?P<args>.*) is required$"),
     N_("one of the arguments {args} is required")),
    (re.compile(r"^argument (?P<arg>\S+): not allowed with argument (?P<other>\S+)$"),
     N_("argument {arg}: not allowed with argument {other}")),
)


def translate_argparse_error(message: str) -> str:
    """An argparse error message in the reader's language (unchanged when unknown)."""
    for pattern, form in _ARGPARSE_ERRORS:
        match = pattern.match(message)
        if match:
            return _(form).format(**match.groupdict())
    return message


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter keeping epilog lines as written and marking required options
    ``(required)``: argparse lists them among the optional ones."""

    def add_usage(self, usage: str | None, actions: Iterable[argparse.Action],
                  groups: Iterable[argparse._MutuallyExclusiveGroup],
                  prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, _("usage: ") if prefix is None else prefix)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if action.required and action.option_strings and text:
            return required(text)
        return text


def required(text: str) -> str:
    """Help text of an option the command refuses to run without although argparse cannot
    require it (the parser also serves a subcommand, or the check cites a rule)."""
    return _("{text} (required)").format(text=text)


def epilog(examples: Sequence[str], codes: Iterable[int]) -> str:
    """The epilog of one command: its examples (command lines, with a ``# comment`` when
    useful) and what each of its exit codes means."""
    lines = [_("examples:")]
    for example in examples:
        lines += _wrapped(example)
    lines += ["", _("exit status:")]
    lines += [f"  {code:<4} {_(EXIT_TEXTS[code])}" for code in sorted(set(codes))]
    return "\n".join(lines)


def group_epilog(prog: str) -> str:
    """The epilog of a command with actions: where each action's examples are."""
    return _("Each action has its own options, examples and exit status:"
             " {prog} ACTION --help").format(prog=prog)


def _cells(text: str) -> int:
    """Terminal cells ``text`` takes. rich is asked only for text that is not ASCII (one
    cell a character): its import was a tenth of the start of a command such as ``log``."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def _wrapped(example: str) -> list[str]:
    """One example as lines of at most EXAMPLE_WIDTH terminal cells (a Chinese character
    takes two), broken before an option so it stays with its value; a trailing comment
    may run over."""
    pieces: list[str] = []
    for word in _WORD.findall(example):
        if pieces and not word.startswith(("-", "#")):
            pieces[-1] += " " + word
        else:
            pieces.append(word)
    lines: list[str] = []
    line = " "
    for piece in pieces:
        # A comment stays on its line: after a continuation it would end the command.
        if (_cells(line) + 1 + _cells(piece) > EXAMPLE_WIDTH and line.strip()
                and not piece.startswith("#")):
            lines.append(line + " \\")
            line = "     "
        line += " " + piece
    return [*lines, line]
