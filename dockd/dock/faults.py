"""What a recorder driver's error means for its bay.

Drivers say what happened at the recorder (``dockd.devices.recorders.base``: a refused login,
a refused clock, no SD card, a refused switch, silence, garbage, a vanished device); which
fault that lights on the bay is the dock's policy, decided here and nowhere else.
"""

from __future__ import annotations

from dockd.devices.recorders.base import (
    ClockSetFailed,
    LoginFailed,
    NoSdCard,
    RecorderError,
    SwitchRefused,
)
from dockd.dock.states import FaultReason

_BY_ERROR: tuple[tuple[type[RecorderError], FaultReason], ...] = (
    (LoginFailed, FaultReason.LOGIN_FAILED),
    (ClockSetFailed, FaultReason.CLOCK_SET_FAILED),
    (NoSdCard, FaultReason.STORAGE_FULL),  # no card: no free space to check, nothing to offload
    (SwitchRefused, FaultReason.STORAGE_SWITCH_FAILED),
)


def fault_for(error: RecorderError, otherwise: FaultReason) -> FaultReason:
    """The fault ``error`` lights; ``otherwise`` for errors that only say the exchange failed
    (timeout, garbled reply, transport error), which mean different things in different steps."""
    for kind, reason in _BY_ERROR:
        if isinstance(error, kind):
            return reason
    return otherwise
