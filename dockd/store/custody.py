"""The chain-of-custody log: append-only, hash-chained, with signed checkpoints.

Each record's ``hash`` is SHA-256(domain tag ‖ prev_hash ‖ canonical bytes of the record),
so changing, removing or reordering any record breaks every hash after it. Triggers make
the table append-only for ordinary SQL; a signed checkpoint (in the database, in a file
next to it, and later off the box) pins the tail so that a truncated or rebuilt log is
detected too.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockd.clock import Clock, utc_iso
from dockd.errors import StoreUnavailableError
from dockd.store.canonical import JsonObject, canonical_json
from dockd.store.catalog import Catalog, Transaction
from dockd.store.events import CustodyEvent
from dockd.store.fsutil import write_file_atomic
from dockd.store.hashing import digest_bytes
from dockd.store.keys import Signer
from dockd.store.outbox import enqueue, enqueue_encoded

RECORD_TAG = b"dockd.custody.v1\x00"
CHECKPOINT_TAG = b"dockd.checkpoint.v1\x00"
GENESIS_HASH = "0" * 64
CHECKPOINT_FILE = "custody.checkpoint.json"
CORRUPT_SUFFIX = ".corrupt-"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustodyRecord:
    """One custody event as stored and published."""

    seq: int
    event_id: str
    time: str
    type: str
    actor: str
    subject: str
    payload: JsonObject
    prev_hash: str
    hash: str
    dock: str

    def to_json_dict(self) -> JsonObject:
        return {"v": 1, "dock": self.dock, "seq": self.seq, "event_id": self.event_id,
                "time": self.time, "type": self.type, "actor": self.actor,
                "subject": self.subject, "payload": self.payload,
                "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the log of ``dock`` had ``hash`` at ``seq``."""

    dock: str
    seq: int
    hash: str
    time: str
    public_key: str
    signature: str

    def signed_bytes(self) -> bytes:
        return checkpoint_message(self.dock, self.seq, self.hash, self.time, self.public_key)

    def to_json_dict(self) -> JsonObject:
        return {"v": 1, "dock": self.dock, "seq": self.seq, "hash": self.hash,
                "time": self.time, "public_key": self.public_key, "signature": self.signature}


def record_hash(dock: str, seq: int, event_id: str, time: str, type_: str, actor: str,
                subject: str, payload: JsonObject, prev_hash: str) -> str:
    """The chain hash of a record; verification recomputes exactly this."""
    body = canonical_json({"v": 1, "dock": dock, "seq": seq, "event_id": event_id, "time": time,
                           "type": type_, "actor": actor, "subject": subject,
                           "payload": payload, "prev_hash": prev_hash})
    return digest_bytes(RECORD_TAG + bytes.fromhex(prev_hash) + body, ["sha256"])["sha256"]


# One JSON string, as canonical_json writes it (what JSONEncoder(ensure_ascii=False).encode
# does for a str, without its Python-level dispatch: eight per record).
_text: Callable[[str], str] = json.encoder.encode_basestring


def _canonical_head(actor: str, dock: str, event_id: str) -> str:
    return f'{{"actor":{_text(actor)},"dock":{_text(dock)},"event_id":{_text(event_id)}'


def _canonical_tail(prev_hash: str, seq: int, subject: str, time: str, type_: str) -> str:
    return (f'"prev_hash":{_text(prev_hash)},"seq":{seq},"subject":{_text(subject)},'
            f'"time":{_text(time)},"type":{_text(type_)},"v":1}}')


def uuid4_text(random16: bytes) -> str:
    """``str(uuid.UUID(bytes=random16, version=4))``, without building the UUID object
    (once per custody record): the version and variant bits set, in 8-4-4-4-12 form."""
    b = bytearray(random16)
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def checkpoint_message(dock: str, seq: int, hash_: str, time: str, public_key: str) -> bytes:
    """The bytes an Ed25519 checkpoint signature covers."""
    return CHECKPOINT_TAG + canonical_json(
        {"v": 1, "dock": dock, "seq": seq, "hash": hash_, "time": time, "public_key": public_key}
    )


