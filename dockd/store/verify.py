"""Integrity verification of a store: every stored file, the catalog, the custody chain,
its signed checkpoints and the checkpoint file.

The result is itself a custody event (``verify.completed`` or ``verify.failed``), except on
a store that cannot be written (:mod:`dockd.store.read_only`): :func:`check_store` reads only.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dockd.store.canonical import JsonObject
from dockd.store.catalog import CATALOG_FILE, Catalog, catalog_path
from dockd.store.custody import (
    CHECKPOINT_FILE,
    CORRUPT_SUFFIX,
    GENESIS_HASH,
    Checkpoint,
    read_checkpoint_file,
    read_checkpoint_mirror,
    record_hash,
)
from dockd.store.events import VerifyCompleted, VerifyFailed
from dockd.store.evidence import EvidenceStore
from dockd.store.hashing import hash_fd
from dockd.store.keys import fingerprint, rotation_message, verify_signature
from dockd.store.object_check import ObjectTally, check_objects
from dockd.store.replay import Replay

MAX_PROBLEMS_IN_LOG = 100


@dataclass(frozen=True)
class Problem:
    """One integrity finding: what kind, about what, and the detail an examiner needs."""

    kind: str
    subject: str
    detail: str

    def to_json_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "detail": self.detail}


@dataclass
class VerifyReport:
    """Everything a verification looked at and found."""

    items_checked: int = 0
    bytes_checked: int = 0
    records_checked: int = 0
    checkpoints_checked: int = 0
    session_links_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts an examiner must know, not problems

    def add(self, kind: str, subject: str, detail: str) -> None:
        """Record one problem."""
        self.problems.append(Problem(kind, subject, detail))

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json_dict(self) -> JsonObject:
        return {"ok": self.ok, "items_checked": self.items_checked,
                "bytes_checked": self.bytes_checked, "records_checked": self.records_checked,
                "checkpoints_checked": self.checkpoints_checked,
                "session_links_checked": self.session_links_checked,
                "problems": [p.to_json_dict() for p in self.problems], "notes": self.notes}


@dataclass(frozen=True)
class StoreView:
    """What verification reads of a store: its directory, a catalog connection, the dock's
    public key (in force before the first ``key.rotated``) and where an object lives."""

    root: Path
    catalog: Catalog
    public_key: str
    object_path: Callable[[str], Path]
    notes: tuple[str, ...] = ()  # facts about how the store was read, for every report
    mirror: Path | None = None  # [dock] checkpoint_mirror: checkpoints kept outside the store


def store_view(store: EvidenceStore) -> StoreView:
    """The view of a store opened for writing."""
    return StoreView(store.root, store.catalog, store.custody.signer.public_key_hex,
                     store.content.object_path, mirror=store.custody.mirror)


def verify_store(store: EvidenceStore, actor_name: str,
                 on_item: Callable[[int], None] | None = None) -> VerifyReport:
    """Check everything (:func:`check_store`) and log the result as a custody event."""
    report = check_store(store_view(store), on_item)
    summary = report.to_json_dict()
    summary["problems"] = [p.to_json_dict() for p in report.problems[:MAX_PROBLEMS_IN_LOG]]
    summary["problem_count"] = len(report.problems)
    event = VerifyCompleted(summary) if report.ok else VerifyFailed(summary)
    store.custody.append(event, actor_name, checkpoint=True)
    return report


def check_store(store: StoreView, on_item: Callable[[int], None] | None = None) -> VerifyReport:
    """Check everything; reads only (the store may be read-only).

    The stored files are re-hashed on worker threads (:mod:`dockd.store.object_check`)
    while this thread checks the session links, the chain and the checkpoints: the disk
    and the hashing set verify's speed, and the log's checks run in their shadow. A check
    of the log added here (a replay of the custody records) runs in the same shadow.
    """
    report = VerifyReport(notes=list(store.notes))
    findings: list[Problem] = []
    objects = _ObjectPass(store, findings, on_item)
    objects.start()
    try:
        _check_session_links(store, report)
        replay = Replay()
        # The checkpoint files before the log: they are written after the log's commit, so
        # read first they vouch for no more than the snapshot below holds. Read after it, a
        # verify or session committing meanwhile would look like a truncated log.
        file_state = _read_checkpoint_file(store)
        mirror_state = _read_mirror(store.mirror) if store.mirror is not None else None
        # One read snapshot for the chain, its checkpoints and the catalog they are compared
        # with: a session committing meanwhile is either wholly in it or wholly out.
        store.catalog.conn.execute("BEGIN")
        try:
            _check_database(store, report)
            _check_chain(store, report, replay)
            keys = _key_schedule(store, replay, report)
            tail = store.catalog.query_one("SELECT MAX(seq) FROM custody")
            tail_seq: int = (tail[0] if tail else 0) or 0
            signed_upto = _check_checkpoints(store, report, keys, file_state, tail_seq)
            if store.mirror is not None and mirror_state is not None:
                _check_mirror(store, store.mirror, mirror_state, report, keys, tail_seq)
            replay.compare(store.catalog.conn, signed_upto, report.add)
        finally:
            store.catalog.conn.execute("COMMIT")
    finally:
        tally = objects.join()
    report.items_checked, report.bytes_checked = tally.items_checked, tally.bytes_checked
    report.problems[:0] = findings  # the files' problems first, as they were found
    return report


def _check_database(store: StoreView, report: VerifyReport) -> None:
    """SQLite's own check of the catalog's pages and indexes (``quick_check``): damage the
    queries below may not touch (an index page, a free page) is named too."""
    rows = [str(r[0]) for r in store.catalog.query("PRAGMA quick_check(20)")]
    if rows != ["ok"]:
        report.add("catalog_damaged", CATALOG_FILE, "; ".join(rows))


class _ObjectPass(threading.Thread):
    """:func:`check_objects` on a thread of its own, with its own catalog connection."""

    def __init__(self, store: StoreView, findings: list[Problem],
                 on_item: Callable[[int], None] | None) -> None:
        super().__init__(name="verify-objects", daemon=True)
        self.store = store
        self.findings = findings
        self.on_item = on_item
        self.tally: ObjectTally | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        catalog = Catalog(catalog_path(self.store.root), read_only=True)
        try:
            self.tally = check_objects(
                self.store.root, catalog,
                lambda f: self.findings.append(Problem(f.kind, f.subject, f.detail)),
                self.on_item)
        except BaseException as exc:  # handed to the caller in join()
            self.error = exc
        finally:
            catalog.close()

    def join(self, timeout: float | None = None) -> ObjectTally:  # type: ignore[override]
        super().join(timeout)
        if self.error is not None:
            raise self.error
        assert self.tally is not None
        return self.tally


def hash_file(path: Path, algorithms: list[str], chunk_bytes: int) -> tuple[dict[str, str], int]:
    """Digests and size of the file at ``path`` (symlinks are not followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return hash_fd(fd, algorithms, chunk_bytes)
    finally:
        os.close(fd)


def _check_session_links(store: StoreView, report: VerifyReport) -> None:
    rows = store.catalog.conn.execute(  # streamed: no list of every link
        "SELECT s.sha256, s.session_path, ses.folder FROM sightings s"
        " JOIN sessions ses ON ses.id = s.session_id JOIN items i ON i.sha256 = s.sha256"
        " WHERE s.session_path IS NOT NULL AND ses.folder IS NOT NULL AND i.deleted_at IS NULL")
    for row in rows:
        report.session_links_checked += 1
        link = store.root / row["folder"] / row["session_path"]
        obj = store.object_path(row["sha256"])
        try:
            same = os.path.samefile(link, obj)
        except OSError:
            same = False
        if not same:
            report.problems.append(Problem("session_link", row["sha256"],
                                           f"{link.relative_to(store.root)} is not the stored file"))


def _check_chain(store: StoreView, report: VerifyReport, replay: Replay) -> None:
    expected_seq, prev = 1, GENESIS_HASH
    for row in store.catalog.conn.execute("SELECT * FROM custody ORDER BY seq"):
        report.records_checked += 1
        seq = row["seq"]
        if seq != expected_seq:
            report.problems.append(Problem("chain_gap", f"seq {seq}",
                                           f"expected seq {expected_seq}"))
        if row["prev_hash"] != prev:
            report.problems.append(Problem("chain_link", f"seq {seq}",
                                           "prev_hash does not match the previous record"))
        try:
            payload = json.loads(row["payload"])
            recomputed = record_hash(row["dock"], seq, row["event_id"], row["time"], row["type"],
                                     row["actor"], row["subject"], payload, row["prev_hash"])
        except (ValueError, TypeError) as exc:
            report.problems.append(Problem("chain_record", f"seq {seq}", f"unreadable: {exc}"))
            recomputed = ""
        else:
            replay.feed(seq, row["type"], payload)
        if recomputed != row["hash"]:
            report.problems.append(Problem("chain_hash", f"seq {seq}",
                                           f"record {row['type']} was altered"))
        expected_seq, prev = seq + 1, row["hash"]


@dataclass(frozen=True)
class KeySchedule:
    """Which key signs checkpoints from which seq on (changed by ``key.rotated`` records)."""

    starts: list[int]
    keys: list[str]

    def key_at(self, seq: int) -> str:
        return self.keys[bisect.bisect_right(self.starts, seq) - 1]


def _key_schedule(store: StoreView, replay: Replay, report: VerifyReport) -> KeySchedule:
    """The keys in force, from the dock's key back through each rotation's old key."""
    first = (str(replay.rotations[0][1].get("old_public_key")) if replay.rotations
             else store.public_key)
    starts, keys = [0], [first]
    for seq, p in replay.rotations:
        subject = f"seq {seq}"
        old, new = str(p.get("old_public_key")), str(p.get("new_public_key"))
        message = rotation_message(str(p.get("dock")), old, new)
        if old != keys[-1]:
            report.add("key_rotation", subject,
                       f"rotates away from {old[:16]}… but the key in force was {keys[-1][:16]}…")
        old_sig, new_sig = p.get("old_key_signature"), p.get("new_key_signature")
        if old_sig is None:
            report.notes.append(f"seq {seq}: key {fingerprint(new)} replaced a lost key"
                                f" ({fingerprint(old)}), which did not vouch for it")
        elif not isinstance(old_sig, str) or not verify_signature(old, message, old_sig):
            report.add("key_rotation", subject, "the old key's signature does not verify")
        if not isinstance(new_sig, str) or not verify_signature(new, message, new_sig):
            report.add("key_rotation", subject, "the new key's signature does not verify")
        starts.append(seq)
        keys.append(new)
    return KeySchedule(starts, keys)


@dataclass(frozen=True)
class _CheckpointFileState:
    """The checkpoint file and the damaged copies set aside, as read before the log."""

    aside: list[str]
    checkpoint: Checkpoint | None
    error: str | None


def _read_checkpoint_file(store: StoreView) -> _CheckpointFileState:
    aside = sorted(p.name for p in store.root.glob(f"{CHECKPOINT_FILE}{CORRUPT_SUFFIX}*"))
    try:
        return _CheckpointFileState(aside, read_checkpoint_file(store.root / CHECKPOINT_FILE),
                                    None)
    except ValueError as exc:
        return _CheckpointFileState(aside, None, str(exc))


def _read_mirror(mirror: Path) -> list[Checkpoint | str] | OSError:
    try:
        return read_checkpoint_mirror(mirror)
    except FileNotFoundError:
        return []
    except OSError as exc:
        return exc


def _check_checkpoints(store: StoreView, report: VerifyReport, keys: KeySchedule,
                       file_state: _CheckpointFileState, tail_seq: int) -> int:
    """Check every checkpoint and the checkpoint file against the log, which ends at
    ``tail_seq``; the highest seq a valid checkpoint covers."""
    latest: Checkpoint | None = None
    signed_upto = 0
    for row in store.catalog.query("SELECT * FROM checkpoints ORDER BY seq"):
        report.checkpoints_checked += 1
        cp = Checkpoint(row["dock"], row["seq"], row["hash"], row["time"], row["public_key"],
                        row["signature"])
        if _check_one_checkpoint(store, cp, keys.key_at(cp.seq), "checkpoint", report):
            signed_upto = max(signed_upto, cp.seq)
        latest = cp
    for aside in file_state.aside:
        report.problems.append(Problem(
            "checkpoint_file", aside,
            "a damaged checkpoint file was set aside; examine it, then remove it"))
    if file_state.error is not None:
        report.problems.append(Problem("checkpoint_file", CHECKPOINT_FILE, file_state.error))
        return signed_upto
    file_cp = file_state.checkpoint
    if file_cp is None:
        if latest is not None:
            report.problems.append(Problem("checkpoint_file", CHECKPOINT_FILE,
                                           "missing although the log has checkpoints"))
        return signed_upto
    if file_cp.seq > tail_seq:
        report.problems.append(Problem(
            "log_truncated", CHECKPOINT_FILE,
            f"the checkpoint file vouches for seq {file_cp.seq} but the log ends at {tail_seq}"))
        return signed_upto
    _check_one_checkpoint(store, file_cp, keys.key_at(file_cp.seq), "checkpoint_file", report)
    return signed_upto


def _check_mirror(store: StoreView, mirror: Path, read: list[Checkpoint | str] | OSError,
                  report: VerifyReport, keys: KeySchedule, tail_seq: int) -> None:
    """Compare the log with the checkpoints kept outside the store: a store put back to an
    earlier state (its own backup) has a log shorter than, or different from, what they
    signed: ``rolled_back``."""
    if isinstance(read, OSError):
        report.add("checkpoint_mirror", str(mirror), f"cannot be read: {read.strerror}")
        return
    entries = read
    if report.checkpoints_checked and not any(isinstance(e, Checkpoint) for e in entries):
        # Just configured, or emptied: this verify's own checkpoint starts it (again).
        report.notes.append(f"the checkpoint mirror {mirror} holds no checkpoint yet: nothing "
                            "outside the store vouches that the log was not rolled back")
    for entry in entries:
        if isinstance(entry, str):
            report.add("checkpoint_mirror", str(mirror), entry)
            continue
        subject = f"seq {entry.seq}"
        if entry.public_key != keys.key_at(entry.seq) or not verify_signature(
                entry.public_key, entry.signed_bytes(), entry.signature):
            report.add("checkpoint_mirror", subject,
                       f"a checkpoint in {mirror} is not signed by the key in force")
            continue
        row = store.catalog.query_one("SELECT hash FROM custody WHERE seq=?", (entry.seq,))
        if entry.seq > tail_seq:
            report.add("rolled_back", subject,
                       f"{mirror} holds a signed checkpoint of seq {entry.seq} but the log ends "
                       f"at {tail_seq}: the store was put back to an earlier state")
        elif row is None or row["hash"] != entry.hash:
            report.add("rolled_back", subject,
                       f"the log at seq {entry.seq} is not what {mirror} holds signed: the "
                       "store was put back to an earlier state, or its log rewritten")


def _check_one_checkpoint(store: StoreView, cp: Checkpoint, key: str, kind: str,
                          report: VerifyReport) -> bool:
    """Report what is wrong with ``cp``; True when it is valid (so it vouches for its seq)."""
    before = len(report.problems)
    subject = f"seq {cp.seq}"
    if cp.public_key != key:
        report.problems.append(Problem(kind, subject, "signed by a key that is not this dock's"
                                       " (not the key in force at this seq)"))
    if not verify_signature(cp.public_key, cp.signed_bytes(), cp.signature):
        report.problems.append(Problem(kind, subject, "signature does not verify"))
    row = store.catalog.query_one("SELECT hash FROM custody WHERE seq=?", (cp.seq,))
    if row is None:
        report.problems.append(Problem("log_truncated", subject,
                                       "a checkpoint names a record that is not in the log"))
    elif row["hash"] != cp.hash:
        report.problems.append(Problem(kind, subject, "the log's hash differs from the signed one"))
    return len(report.problems) == before
