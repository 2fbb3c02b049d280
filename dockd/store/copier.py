"""The copier process: an offload session's files copied and hashed in an interpreter of
its own (``python -m dockd.store.copier``, started by
:class:`dockd.store.copier_link.CopierProcess`).

Why a process: on small files the copy's system calls each give up the interpreter's lock
and then wait to take it back from the threads that check and commit the batches (issue
17: 10,000 × 64 KiB took 7–8 s in one process; the copy alone, 3 s). Here the copy has an
interpreter to itself, and the session's process keeps everything that makes a file
durable and counted: the syncs, the read-back, the links, the catalog and the custody log.

What it may do is little: open the volume's files the same safe way
(:class:`BeneathOpener`), and write temp files into the one directory it is given in the
session's scratch. A kill at any moment leaves only temp files, which the session (or
the next opening of the store) removes. It dies with the session's process
(``PR_SET_PDEATHSIG``), and holds the scratch directory's lock while it lives.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import queue
import signal
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

from dockd.errors import StoreFullError, StoreUnavailableError
from dockd.logs import setup_logging
from dockd.store.content_store import HEAD_BYTES, ContentStore
from dockd.store.copier_messages import (
    MAX_MESSAGE,
    Answer,
    CopiedAnswer,
    FailedAnswer,
    StoreAnswer,
    decode_request,
    encode_report,
)
from dockd.store.read_ahead import ReadAhead, worth_reading_ahead
from dockd.store.source import BeneathOpener, SourceEntry
from dockd.store.staging import Staged, stage_entry

log = logging.getLogger(__name__)

GROUP = 64
"""Answers sent in one message at most: fewer messages, and none waits long."""
PROGRESS_EVERY_S = 0.25
"""Bytes read are reported this often while no answer goes (a large file's copy)."""
_PR_SET_PDEATHSIG = 1


def main(argv: list[str] | None = None) -> int:
    """Serve one session's requests until it closes the connection."""
    args = _arguments().parse_args(argv)
    _die_with_parent(args.parent)
    setup_logging(args.log_level)
    content = ContentStore(Path(args.root), args.algorithms.split(","), args.chunk_bytes,
                           False, args.readback_hash)
    content.attach_scratch(Path(args.directory), args.directory_fd)
    opener = BeneathOpener(Path(args.source))
    try:
        Copier(content, opener, Connection(args.socket), args.retries, args.reserve).serve()
    finally:
        opener.close()
        content.close()
    return 0


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dockd.store.copier",
                                     description="dockd's copier process (started by dockd)")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--socket", type=int, required=True)
    parser.add_argument("--lock-fd", type=int, required=True)  # held open: see the docstring
    parser.add_argument("--root", required=True)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--directory-fd", type=int, required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--algorithms", required=True)
    parser.add_argument("--readback-hash", required=True)
    parser.add_argument("--chunk-bytes", type=int, required=True)
    parser.add_argument("--retries", type=int, required=True)
    parser.add_argument("--reserve", type=int, required=True)
    parser.add_argument("--log-level", default="INFO")
    return parser


