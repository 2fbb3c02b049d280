"""Is the dock's own clock synchronised? Asked of the kernel (adjtimex), which is what
chrony, ntpd and systemd-timesyncd all report their state through."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

TIME_ERROR = 5  # adjtimex(2): "clock not synchronized"
log = logging.getLogger(__name__)


def kernel_clock_synchronised() -> bool:
    """True when the kernel's NTP state says the clock is synchronised."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    # struct timex is 208 bytes on 64-bit Linux; modes=0 (first field) only reads.
    buf = ctypes.create_string_buffer(512)
    state = libc.adjtimex(buf)
    if state < 0:
        log.warning("adjtimex failed", extra={"errno": ctypes.get_errno()})
        return False
    return bool(state != TIME_ERROR)


class ClockSyncState:
    """The dock's answer to "may I set a recorder's clock?", per config ``clock_sync``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def synchronised(self) -> bool:
        if self.mode == "assume_synced":
            return True
        if self.mode == "never":
            return False
        return kernel_clock_synchronised()
