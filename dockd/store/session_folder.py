"""The browsable day-by-day view of offload sessions (rule art. 8).

``sessions/<recorder>/<YYYY-MM-DD>/<session-id>/`` holds the recorder's tree as it was,
as hard links to the stored files: no extra space, same read-only mode. Names are the
printable form of the recorder's names (see ``display_path``), which keeps the folder and
its ASC MHL manifest valid UTF-8; the exact bytes stay in the catalog.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
from pathlib import Path

from dockd.store.fsutil import link_making_dirs, raise_store_error
from dockd.store.guard import check_store_path
from dockd.store.mhl import MHL_DIR
from dockd.store.source import display_path

SESSIONS_DIR = "sessions"
_NAME_MAX = 255


class SessionFolder:
    """Creates hard links under one session's folder."""

    def __init__(self, store_root: Path, recorder: str, day: dt.date, session_id: str) -> None:
        """Refuses (StoreUnavailableError) a recorder or day folder that is a link or not
        dockd's own, before the session writes anything (the store's opening does not list
        the session folders: :func:`check_store_path`). The session's own folder is new:
        dockd makes it and everything in it."""
        self.relpath = f"{SESSIONS_DIR}/{recorder}/{day:%Y-%m-%d}/{session_id}"
        self.path = store_root / self.relpath
        check_store_path(store_root, f"{self.relpath}/")
        self._prefix = f"{self.path}/"  # plain strings per file: pathlib cost more than link()

    def link(self, recorder_path: bytes, object_path: str | Path) -> str | None:
        """Link ``object_path`` at the recorder's path in the folder; the path used, relative
        to the folder, or None if it could not be linked (the item is stored regardless)."""
        wanted = folder_relpath(recorder_path)
        for attempt in range(100):
            rel = wanted if attempt == 0 else _with_suffix(wanted, attempt + 1)
            try:
                if link_making_dirs(object_path, self._prefix + rel):
                    return rel
                continue  # the name is taken (two recorder names printed alike)
            except OSError as exc:
                if exc.errno == errno.EMLINK:
                    return None  # the object has the file system's maximum of links
                raise_store_error(exc, "linking into the session folder")
        return None


def folder_relpath(recorder_path: bytes) -> str:
    """The folder-relative path for a recorder path: printable, each part ≤ 255 bytes,
    never the reserved top-level ``ascmhl``."""
    parts = display_path(recorder_path).split("/")
    if parts[0] == MHL_DIR:
        parts[0] = f"{MHL_DIR}~recorder"
    return "/".join(_fit(p) for p in parts)


def _fit(part: str) -> str:
    if len(part.encode()) <= _NAME_MAX:
        return part
    digest = hashlib.sha256(part.encode()).hexdigest()[:16]
    suffix = Path(part).suffix[:16]
    head = part.encode()[: _NAME_MAX - len(digest) - len(suffix.encode()) - 1]
    return head.decode("utf-8", errors="ignore") + "~" + digest + suffix


def _with_suffix(rel: str, n: int) -> str:
    path = Path(rel)
    stem = path.stem[: _NAME_MAX - 24]
    return str(path.with_name(f"{stem}~{n}{path.suffix}"))
