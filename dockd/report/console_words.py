"""The console's words: state names, fault sentences, numbers and durations, in the
environment's language (gettext domain ``dockd``, catalogue ``dockd/locale``).

Fault sentences are written for the officer standing at the dock: what is wrong and what
to do. Dock problems (``FaultReason.is_dock_problem``, and a fault without a known reason,
as on the LEDs in ``docs/leds.md``) always end with "call the administrator".
"""

from __future__ import annotations

from collections.abc import Sequence

from dockd.dock.states import BayState, FaultReason
from dockd.i18n import _


def state_name(state: str) -> str:
    """A bay state (``BayState`` value) as a word; an unknown word is shown as sent."""
    names = {
        BayState.EMPTY.value: _("Empty"),
        BayState.IDENTIFYING.value: _("Identifying"),
        BayState.CHECKING.value: _("Checking"),
        BayState.OFFLOADING.value: _("Offloading"),
        BayState.READY.value: _("Ready"),
        BayState.READY_UNCHECKED.value: _("Ready (unchecked)"),
        BayState.FAULT.value: _("Fault"),
    }
    return names.get(state, state)


def state_hint(state: str) -> str:
    """What the officer should do for a state that is not a fault ("" when nothing)."""
    hints = {
        BayState.IDENTIFYING.value: _("Identifying the recorder — please wait"),
        BayState.CHECKING.value: _("Checking battery, storage and clock — please wait"),
        BayState.OFFLOADING.value: _("Copying recordings — please wait"),
        BayState.READY.value: _("Ready — you may take this recorder"),
    }
    return hints.get(state, "")


def unchecked_sentence(unchecked: Sequence[str]) -> str:
    """What the officer is told for ``ready_unchecked``: which art. 4 checks the dock could not
    do, so that they are done by hand before the shift."""
    names = {"battery": _("battery"), "storage": _("storage"), "clock": _("clock")}
    listed = _(", ").join(names.get(check, check) for check in unchecked) or _("some checks")
    return _("Not checked: {checks} — check before the shift").format(checks=listed)


def fault_sentence(fault: str | None) -> str:
    """Why a bay is red, as one sentence an officer can act on."""
    sentences = {
        FaultReason.BATTERY_LOW.value: _("Battery low — charge before the shift"),
        FaultReason.STORAGE_FULL.value: _("Recorder storage full — hand it to the administrator"),
        FaultReason.CLOCK_SET_FAILED.value: _("Could not set the recorder's clock — take it for repair"),
        FaultReason.UNKNOWN_DEVICE.value: _("Not an enrolled recorder — unplug it and see the administrator"),
        FaultReason.LOGIN_FAILED.value: _("The recorder refused the dock's login — take it for repair"),
        FaultReason.STORAGE_SWITCH_FAILED.value: _("Recorder did not open its card — dock it again"),
        FaultReason.REMOVED_DURING_OFFLOAD.value: _("Removed while copying — plug it back in to finish"),
        FaultReason.CLOCK_UNSYNCED.value: _("Dock clock not synchronised — call the administrator"),
        FaultReason.OFFLOAD_FAILED.value: _("Copying the recordings failed — call the administrator"),
        FaultReason.STORE_FULL.value: _("Dock evidence store is full — call the administrator"),
        FaultReason.CHECK_UNAVAILABLE.value: _(
            "The dock could not check this recorder's battery, storage or clock — "
            "hand it to the administrator"),
    }
    if fault is None:
        return _("Fault — call the administrator")
    known = sentences.get(fault)
    if known is not None:
        return known
    return _("Fault ({reason}) — call the administrator").format(reason=fault)


def is_dock_fault(fault: str | None) -> bool:
    """True when the administrator, not the officer, must act (unknown reasons included)."""
    try:
        return FaultReason(fault).is_dock_problem if fault is not None else True
    except ValueError:
        return True


def broker_words(status: str, error: str | None) -> str:
    """The broker part of the dock line."""
    if status == "connected":
        return _("connected")
    if status == "disabled":
        return _("not configured")
    if status == "offline":
        return _("offline: {error}").format(error=error) if error else _("offline")
    return _("unknown")


def format_bytes(count: int | None) -> str:
    """Bytes in decimal units (as disk makers count): ``1.5 GB``; ``?`` when unknown."""
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def format_duration(seconds: float | None) -> str:
    """A time left, rounded up to whole seconds: ``45 s``, ``3 min 05 s``, ``2 h 04 min``."""
    if seconds is None:
        return "?"
    whole = int(-(-seconds // 1))
    if whole < 60:
        return _("{s} s").format(s=whole)
    if whole < 3600:
        return _("{m} min {s:02d} s").format(m=whole // 60, s=whole % 60)
    if whole < 100 * 3600:
        return _("{h} h {m:02d} min").format(h=whole // 3600, m=whole % 3600 // 60)
    return _("more than {h} h").format(h=99)


def format_drift(seconds: float | None) -> str:
    """Recorder clock minus dock clock: ``+2.0 s``, ``−0.4 s``."""
    if seconds is None:
        return "?"
    if abs(seconds) >= 10**6:
        return ("+" if seconds > 0 else "−") + _("more than {d} days").format(d=11)
    return f"{seconds:+.1f} s".replace("-", "−")
