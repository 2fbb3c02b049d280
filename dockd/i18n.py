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
from pathlib import Path

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