def _die_with_parent(parent: int) -> None:
    """Be killed when the session's process dies; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


class Copier:
    """Copies the files of each request, in order, while a thread of its own sends the
    answers as their digests and writes complete."""

    def __init__(self, content: ContentStore, opener: BeneathOpener, conn: Connection,
                 retries: int, reserve: int) -> None:
        self._content = content
        self._reserve = reserve
        self._opener = opener
        self._conn = conn
        self._retries = retries
        # Unbounded: the copy never waits for the sender (it is only ever a few files ahead).
        self._answers: queue.SimpleQueue[tuple[int, Staged | FailedAnswer | StoreAnswer] | None] \
            = queue.SimpleQueue()
        self._bytes_lock = threading.Lock()
        self._unsent = 0  # bytes read since the last message
        self._broken = False  # the session's end of the connection is gone

    def serve(self) -> None:
        """Copy until the session closes its end (or the store stops the copy)."""
        sender = threading.Thread(target=self._send_answers, name="copier-send", daemon=True)
        sender.start()
        try:
            self._copy_requests()
        finally:
            self._answers.put(None)
            sender.join()

    def _copy_requests(self) -> None:
        while not self._broken:
            try:
                data = self._conn.recv_bytes(MAX_MESSAGE)
            except (EOFError, ConnectionResetError):
                return  # the session is done with us
            files = decode_request(data)
            ahead = ReadAhead(self._opener, [e for _o, e in files if worth_reading_ahead(e)])
            # Answers are held back until their files are with the hash workers: the sender
            # reading the digests of a file still in the open group would hand that group
            # over at once, a file or two at a time (one hand-off per file again, and
            # 1.3x the CPU per file at 50,000 files, measured).
            held: list[tuple[int, Staged | FailedAnswer | StoreAnswer]] = []
            try:
                for order, entry in files:
                    answer = self._copy(order, entry, ahead)
                    held.append((order, answer))
                    if isinstance(answer, StoreAnswer) or self._broken:
                        return  # the session stops at this file
                    if self._content.hashing_handed_over:
                        self._release(held)
            finally:
                ahead.close()
                self._content.flush_hashing()  # nothing more to copy until the next request
                self._release(held)

    def _release(self, held: list[tuple[int, Staged | FailedAnswer | StoreAnswer]]) -> None:
        for item in held:
            self._answers.put(item)
        held.clear()

    def _copy(self, order: int, entry: SourceEntry,
              ahead: ReadAhead) -> Staged | FailedAnswer | StoreAnswer:
        if not self._has_room(entry.size):
            return StoreAnswer(order, "full", "the evidence store is full (what is left is"
                                              " kept for the session's custody records)")
        try:
            result = stage_entry(self._content, self._opener, entry, ahead.take(entry),
                                 self._retries, self._count)
        except StoreFullError as exc:
            return StoreAnswer(order, "full", str(exc))
        except StoreUnavailableError as exc:
            return StoreAnswer(order, "unavailable", str(exc))
        if isinstance(result, Staged):
            return result
        return FailedAnswer(order, result.reason, result.detail)

    def _has_room(self, size: int) -> bool:
        """The session's room check again, here, for every file (a ``statvfs`` is 2 µs):
        the session asked for the file while there was room, but another writer may have
        taken it since, and the copier must not eat into the reserve that the session's
        commit needs."""
        st = os.statvfs(self._content.root)
        return st.f_bavail * st.f_frsize - self._reserve >= size

    def _count(self, n: int) -> None:
        with self._bytes_lock:
            self._unsent += n

    # -- the sender thread --------------------------------------------------------------

    def _send_answers(self) -> None:
        """The sender thread: the only one that writes to the connection, so the copy
        never waits for the session to read (the session may be sending the next request
        meanwhile). If it fails, the process ends at once: the session sees the connection
        close and copies the rest itself, instead of waiting for answers that never come."""
        try:
            self._send_until_done()
        except BaseException:
            log.exception("the copier's sender failed")
            os._exit(70)  # EX_SOFTWARE

    def _send_until_done(self) -> None:
        while not self._broken:
            try:
                item = self._answers.get(timeout=PROGRESS_EVERY_S)
            except queue.Empty:
                self._send([])  # a large file's progress
                continue
            if item is None:
                return
            answers = [self._answer(*item)]
            last = False
            while len(answers) < GROUP and not last:
                try:
                    item = self._answers.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    last = True
                else:
                    answers.append(self._answer(*item))
            self._send(answers)
            if last:
                return

    def _answer(self, order: int, result: Staged | FailedAnswer | StoreAnswer) -> Answer:
        """A staged file's answer once its queued writes are done and its digests taken."""
        if not isinstance(result, Staged):
            return result
        staged = result.staged
        try:
            staged.wait_written()
        except StoreFullError as exc:
            self._content.discard(staged)
            return StoreAnswer(order, "full", str(exc))
        except StoreUnavailableError as exc:
            self._content.discard(staged)
            return StoreAnswer(order, "unavailable", str(exc))
        return CopiedAnswer(order, os.path.basename(staged.tmp_path), staged.size,
                            staged.digests, staged.head[:HEAD_BYTES], result.mtime_ns)

    def _send(self, answers: list[Answer]) -> None:
        with self._bytes_lock:
            unsent, self._unsent = self._unsent, 0
        if not answers and not unsent:
            return
        try:
            self._conn.send_bytes(encode_report(unsent, answers))
        except (BrokenPipeError, ConnectionResetError):
            self._broken = True  # the session closed or died: stop copying


if __name__ == "__main__":
    sys.exit(main())
