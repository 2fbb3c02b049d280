"""What to do with one dock's share of a batch, given what the ledger already holds.

Pure: the PostgreSQL edge (:mod:`dockd.ledger.db`) fetches a :class:`DockView` (the enrolled
key, the chain rows at and around the batch's seqs, the signed checkpoints there) under the
dock's lock, calls :func:`plan_dock`, and writes the :class:`DockPlan` it gets back.

The ledger's invariant: every record it keeps chains onto the record it keeps at the seq
before, and agrees with every verified checkpoint. Anything that would break it — a second
record for a seq, a record that does not chain, one that contradicts a signature — goes to
``forks`` as evidence and raises an alert; what is kept is never overwritten. Identical
repeats are QoS 1 duplicates: counted, harmless (they cannot change what is kept).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from dockd.i18n import Note, length_text
from dockd.ledger import notes
from dockd.ledger.judge import (
    BAD_SIGNATURE,
    KEY_MISMATCH,
    REPLAYED,
    UNKNOWN_DOCK,
    CheckpointIn,
    RecordIn,
    Rejected,
    reject,
)
from dockd.store.custody_check import BAD_SIGNATURE as BAD_SIGNATURE_PROBLEM
from dockd.store.custody_check import (
    checkpoint_key_problem,
    checkpoint_records_problem,
    link_problem,
)

# Alert kinds (the ``alerts.kind`` column; docs/ledger.md lists them).
ALERT_GAP = "gap"
ALERT_FORK = "fork"
ALERT_CHAIN = "chain_break"
ALERT_CHECKPOINT = "checkpoint_mismatch"
ALERT_KEY = "key_mismatch"
ALERT_SIGNATURE = "bad_signature"
ALERT_UNKNOWN_DOCK = "unknown_dock"
ALERT_REJECTED = "rejected"
ALERT_REPLAYED = "replayed"
ALERT_KINDS = (ALERT_GAP, ALERT_FORK, ALERT_CHAIN, ALERT_CHECKPOINT, ALERT_KEY, ALERT_SIGNATURE,
               ALERT_UNKNOWN_DOCK, ALERT_REJECTED, ALERT_REPLAYED)


@dataclass(frozen=True)
class ChainRow:
    """What the chain needs of a kept record."""

    seq: int
    event_id: str
    prev_hash: str
    hash: str
    received_at: dt.datetime | None = None  # None: kept in this very batch


@dataclass
class DockView:
    """The ledger's state of one dock around a batch's seqs."""

    dock: str
    enrolled_key: str | None                       # None: the dock is not enrolled
    rows: dict[int, ChainRow] = field(default_factory=dict)
    event_ids: dict[str, int] = field(default_factory=dict)
    checkpoints: dict[int, str] = field(default_factory=dict)  # seq -> hash (verified)


@dataclass(frozen=True)
class Fork:
    """A record or checkpoint that conflicts with what is kept: evidence, never kept as truth."""

    dock: str
    seq: int
    kind: str          # record | checkpoint
    reason: Note
    body: bytes
    topic: str


@dataclass(frozen=True)
class Alert:
    """An alert to open (or to count again when the same one is open)."""

    dock: str | None
    kind: str
    key: str
    detail: Note
    seq_from: int | None = None
    seq_to: int | None = None


@dataclass
class DockPlan:
    """The writes one dock's share of a batch leads to."""

    inserts: list[RecordIn] = field(default_factory=list)
    checkpoints: list[CheckpointIn] = field(default_factory=list)
    duplicates: int = 0
    forks: list[Fork] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def plan_dock(view: DockView, records: list[RecordIn], checkpoints: list[CheckpointIn],
              now: dt.datetime | None = None,
              replay_after: dt.timedelta = dt.timedelta(hours=1)) -> DockPlan:
    """Decide every record and checkpoint of one dock (``view`` is updated as it goes)."""
    plan = DockPlan()
    if view.enrolled_key is None:
        reason = notes.NOT_ENROLLED(dock=view.dock)
        for r in records:
            plan.rejected.append(reject(UNKNOWN_DOCK, reason, r.topic, view.dock, r.seq, r.raw))
        for c in checkpoints:
            plan.rejected.append(reject(UNKNOWN_DOCK, reason, c.topic, view.dock,
                                        c.checkpoint.seq, c.raw))
        if records or checkpoints:
            plan.alerts.append(Alert(view.dock, ALERT_UNKNOWN_DOCK, "",
                                     notes.FROM_UNENROLLED(dock=view.dock)))
        return plan
    for cp in checkpoints:
        _checkpoint(view, cp, plan)
    for record in sorted(records, key=lambda r: r.seq):
        _record(view, record, plan, now, replay_after)
    for cp in plan.checkpoints:
        _checkpoint_against_kept(view, cp, plan)
    return plan