class CustodyLog:
    """Appends custody records inside the caller's catalog transaction."""

    def __init__(self, catalog: Catalog, signer: Signer, dock_id: str, clock: Clock,
                 checkpoint_every: int, checkpoint_file: Path,
                 mirror: Path | None = None) -> None:
        self.catalog = catalog
        self.mirror = mirror
        self.signer = signer
        self.dock_id = dock_id
        self.clock = clock
        self.checkpoint_every = checkpoint_every
        self.checkpoint_file = checkpoint_file

    def record(self, tx: Transaction, event: CustodyEvent, actor: str,
               checkpoint: bool = False) -> CustodyRecord:
        """Append ``event`` as one record (and its outbox row) in ``tx``; checkpoint when due
        or asked."""
        type_, subject, payload = event.TYPE, event.subject, event.to_payload()
        last = tx.execute("SELECT seq, hash FROM custody ORDER BY seq DESC LIMIT 1").fetchone()
        last_checkpoint = tx.execute("SELECT MAX(seq) FROM checkpoints").fetchone()[0] or 0
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        # Never reuse a seq a signed checkpoint already vouched for: after a truncated tail
        # the log keeps working, and the gap stays visible to verification.
        seq = max(seq, last_checkpoint + 1)
        event_id = str(uuid.uuid4())
        time = utc_iso(self.clock.now())
        # Round-trip through canonical JSON so what is stored is exactly what was hashed.
        clean_payload = json.loads(canonical_json(payload))
        hash_ = record_hash(self.dock_id, seq, event_id, time, type_, actor, subject,
                            clean_payload, prev_hash)
        tx.execute(
            "INSERT INTO custody (seq, dock, event_id, time, type, actor, subject, payload,"
            " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, self.dock_id, event_id, time, type_, actor, subject, canonical_json(clean_payload).decode(),
             prev_hash, hash_),
        )
        record = CustodyRecord(seq, event_id, time, type_, actor, subject, clean_payload,
                               prev_hash, hash_, self.dock_id)
        enqueue(tx, "custody", "custody", record.to_json_dict(), ref_seq=seq, qos=1, retain=False,
                created_at=time)
        if checkpoint or seq - last_checkpoint >= self.checkpoint_every:
            self._checkpoint(tx, seq, hash_, time)
        return record

    def record_many(self, tx: Transaction, events: Sequence[CustodyEvent], actor: str) -> None:
        """Append ``events`` in order, in ``tx``: what :meth:`record` does for each, with the
        chain's tail read once and the rows inserted together (an offload batch records
        hundreds of files; a lookup and an insert each, and four encodings of each record,
        cost more than its hashing). Each due checkpoint is signed and published; the
        checkpoint file is written once, with the newest."""
        if not events:
            return
        last = tx.execute("SELECT seq, hash FROM custody ORDER BY seq DESC LIMIT 1").fetchone()
        last_checkpoint = tx.execute("SELECT MAX(seq) FROM checkpoints").fetchone()[0] or 0
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        seq = max(seq, last_checkpoint + 1)  # as in record(): never reuse a vouched-for seq
        time = utc_iso(self.clock.now())
        custody_rows: list[tuple[object, ...]] = []
        outbox_rows: list[tuple[int | None, str, str]] = []
        due: list[tuple[int, str]] = []
        # The records' random ids from one read of the kernel's generator (uuid4 reads it
        # once per record): the same version-4 UUIDs.
        randomness = os.urandom(16 * len(events))
        for n, event in enumerate(events):
            event_id = uuid4_text(randomness[16 * n:16 * n + 16])
            payload_text = canonical_json(event.to_payload()).decode()
            # The record's canonical text built around the payload's (the same bytes as
            # canonical_json of the whole record: sorted keys, no spaces; a test checks it).
            head = _canonical_head(actor, self.dock_id, event_id)
            tail = _canonical_tail(prev_hash, seq, event.subject, time, event.TYPE)
            body = f"{head},\"payload\":{payload_text},{tail}".encode()
            hash_ = hashlib.sha256(RECORD_TAG + bytes.fromhex(prev_hash) + body).hexdigest()
            custody_rows.append((seq, self.dock_id, event_id, time, event.TYPE, actor,
                                 event.subject, payload_text, prev_hash, hash_))
            # The published record is the hashed one with its hash: keys sorted, "hash"
            # comes between "event_id" and "payload".
            outbox_rows.append((seq, f"{head},\"hash\":\"{hash_}\",\"payload\":{payload_text},"
                                     f"{tail}", time))
            if seq - last_checkpoint >= self.checkpoint_every:
                due.append((seq, hash_))
                last_checkpoint = seq
            seq, prev_hash = seq + 1, hash_
        tx.conn.executemany(
            "INSERT INTO custody (seq, dock, event_id, time, type, actor, subject, payload,"
            " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", custody_rows)
        enqueue_encoded(tx, "custody", "custody", outbox_rows, qos=1, retain=False)
        for n, (cp_seq, cp_hash) in enumerate(due):
            self._checkpoint(tx, cp_seq, cp_hash, time, write_file=n == len(due) - 1)

    def append(self, event: CustodyEvent, actor: str, checkpoint: bool = False) -> CustodyRecord:
        """Append ``event`` in a transaction of its own."""
        with self.catalog.transaction() as tx:
            return self.record(tx, event, actor, checkpoint)

    def checkpoint_head(self) -> Checkpoint | None:
        """A signed checkpoint of the log's last record (made now unless one exists), so a
        copy of records up to here can be checked against the dock's key; None when empty."""
        with self.catalog.transaction() as tx:
            last = tx.execute("SELECT seq, hash FROM custody ORDER BY seq DESC LIMIT 1").fetchone()
            if last is None:
                return None
            if tx.execute("SELECT 1 FROM checkpoints WHERE seq = ?", (last[0],)).fetchone() is None:
                self._checkpoint(tx, last[0], last[1], utc_iso(self.clock.now()))
            row = tx.execute("SELECT dock, seq, hash, time, public_key, signature FROM checkpoints"
                             " WHERE seq = ?", (last[0],)).fetchone()
        return Checkpoint(row[0], row[1], row[2], row[3], row[4], row[5])

    def _checkpoint(self, tx: Transaction, seq: int, hash_: str, time: str,
                    write_file: bool = True) -> None:
        public_key = self.signer.public_key_hex
        signature = self.signer.sign(checkpoint_message(self.dock_id, seq, hash_, time, public_key))
        cp = Checkpoint(self.dock_id, seq, hash_, time, public_key, signature)
        tx.execute("INSERT INTO checkpoints (seq, hash, time, dock, public_key, signature)"
                   " VALUES (?, ?, ?, ?, ?, ?)", (seq, hash_, time, self.dock_id, public_key,
                                                  signature))
        enqueue(tx, "checkpoint", "checkpoint", cp.to_json_dict(), ref_seq=seq, qos=1, retain=True,
                created_at=time)
        if write_file:
            tx.after_commit(lambda: write_checkpoint_file(self.checkpoint_file, cp))
        if self.mirror is not None:
            mirror = self.mirror
            tx.after_commit(lambda: append_checkpoint_mirror(mirror, cp))


