"""Staging one file of a recorder's volume: open it the safe way, copy and hash it into the
scratch directory, read it again while the recorder is still writing it.

Shared by the offload session's own thread (:mod:`dockd.store.ingest`) and the copier
process (:mod:`dockd.store.copier`), so both decide the same way what a failure is.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from dockd.store.content_store import (
    ContentStore,
    SourceChangedError,
    SourceReadError,
    StagedFile,
)
from dockd.store.outcomes import FailReason
from dockd.store.read_ahead import Opened
from dockd.store.source import BeneathOpener, SourceEntry, display_path

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class Staged:
    """A file copied and hashed into the scratch directory; ``mtime_ns`` as read."""

    staged: StagedFile
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class NotStaged:
    """A file that could not be copied, and why (``file.failed``'s reason and detail)."""

    reason: FailReason
    detail: str

    @property
    def may_be_a_pull_out(self) -> bool:
        """A read or open error: the recorder may have been pulled out (a file that kept
        changing is the recorder writing, not a pull-out)."""
        return self.reason is not FailReason.SOURCE_CHANGED


def open_failure(exc: OSError) -> NotStaged:
    """Why a file the walk listed could not be opened."""
    reason = FailReason.VANISHED if exc.errno == errno.ENOENT \
        else FailReason.CHANGED if exc.errno in (errno.ESTALE, errno.ELOOP, errno.ENOTDIR) \
        else FailReason.READ_ERROR
    return NotStaged(reason, exc.strerror or str(exc))


def stage_entry(content: ContentStore, opener: BeneathOpener, entry: SourceEntry,
                opened_ahead: Opened | None, retries: int,
                on_bytes: Callable[[int], None]) -> Staged | NotStaged:
    """Copy ``entry`` into ``content``'s scratch directory, reading it up to ``retries``
    more times while it changes under the copy (``on_bytes`` is told the bytes read, and
    minus those of a read given up). The store's own errors (full, unavailable) raise."""
    for _attempt in range(retries + 1):
        try:
            fd, st = opened_ahead if opened_ahead is not None else opener.open_with_stat(entry)
            opened_ahead = None
        except OSError as exc:
            return open_failure(exc)
        counted = _Counted(on_bytes)
        try:
            return Staged(content.stage(fd, counted, st), st.st_mtime_ns)
        except SourceChangedError as exc:
            log.warning("file changed while read; reading again",
                        extra={"path": display_path(entry.relpath), "detail": str(exc)})
            on_bytes(-counted.total)
        except SourceReadError as exc:
            return NotStaged(FailReason(exc.reason), str(exc))
        finally:
            os.close(fd)
    return NotStaged(FailReason.SOURCE_CHANGED,
                     f"still changing after {retries + 1} reads (is the recorder still writing?)")


class _Counted:
    """``on_bytes``, keeping the total of one read of a file (to take back if it is read
    again)."""

    __slots__ = ("on_bytes", "total")

    def __init__(self, on_bytes: Callable[[int], None]) -> None:
        self.on_bytes = on_bytes
        self.total = 0

    def __call__(self, n: int) -> None:
        self.total += n
        self.on_bytes(n)