def _checkpoint(view: DockView, item: CheckpointIn, plan: DockPlan) -> None:
    cp = item.checkpoint
    assert view.enrolled_key is not None
    problem = checkpoint_key_problem(cp, view.enrolled_key, "enrolled")
    if problem is not None:
        signature = problem.code == BAD_SIGNATURE_PROBLEM.code
        code = BAD_SIGNATURE if signature else KEY_MISMATCH
        plan.rejected.append(reject(code, problem, item.topic, view.dock, cp.seq, item.raw))
        plan.alerts.append(Alert(view.dock, ALERT_SIGNATURE if signature else ALERT_KEY,
                                 "" if signature else cp.public_key, problem, cp.seq, cp.seq))
        return
    known = view.checkpoints.get(cp.seq)
    if known == cp.hash:
        plan.duplicates += 1
        return
    if known is not None:
        reason = notes.CHECKPOINT_FORK(seq=cp.seq)
        plan.forks.append(Fork(view.dock, cp.seq, "checkpoint", reason, item.raw, item.topic))
        plan.alerts.append(Alert(view.dock, ALERT_FORK, f"checkpoint-{cp.seq}", reason,
                                 cp.seq, cp.seq))
        return
    view.checkpoints[cp.seq] = cp.hash
    plan.checkpoints.append(item)


def _record(view: DockView, r: RecordIn, plan: DockPlan, now: dt.datetime | None,
            replay_after: dt.timedelta) -> None:
    kept = view.rows.get(r.seq)
    if kept is not None:
        if kept.hash == r.hash:  # the hash covers every field: the very same record
            if (now is not None and kept.received_at is not None and not r.redelivered
                    and now - kept.received_at > replay_after):
                reason = notes.REPLAYED_RECORD(seq=r.seq,
                                               after=length_text(_seconds(now, kept.received_at)))
                plan.rejected.append(reject(REPLAYED, reason, r.topic, view.dock, r.seq, r.raw))
                plan.alerts.append(Alert(view.dock, ALERT_REPLAYED, "records", reason,
                                         r.seq, r.seq))
                return
            plan.duplicates += 1
            return
        same_id = kept.event_id == r.event_id
        _fork(view, r, plan, ALERT_FORK,
              notes.FORK_SAME_ID(seq=r.seq, event_id=r.event_id) if same_id else
              notes.FORK_OTHER_ID(seq=r.seq, kept=kept.event_id, other=r.event_id))
        return
    other = view.event_ids.get(r.event_id)
    if other is not None:
        _fork(view, r, plan, ALERT_FORK, notes.EVENT_ID_REUSED(event_id=r.event_id, seq=other))
        return
    before, after = view.rows.get(r.seq - 1), view.rows.get(r.seq + 1)
    problem = link_problem(r.seq, r.prev_hash, r.hash,
                           before=before.hash if before else None,
                           after_prev=after.prev_hash if after else None,
                           pinned=view.checkpoints.get(r.seq),
                           pinned_before=view.checkpoints.get(r.seq - 1))
    if problem is not None:
        _fork(view, r, plan, ALERT_CHAIN, problem)
        return
    view.rows[r.seq] = ChainRow(r.seq, r.event_id, r.prev_hash, r.hash)
    view.event_ids[r.event_id] = r.seq
    plan.inserts.append(r)


def _fork(view: DockView, r: RecordIn, plan: DockPlan, kind: str, reason: Note) -> None:
    plan.forks.append(Fork(view.dock, r.seq, "record", reason, r.body, r.topic))
    plan.alerts.append(Alert(view.dock, kind, f"seq-{r.seq}", reason, r.seq, r.seq))


def _checkpoint_against_kept(view: DockView, item: CheckpointIn, plan: DockPlan) -> None:
    cp = item.checkpoint
    at, following = view.rows.get(cp.seq), view.rows.get(cp.seq + 1)
    disagreement = checkpoint_records_problem(cp, at.hash if at else None,
                                              following.prev_hash if following else None)
    if disagreement is not None:
        seq, reason = disagreement
        plan.alerts.append(Alert(view.dock, ALERT_CHECKPOINT, f"seq-{seq}",
                                 notes.CONTRADICTED(problem=reason), seq, seq))


def _seconds(now: dt.datetime, then: dt.datetime) -> float:
    return (now - then).total_seconds()
