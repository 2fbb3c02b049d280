"""User-facing text in Chinese and English through gettext.

The language follows the environment (LANGUAGE, LC_ALL, LC_MESSAGES, LANG, in gettext's
order), looked up on every call so a test or a long-lived process can change it. English
is the source text; ``dockd/locale/<lang>/LC_MESSAGES/dockd.mo`` holds the translations
(compiled from the ``.po`` next to it by ``python -m dockd.records.pocompile`` or msgfmt).
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext
import os
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

DOMAIN = "dockd"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_ENV_KEYS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def _(message: str) -> str:
    """``message`` in the language the environment asks for (English when none matches)."""
    return _translation(_env_languages()).gettext(message)


def keep_english() -> None:
    """From now on this process's messages are English whatever the locale: the daemon's
    texts become custody events, MQTT payloads and journald lines, which others parse and
    compare, so they must not change with the box's LANG (systemd passes /etc/locale.conf's
    LANG to services). Child processes (mount) inherit it and answer in English too."""
    # gettext stops at "C": no catalog, the English source text.
    os.environ["LANGUAGE"] = "C"


def N_(message: str) -> str:
    """Mark ``message`` for translation where it is defined; translate it where it is shown."""
    return message


@dataclass(frozen=True)
class Note:
    """A sentence kept as data: a stable code and its values, put into words only when a
    person reads it, in that person's language. What is stored (:meth:`to_json`) never
    depends on a language; the code's English template is the catalog's msgid.

    A value is shown as it is (numbers, hashes, field names, topics: data stays data),
    except a Note inside (rendered in the same language) and a list (its items joined)."""

    code: str
    args: Mapping[str, Any]

    def render(self, translate: Callable[[str], str] | None = None) -> str:
        """The sentence through ``translate`` (None: English); LookupError for a code no
        :class:`Sentence` defines."""
        english = Sentence.known[self.code].template
        values = {k: _shown(v, translate) for k, v in self.args.items()}
        try:
            return (translate(english) if translate else english).format(**values)
        except (KeyError, IndexError, ValueError):  # a catalog entry that lost a placeholder
            return english.format(**values)

    def __str__(self) -> str:
        return self.render()

    def to_json(self) -> dict[str, Any]:
        """``{"code": …, "args": {…}}`` with Notes inside as the same shape."""
        return {"code": self.code, "args": {k: _json(v) for k, v in self.args.items()}}

    @staticmethod
    def from_json(value: Any) -> Note | None:
        """The Note :meth:`to_json` made; None for anything else (an old row, a code this
        version does not know, values that do not fit its sentence)."""
        if not isinstance(value, dict) or not isinstance(value.get("args"), dict) \
                or not isinstance(value.get("code"), str):
            return None
        sentence = Sentence.known.get(value["code"])
        if sentence is None or set(value["args"]) != sentence.names:
            return None
        args: dict[str, Any] = {}
        for key, item in value["args"].items():
            if isinstance(item, dict):
                item = Note.from_json(item)
                if item is None:
                    return None
            elif isinstance(item, list):
                items = [Note.from_json(i) if isinstance(i, dict) else i for i in item]
                if any(i is None for i in items):
                    return None
                item = items
            args[key] = item
        return Note(sentence.code, args)


class Sentence:
    """One kind of :class:`Note`: its code and English template (marked with ``N_`` where
    it is defined, so the catalog test finds it). Calling it makes a Note."""

    known: ClassVar[dict[str, Sentence]] = {}
    code: str
    template: str
    names: frozenset[str]

    def __init__(self, code: str, template: str) -> None:
        if code in Sentence.known and Sentence.known[code].template != template:
            raise ValueError(f"sentence code {code!r} defined twice")
        self.code = code
        self.template = template
        self.names = frozenset(f[1] for f in string.Formatter().parse(template)
                               if f[1] is not None)
        Sentence.known[code] = self

    def __call__(self, **args: Any) -> Note:
        if set(args) != self.names:
            raise TypeError(f"sentence {self.code!r} takes {sorted(self.names)}, "
                            f"not {sorted(args)}")
        return Note(self.code, args)


def _shown(value: Any, translate: Callable[[str], str] | None) -> str:
    if isinstance(value, Note):
        return value.render(translate)
    if isinstance(value, list | tuple):
        return ", ".join(_shown(v, translate) for v in value) or "—"
    return str(value)


def _json(value: Any) -> Any:
    if isinstance(value, Note):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def in_language(language: str, message: str) -> str:
    """``message`` in ``language`` (e.g. ``zh_CN``) whatever the environment says: the
    sign-off sheet is always bilingual."""
    return _translation((language,)).gettext(message)


# The one way a person reads a time and a length (rules' forms, sheets, reports, console).
TIME_FORMAT = N_("{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}")
DATE_FORMAT = N_("{year:04d}-{month:02d}-{day:02d}")


def local_time(moment: dt.datetime, tz: dt.tzinfo, language: str | None = None) -> str:
    """``moment`` in ``tz`` to the second, as a person reads it: ``2026年12月01日 09:10:00``
    in zh_CN, ``2026-12-01 09:10:00`` in English (``language`` overrides the environment)."""
    m = moment.astimezone(tz)
    form = in_language(language, TIME_FORMAT) if language else _(TIME_FORMAT)
    return form.format(year=m.year, month=m.month, day=m.day, hour=m.hour, minute=m.minute,
                       second=m.second)


def local_date(day: dt.date, language: str | None = None) -> str:
    """A calendar day as a person reads it: ``2026年12月01日``, ``2026-12-01``."""
    form = in_language(language, DATE_FORMAT) if language else _(DATE_FORMAT)
    return form.format(year=day.year, month=day.month, day=day.day)


def length_text(seconds: float) -> str:
    """A recording's length as 时:分:秒 (H:MM:SS), to the nearest second: ``0:00:03``,
    ``1:02:05``. The same in every language."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _env_languages() -> tuple[str, ...]:
    # gettext's own order: the first variable that is set wins; LANGUAGE may list several.
    for key in _ENV_KEYS:
        value = os.environ.get(key)
        if value:
            return tuple(part for part in value.split(":") if part)
    return ()


@functools.lru_cache(maxsize=16)
def _translation(languages: tuple[str, ...]) -> gettext.NullTranslations:
    if not languages:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=list(languages), fallback=True)
