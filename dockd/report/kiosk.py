"""The console on the dock's own screen (``dockd console --kiosk``, dockd-console.service).

The Linux text console draws at most 512 glyphs and no CJK: a Chinese view on tty1 would be
rows of empty boxes. fbterm draws on the framebuffer with the system's fonts, so a Chinese
kiosk re-runs itself inside fbterm when fbterm and a framebuffer are there; otherwise it
shows the English view and says why in the journal, rather than a screen nobody can read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

# Set in fbterm's child so the kiosk does not start fbterm inside fbterm.
INSIDE_FBTERM = "DOCKD_KIOSK_FBTERM"
FRAMEBUFFER = "/dev/fb0"
_LANGUAGE_KEYS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


@dataclass(frozen=True)
class KioskPlan:
    """What the kiosk does: run here (``exec_argv`` None) or exec fbterm; with which
    environment changes, and the note for the journal."""

    exec_argv: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None


def plan_kiosk(argv: Sequence[str], env: Mapping[str, str], which: Callable[[str], str | None],
               exists: Callable[[str], bool]) -> KioskPlan:
    """Decide how ``dockd console`` (run as ``argv``) shows itself on the text console.

    ``which`` finds a program on PATH and ``exists`` tests a path, so a test controls both.
    """
    if not _wants_chinese(env) or env.get(INSIDE_FBTERM):
        return KioskPlan()
    fbterm = which("fbterm")
    if fbterm and exists(FRAMEBUFFER):
        return KioskPlan(exec_argv=(fbterm, "--", *argv), env={INSIDE_FBTERM: "1"})
    missing = "fbterm is not installed" if not fbterm else f"there is no framebuffer ({FRAMEBUFFER})"
    return KioskPlan(env={"LANGUAGE": "en", "LC_ALL": "C.UTF-8"},
                     note=f"the text console cannot draw Chinese and {missing}: showing the "
                          "English view (apt install fbterm fonts-wqy-zenhei for Chinese)")


def _wants_chinese(env: Mapping[str, str]) -> bool:
    # gettext's order, as dockd.i18n reads it: the first variable that is set decides.
    for key in _LANGUAGE_KEYS:
        value = env.get(key)
        if value:
            return value.split(":")[0].lower().startswith("zh")
    return False
