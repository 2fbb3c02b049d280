"""What an offload session and its copier process (:mod:`dockd.store.copier`) say to each
other: JSON documents, one per framed message (:mod:`multiprocessing.connection`).

The session sends the files to copy, a walk's chunk at a time::

    {"files": [[order, relpath_b64, size, mtime_ns, dev, ino], ...]}

The copier answers every file, in the order asked, a group of answers per message, with
the bytes it read since its last message (negative when a read was given up)::

    {"bytes": n, "answers": [
        {"order": o, "staged": name, "size": n, "digests": {...}, "head": b64, "mtime_ns": t},
        {"order": o, "failed": reason, "detail": text},
        {"order": o, "store": "full" | "unavailable", "detail": text}]}

Everything decoded is checked. The session publishes a staged file by its name in the
copier's directory: a name that is not one the copier makes, digests other than the
session's algorithms, or an answer out of order is a :class:`CopierProtocolError`, never
a path it follows.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dockd.store.outcomes import FailReason
from dockd.store.source import EntryKind, SourceEntry

MAX_MESSAGE = 16 << 20
"""The largest message either side reads: a chunk of 256 paths of up to 4 KiB each,
base64, is about 1.4 MiB; a group of answers far less."""
HEAD_LIMIT = 4096  # a staged file's first bytes, as sent (the store keeps 128)
_TEMP_NAME = re.compile(r"[0-9]{1,19}\.part")
_DIGEST = re.compile(r"[0-9A-Za-z]{1,256}")
_DETAIL_LIMIT = 4096


class CopierProtocolError(Exception):
    """A message from the other side that is not what the protocol allows."""


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class CopiedAnswer:
    """A file the copier staged: its temp file's name in the copier's directory."""

    order: int
    temp_name: str
    size: int
    digests: dict[str, str]
    head: bytes
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class FailedAnswer:
    """A file the copier could not copy (``file.failed``)."""

    order: int
    reason: FailReason
    detail: str


@dataclass(frozen=True, slots=True)
class StoreAnswer:
    """The store refused a file's copy: ``full`` or ``unavailable``. The copier copies
    nothing after it."""

    order: int
    problem: str
    detail: str


Answer = CopiedAnswer | FailedAnswer | StoreAnswer


@dataclass(frozen=True, slots=True)
class Report:
    """One message of the copier: bytes read since the last, and answers in order."""

    bytes_read: int
    answers: list[Answer]


def encode_request(files: Sequence[tuple[int, SourceEntry]]) -> bytes:
    """The session's request to copy ``files`` (order in the walk, entry)."""
    return json.dumps({"files": [
        [order, base64.b64encode(e.relpath).decode("ascii"), e.size, e.mtime_ns, e.dev, e.ino]
        for order, e in files]}, separators=(",", ":")).encode()


def decode_request(data: bytes) -> list[tuple[int, SourceEntry]]:
    """The files of a request (the copier's side)."""
    doc = _load(data)
    files = doc.get("files")
    if not isinstance(files, list):
        raise CopierProtocolError("a request without its list of files")
    out = []
    for item in files:
        if not (isinstance(item, list) and len(item) == 6):
            raise CopierProtocolError("a file of a request is not [order, path, size, mtime,"
                                      " dev, ino]")
        order, path, size, mtime_ns, dev, ino = item
        relpath = _b64(path, "path")
        if not relpath or relpath.startswith(b"/") or b"\0" in relpath \
                or b".." in relpath.split(b"/"):
            raise CopierProtocolError("a request names a path outside the volume")
        out.append((_count(order, "order"), SourceEntry(
            relpath, EntryKind.FILE, _count(size, "size"), _int(mtime_ns, "mtime"),
            _count(dev, "dev"), _count(ino, "ino"))))
    return out


def encode_report(bytes_read: int, answers: Sequence[Answer]) -> bytes:
    """The copier's message."""
    out: list[dict[str, Any]] = []
    for a in answers:
        if isinstance(a, CopiedAnswer):
            out.append({"order": a.order, "staged": a.temp_name, "size": a.size,
                        "digests": a.digests, "head": base64.b64encode(a.head).decode("ascii"),
                        "mtime_ns": a.mtime_ns})
        elif isinstance(a, FailedAnswer):
            out.append({"order": a.order, "failed": str(a.reason), "detail": a.detail})
        else:
            out.append({"order": a.order, "store": a.problem, "detail": a.detail})
    return json.dumps({"bytes": bytes_read, "answers": out}, separators=(",", ":"),
                      ensure_ascii=False).encode()


def decode_report(data: bytes, algorithms: frozenset[str]) -> Report:
    """A message of the copier, checked: staged files must carry exactly ``algorithms``'
    digests and a name the copier makes."""
    doc = _load(data)
    answers = doc.get("answers")
    if not isinstance(answers, list):
        raise CopierProtocolError("a report without its answers")
    return Report(_int(doc.get("bytes"), "bytes"), [_answer(a, algorithms) for a in answers])


def _answer(a: Any, algorithms: frozenset[str]) -> Answer:
    if not isinstance(a, dict):
        raise CopierProtocolError("an answer is not an object")
    order = _count(a.get("order"), "order")
    if "staged" in a:
        name = a["staged"]
        if not isinstance(name, str) or _TEMP_NAME.fullmatch(name) is None:
            raise CopierProtocolError("a staged file's name is not one the copier makes")
        digests = a.get("digests")
        if not isinstance(digests, dict) or set(digests) != algorithms or not all(
                isinstance(v, str) and _DIGEST.fullmatch(v) for v in digests.values()):
            raise CopierProtocolError("a staged file's digests are not the session's")
        head = _b64(a.get("head"), "head")
        if len(head) > HEAD_LIMIT:
            raise CopierProtocolError("a staged file's first bytes are too long")
        return CopiedAnswer(order, name, _count(a.get("size"), "size"), dict(digests), head,
                            _int(a.get("mtime_ns"), "mtime"))
    detail = a.get("detail")
    if not isinstance(detail, str):
        raise CopierProtocolError("an answer without its detail")
    detail = detail[:_DETAIL_LIMIT]
    if "failed" in a:
        try:
            return FailedAnswer(order, FailReason(a["failed"]), detail)
        except ValueError:
            raise CopierProtocolError("a failure reason the session does not know") from None
    if a.get("store") in ("full", "unavailable"):
        return StoreAnswer(order, a["store"], detail)
    raise CopierProtocolError("an answer that is neither staged, failed nor the store's")


def _load(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CopierProtocolError("a message that is not JSON") from None
    if not isinstance(doc, dict):
        raise CopierProtocolError("a message that is not a JSON object")
    return doc


def _int(value: Any, what: str) -> int:
    # bool is an int to Python, not to the protocol
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 1 << 63:
        raise CopierProtocolError(f"{what} is not a 64-bit integer")
    return value


def _count(value: Any, what: str) -> int:
    if _int(value, what) < 0:
        raise CopierProtocolError(f"{what} is negative")
    return int(value)


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise CopierProtocolError(f"{what} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CopierProtocolError(f"{what} is not base64") from None