def write_checkpoint_file(path: Path, cp: Checkpoint) -> None:
    """Write the latest checkpoint next to the database (atomically; never older than before)."""
    # Bays (threads) and CLI processes checkpoint concurrently: read-compare-write under a lock.
    lock_fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                      0o640)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        _write_checkpoint_file_locked(path, cp)
    finally:
        os.close(lock_fd)


def _write_checkpoint_file_locked(path: Path, cp: Checkpoint) -> None:
    try:
        current = read_checkpoint_file(path)
    except ValueError as exc:
        # Damaged (or forged) file: keep it aside for the examiner instead of overwriting the
        # evidence; verification reports every set-aside file until an administrator acts.
        aside = path.with_name(f"{path.name}{CORRUPT_SUFFIX}{cp.seq}")
        os.replace(path, aside)
        log.error("checkpoint file damaged; set aside", extra={"path": str(aside), "error": str(exc)})
        current = None
    if current is not None and current.seq > cp.seq:
        return  # another process already wrote a later one
    write_file_atomic(path, canonical_json(cp.to_json_dict()) + b"\n", mode=0o644)


def open_checkpoint_mirror(path: Path) -> int:
    """An fd appending to the checkpoint mirror outside the store (``[dock]
    checkpoint_mirror``), made when missing; opening the store tries it first, so a mirror
    that cannot be written stops the store before anything is written."""
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        raise _mirror_error(path, exc) from None


