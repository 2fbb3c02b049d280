"""The offload session's side of its copier process (:mod:`dockd.store.copier`): start
it, send it the files to copy, take its answers in order, stop it.

The session's thread never blocks on the copier: requests go out on a thread of their own,
and waiting for an answer wakes often enough to see a cancel. A copier that dies or says
something the protocol does not allow is :class:`CopierGone`: the session copies the
rest itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from dockd.store.content_store import ContentStore, StagedFile
from dockd.store.copier_messages import (
    MAX_MESSAGE,
    Answer,
    CopiedAnswer,
    CopierProtocolError,
    decode_report,
    encode_request,
)
from dockd.store.source import SourceEntry

log = logging.getLogger(__name__)

POLL_S = 0.1
"""How long a wait for the copier goes without looking at the session's cancel."""
STOP_WAIT_S = 5.0


class CopierGone(Exception):
    """The copier process ended, or broke the protocol, before answering a file."""


class CopierProcess:
    """One copier process for one session, staging into a directory of ``content``'s
    scratch; ``on_bytes`` is told the bytes it reads, ``check_cancel`` is called while
    waiting (it raises to stop the session)."""

    module = "dockd.store.copier"
    """What ``python -m`` runs (tests run a copier that fails on purpose)."""

    def __init__(self, content: ContentStore, source: Path, retries: int, reserve: int,
                 log_level: str, on_bytes: Callable[[int], None],
                 check_cancel: Callable[[], None]) -> None:
        self.directory, dir_fd, lock_fd = content.copier_directory()
        self._on_bytes = on_bytes
        self._check_cancel = check_cancel
        self._algorithms = frozenset(content.algorithms)
        self._asked: deque[int] = deque()  # orders sent, not yet answered
        self._answers: deque[Answer] = deque()
        self._requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._last_taken = -1  # the number of the last staged file handed to the session
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "--parent", str(os.getpid()),
                 "--socket", str(theirs.fileno()), "--lock-fd", str(lock_fd),
                 "--root", str(content.root), "--directory", str(self.directory),
                 "--directory-fd", str(dir_fd), "--source", str(source),
                 "--algorithms", ",".join(content.algorithms),
                 "--readback-hash", content.readback_hash,
                 "--chunk-bytes", str(content.chunk_bytes), "--retries", str(retries),
                 "--reserve", str(reserve),
                 "--log-level", log_level],
                pass_fds=(theirs.fileno(), dir_fd, lock_fd), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        finally:
            theirs.close()
            os.close(dir_fd)
        self._socket = ours  # its write side is shut when every request is sent
        self._conn = Connection(os.dup(ours.fileno()))
        self._sender = threading.Thread(target=self._send_requests, daemon=True,
                                        name=f"copier-ask-{self._proc.pid}")
        self._sender.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def ask(self, files: Sequence[tuple[int, SourceEntry]]) -> None:
        """Have ``files`` (order in the walk, entry) copied; their answers come in order."""
        if files:
            self._asked.extend(order for order, _e in files)
            self._requests.put(encode_request(files))

    def answer(self, order: int) -> Answer:
        """The answer for ``order``, the next one asked. Raises :class:`CopierGone`, or
        whatever ``check_cancel`` raises while waiting."""
        while not self._answers:
            self._receive()
        answer = self._answers.popleft()
        expected = self._asked.popleft()
        if answer.order != expected or order != expected:
            raise CopierGone(f"the copier answered file {answer.order} where {expected} was"
                             f" due (asked for {order})")
        if isinstance(answer, CopiedAnswer):
            self._last_taken = _number(answer.temp_name)
        return answer

    def staged_file(self, answer: CopiedAnswer) -> StagedFile:
        """The session's handle on a file the copier staged."""
        return StagedFile(f"{self.directory}/{answer.temp_name}", answer.digests, answer.size,
                          head=answer.head)

    def close(self, kill: bool = False) -> int | None:
        """Stop the copier: let it finish (it exits once it has read everything sent),
        or, with ``kill``, kill it; in either case wait for it. Its exit status."""
        self._requests.put(None)
        if kill:
            self._proc.kill()
        self._sender.join()
        self._conn.close()
        self._socket.close()
        try:
            return self._proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return self._proc.wait()

    def remove_untaken(self) -> None:
        """Once stopped: remove the temp files the session did not take (the copier numbers
        them in the order it copies, so they are those after the last it took), so that a
        store that filled up has their room back for the commit of the files before."""
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.endswith(".part") and _number(entry.name) > self._last_taken:
                        os.unlink(entry.path)
        except OSError as exc:
            # A failing store: the session is stopping for it already (raising here would
            # hide why); the scratch directory goes at the next opening of the store.
            log.warning("temp files left for the next start to remove",
                        extra={"path": str(self.directory), "error": exc.strerror})

    def remove_leftovers(self) -> None:
        """Remove the copier's directory with whatever temp files are left in it: once it
        is stopped and its staged files are published or discarded."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def _receive(self) -> None:
        """Wait for the copier's next message (looking at the cancel meanwhile)."""
        try:
            while not self._conn.poll(POLL_S):
                self._check_cancel()
            report = decode_report(self._conn.recv_bytes(MAX_MESSAGE), self._algorithms)
        except (EOFError, OSError) as exc:
            raise CopierGone(f"the copier stopped ({_ended(self._proc)}): {exc}") from None
        except CopierProtocolError as exc:
            raise CopierGone(f"the copier broke the protocol: {exc}") from None
        if report.bytes_read:
            self._on_bytes(report.bytes_read)
        self._answers.extend(report.answers)

    def _send_requests(self) -> None:
        """The request thread: a request waits here, not in the session, while the copier
        is busy with a large file."""
        while (data := self._requests.get()) is not None:
            try:
                self._conn.send_bytes(data)
            except OSError:
                return  # the copier is gone: the session hears it at its next answer
        # The copier reads to the end of what was sent, and exits (if it is gone
        # already, there is nothing to tell it).
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_WR)


def _number(temp_name: str) -> int:
    return int(temp_name.partition(".")[0])


def _ended(proc: subprocess.Popen[bytes]) -> str:
    """How the copier ended, once it has (its end of the connection closes first)."""
    try:
        code = proc.wait(1.0)
    except subprocess.TimeoutExpired:
        return "still running"
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"
