"""Reading one TOML table with type checks, collecting every problem instead of stopping.

A bad value is recorded under its dotted key and the reader carries on with the default, so
``dockd check-config`` can list every problem of a file at once; :func:`dockd.config.parse_config`
raises one :class:`~dockd.errors.ConfigError` (exit 78) naming them when any was found.
Unknown keys are problems too: a misspelt key silently ignored is a setting the
administrator believes is on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from dockd.errors import ConfigError
from dockd.i18n import N_, _

T = TypeVar("T")
TomlValue = object
"""A value from :mod:`tomllib` (str, int, float, bool, datetime, list or dict)."""


class Problems:
    """Every problem found in one config document, in the order found (one per key)."""

    def __init__(self) -> None:
        self._by_key: dict[str, str] = {}

    def add(self, key: str, message: str) -> None:
        """Record ``message`` for ``key``, unless that key already has a problem."""
        self._by_key.setdefault(key, message)

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(self._by_key.values())

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def raise_if_any(self) -> None:
        """One ConfigError naming the first problem and counting the rest."""
        if self._by_key:
            raise ConfigError.of(self.messages)


class TableReader:
    """Reads one TOML table, checking types and rejecting keys nobody asked for."""

    def __init__(self, data: object, prefix: str, problems: Problems | None = None) -> None:
        self.problems = problems if problems is not None else Problems()
        self.prefix = prefix
        self.seen: set[str] = set()
        if isinstance(data, dict):
            self.data: dict[str, TomlValue] = data
        else:
            self.data = {}
            self.problems.add(prefix, _("{key}: must be a table, got {type}").format(
                key=prefix, type=type_name(data)))

    def key(self, name: str) -> str:
        """The dotted name of a key, for messages."""
        return f"{self.prefix}.{name}" if self.prefix else name

    def problem(self, name: str, message: str) -> None:
        """Record a problem of key ``name`` (``message`` starts after the key)."""
        self.problems.add(self.key(name), f"{self.key(name)}: {message}")

    def has_problem(self, name: str) -> bool:
        """True when key ``name`` (or anything below it) already has a recorded problem."""
        key = self.key(name)
        return any(k == key or k.startswith(key + ".") or k.startswith(key + "[")
                   for k in self.problems._by_key)

    def get(self, name: str, kind: type[T] | tuple[type, ...], default: T) -> T:
        """The value of ``name`` if it has the right type, else ``default``."""
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a config that says `port = true` is wrong.
        if isinstance(value, bool) and bool not in kinds:
            self.problem(name, _("expected {kinds}, got a boolean").format(kinds=_kinds(kinds)))
            return default
        if not isinstance(value, kinds):
            self.problem(name, _("expected {kinds}, got {type}").format(kinds=_kinds(kinds),
                                                                         type=type_name(value)))
            return default
        return value  # type: ignore[return-value]

    def string(self, name: str, default: str, pattern: re.Pattern[str] | None = None,
               hint: str = "") -> str:
        value = self.get(name, str, default)
        if pattern is not None and value != default and not pattern.match(value):
            self.problem(name, _("{value!r} is not valid; expected {hint}").format(value=value,
                                                                                   hint=hint))
            return default
        return value

    def required_string(self, name: str, pattern: re.Pattern[str] | None = None,
                        hint: str = "") -> str:
        """A string that must be present (and match ``pattern``); "" when it is not."""
        if name not in self.data:
            self.seen.add(name)
            self.problem(name, _("missing; expected {hint}").format(hint=hint or _("a string")))
            return ""
        value = self.get(name, str, "")
        if pattern is not None and value and not pattern.match(value):
            self.problem(name, _("{value!r} is not valid; expected {hint}").format(value=value,
                                                                                   hint=hint))
            return ""
        return value

    def integer(self, name: str, default: int, minimum: int | None = None,
                maximum: int | None = None) -> int:
        value = self.get(name, int, default)
        return value if self._within(name, value, minimum, maximum) else default

    def number(self, name: str, default: float, minimum: float | None = None,
               maximum: float | None = None) -> float:
        value = float(self.get(name, (int, float), default))
        # nan compares false with every bound: unchecked it would switch a check off.
        if not math.isfinite(value):
            self.problem(name, _("{value} is not a finite number").format(value=value))
            return default
        return value if self._within(name, value, minimum, maximum) else default

    def _within(self, name: str, value: float, minimum: float | None,
                maximum: float | None) -> bool:
        if minimum is not None and value < minimum:
            self.problem(name, _("{value} is below the minimum {minimum}").format(value=value,
                                                                                   minimum=minimum))
            return False
        if maximum is not None and value > maximum:
            self.problem(name, _("{value} is above the maximum {maximum}").format(value=value,
                                                                                   maximum=maximum))
            return False
        return True

    def boolean(self, name: str, default: bool) -> bool:
        return self.get(name, bool, default)

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        value = self.get(name, str, default)
        if value not in choices:
            self.problem(name, _("{value!r} is not one of {choices}").format(
                value=value, choices=", ".join(repr(c) for c in choices)))
            return default
        return value

    def path(self, name: str, default: Path | None) -> Path | None:
        value = self.get(name, (str, type(None)), None if default is None else str(default))
        if value is None:
            return None
        if not value or "\0" in value:
            self.problem(name, _("must be a path, got an empty string") if not value
                         else _("a path cannot contain a NUL character"))
            return default
        return Path(value)

    def optional_string(self, name: str, pattern: re.Pattern[str] | None = None,
                        hint: str = "") -> str | None:
        """A string or nothing; a present value must match ``pattern``."""
        value = self.get(name, (str, type(None)), None)
        if value is not None and pattern is not None and not pattern.match(value):
            self.problem(name, _("{value!r} is not valid; expected {hint}").format(value=value,
                                                                                   hint=hint))
            return None
        return value

    def string_list(self, name: str, default: Sequence[str],
                    choices: Sequence[str] | None = None) -> tuple[str, ...]:
        value = self.get(name, list, list(default))
        for item in value:
            if not isinstance(item, str):
                self.problem(name, _("every entry must be a string"))
                return tuple(default)
            if choices is not None and item not in choices:
                self.problem(name, _("{value!r} is not one of {choices}").format(
                    value=item, choices=", ".join(repr(c) for c in choices)))
                return tuple(default)
        return tuple(value)

    def table(self, name: str) -> TableReader:
        """A sub-table (absent = empty)."""
        return TableReader(self.get(name, dict, {}), self.key(name), self.problems)

    def tables(self, name: str) -> list[TableReader]:
        """An array of tables (``[[name]]``)."""
        value = self.get(name, list, [])
        return [TableReader(item, f"{self.key(name)}[{i}]", self.problems)
                for i, item in enumerate(value)]

    def each_table(self, name: str, parse: Callable[[TableReader], T | None]) -> tuple[T, ...]:
        """Parse every entry of ``[[name]]``; an entry whose parser gives None is left out
        (its problems are recorded)."""
        parsed = (parse(t) for t in self.tables(name))
        return tuple(entry for entry in parsed if entry is not None)

    def finish(self) -> None:
        """Record a problem for every key that no reader asked for."""
        for unknown in sorted(set(self.data) - self.seen):
            known = ", ".join(sorted(self.seen)) or "none"
            self.problem(unknown, _("unknown key (known keys here: {known})").format(known=known))


def unique(t: TableReader, name: str, values: Sequence[str], what: str) -> None:
    """Record a problem when a value appears twice in ``[[name]]``."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            t.problem(name, _("{what} {value!r} appears twice").format(what=what, value=value))
        seen.add(value)


def type_name(value: object) -> str:
    """A type as a config author would say it (in the reader's language)."""
    kind = _KIND_NAMES.get(type(value))
    return _(kind) if kind else type(value).__name__


def _kinds(kinds: tuple[type, ...]) -> str:
    return _(" or ").join(_(_KIND_NAMES[k]) if k in _KIND_NAMES else k.__name__ for k in kinds)


_KIND_NAMES = {str: N_("a string"), int: N_("an integer"), float: N_("a number"),
               bool: N_("true or false"), list: N_("an array"), dict: N_("a table"),
               type(None): N_("nothing")}