def _mirror_error(path: Path, exc: OSError) -> StoreUnavailableError:
    return StoreUnavailableError(f"the checkpoint mirror {path} cannot be written: "
                                 f"{exc.strerror}; check [dock] checkpoint_mirror")


def append_checkpoint_mirror(path: Path, cp: Checkpoint) -> None:
    """Append ``cp`` as one JSON line to the checkpoint mirror; durable before returning."""
    fd = open_checkpoint_mirror(path)
    try:
        # One write of one short line: O_APPEND keeps the lines of concurrent processes whole.
        os.write(fd, canonical_json(cp.to_json_dict()) + b"\n")
        os.fsync(fd)
    except OSError as exc:
        raise _mirror_error(path, exc) from None
    finally:
        os.close(fd)


def read_checkpoint_mirror(path: Path) -> list[Checkpoint | str]:
    """The checkpoints in the mirror file at ``path``, in order; a line that is not one is
    given as its problem (text). FileNotFoundError when there is no file (never made here)."""
    out: list[Checkpoint | str] = []
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                out.append(checkpoint_from_dict(json.loads(raw)))
            except (ValueError, RecursionError) as exc:
                out.append(f"line {n}: {exc}")
    return out


def read_checkpoint_file(path: Path) -> Checkpoint | None:
    """The checkpoint in ``path``; None when absent. Malformed content raises ValueError."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"checkpoint file {path} is not JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"checkpoint file {path} is nested too deeply") from None
    return checkpoint_from_dict(data)


def checkpoint_from_dict(data: object) -> Checkpoint:
    """Parse a checkpoint from its JSON form; ValueError on anything malformed."""
    if not isinstance(data, dict):
        raise ValueError("checkpoint is not a JSON object")
    try:
        cp = Checkpoint(dock=data["dock"], seq=data["seq"], hash=data["hash"], time=data["time"],
                        public_key=data["public_key"], signature=data["signature"])
    except KeyError as exc:
        raise ValueError(f"checkpoint lacks field {exc}") from None
    if not isinstance(cp.seq, int) or isinstance(cp.seq, bool) or not all(
        isinstance(v, str) for v in (cp.dock, cp.hash, cp.time, cp.public_key, cp.signature)
    ):
        raise ValueError("checkpoint has a field of the wrong type")
    return cp


def record_from_row(row: sqlite3.Row) -> CustodyRecord:
    """A CustodyRecord from a ``custody`` table row."""
    return CustodyRecord(seq=row["seq"], event_id=row["event_id"], time=row["time"],
                         type=row["type"], actor=row["actor"], subject=row["subject"],
                         payload=json.loads(row["payload"]), prev_hash=row["prev_hash"],
                         hash=row["hash"], dock=row["dock"])
