"""One class per exit code, all in dockd/errors.py, and the table of docs/store.md agrees."""

from __future__ import annotations

import re
from pathlib import Path

import dockd.cli  # noqa: F401  (imports every command, so every error class exists)
from dockd import errors
from dockd.errors import exit_code_classes

STORE_DOC = Path(__file__).resolve().parent.parent / "docs" / "store.md"


def documented_codes() -> dict[int, str]:
    text = STORE_DOC.read_text().split("## Exit codes", 1)[1]
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \|", text, re.M)
    return {int(code): name for code, name in rows}


def test_each_exit_code_has_one_class_in_errors_py() -> None:
    classes = exit_code_classes()  # raises when two classes set the same code
    assert all(cls.__module__ == errors.__name__ for cls in classes.values())
    assert len(classes) == len({cls for cls in classes.values()})


def test_the_docs_table_lists_exactly_the_exit_code_classes() -> None:
    assert documented_codes() == {code: cls.__name__ for code, cls in exit_code_classes().items()}
