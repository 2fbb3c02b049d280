"""User-facing text in Chinese and English through gettext.

The language follows the environment (LANGUAGE, LC_ALL, LC_MESSAGES, LANG, in gettext's
order), looked up on every call so a test or a long-lived process can change it. English
is the source text; ``dockd/locale/<lang>/LC_MESSAGES/dockd.mo`` holds the translations
(compiled from the ``.po`` next to it by ``python -m dockd.records.pocompile`` or msgfmt).
"""

from __future__ import annotations

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


def N_(message: str) -> str:
    """Mark ``message`` for translation where it is defined; translate it where it is shown."""
    return message


def in_language(language: str, message: str) -> str:
    """``message`` in ``language`` (e.g. ``zh_CN``) whatever the environment says: the
    sign-off sheet is always bilingual."""
    return _translation((language,)).gettext(message)


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
