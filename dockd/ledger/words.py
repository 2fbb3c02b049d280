"""The ledger's words in Chinese and English (gettext domain ``dockd_ledger``).

A separate domain from the dock's (``dockd``): the ledger's page and reports are read by
the supervision section, not at the dock, and its catalog
(``dockd/locale/zh_CN/LC_MESSAGES/dockd_ledger.po``) is kept apart. The CLI follows the
environment like every dockd command; the web page chooses per request (``?lang=`` or the
browser's Accept-Language), so the language is a parameter here.
"""

from __future__ import annotations

import functools
import gettext
import os
from collections.abc import Callable

from dockd.i18n import LOCALE_DIR

DOMAIN = "dockd_ledger"
LANGUAGES = ("zh_CN", "en")
_ENV_KEYS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

Words = Callable[[str], str]


def words(language: str) -> Words:
    """The translator of ``language`` (``zh_CN`` or ``en``; anything else is English)."""
    return _translation(language if language in LANGUAGES else "en").gettext


def env_language() -> str:
    """``zh_CN`` when the environment asks for Chinese, else ``en`` (gettext's order)."""
    for key in _ENV_KEYS:
        value = os.environ.get(key)
        if value:
            first = value.split(":")[0]
            return "zh_CN" if first.startswith("zh") else "en"
    return "en"


def accept_language(header: str | None) -> str:
    """The language of an HTTP Accept-Language header (``zh*`` first-listed → ``zh_CN``)."""
    best, best_q = "en", -1.0
    for part in (header or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        lang = "zh_CN" if tag.lower().startswith("zh") else "en" if tag.lower().startswith(
            "en") else None
        if lang is not None and q > best_q:
            best, best_q = lang, q
    return best


@functools.lru_cache(maxsize=4)
def _translation(language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


# Codes stored in the ledger (states, alert kinds, fault reasons, event types) and the
# English words a person reads for them; the catalog translates the words.
LABELS = {
    "no_records": "no records", "chain_break": "chain break",
    "checkpoint_mismatch": "contradicts a signed checkpoint", "key_mismatch": "key mismatch",
    "bad_signature": "bad signature", "unknown_dock": "dock not enrolled",
    "battery_low": "battery low", "storage_full": "recorder storage full",
    "clock_unsynced": "dock clock not synchronised", "clock_set_failed": "clock not set",
    "unknown_device": "unknown device", "login_failed": "login failed",
    "offload_failed": "offload failed", "removed_during_offload": "removed during offload",
    "store_full": "dock store full", "storage_switch_failed": "recorder did not open its card",
    "check_unavailable": "required check not possible",
    "ready_unchecked": "ready, not all checked", "recorder.docked": "recorder docked",
    "recorder.undocked": "recorder undocked", "recorder.health": "recorder health checked",
    "recorder.enrolled": "recorder enrolled", "recorder.assigned": "recorder assigned",
    "recorder.cleared": "recorder cleared", "clock.set": "recorder clock set",
    "session.started": "offload started", "session.completed": "offload completed",
    "session.interrupted": "offload interrupted", "file.ingested": "file stored",
    "file.failed": "file not stored", "bay.fault": "bay fault",
    "export.created": "evidence exported", "access.registered": "access registered",
    "verify.completed": "integrity check passed", "verify.failed": "integrity check failed",
    "hold.added": "hold added", "hold.released": "hold released",
    # rejection codes
    "too_large": "too large", "not_json": "not JSON", "unknown_topic": "unknown topic",
    "schema": "schema", "forged_hash": "forged hash", "wrong_dock": "wrong dock",
    "unstorable": "could not be stored",
}


def label(_: Words, code: str) -> str:
    """What a person reads for a stored code, in the language of ``_``."""
    return _(LABELS.get(code, code))
