"""Checking a live MQTT stream of custody records and checkpoints (``dockd watch --verify``).

What a consumer can prove from the stream alone:

* each record's ``hash`` is the hash of its content (an edited record is caught);
* each record chains onto the one before it (``prev_hash``), seq 1 onto the genesis hash;
* no seq is missing between the first expected and the last seen (a gap);
* a seq or event id seen twice is the very same record (a QoS 1 duplicate) — two different
  records for one seq are a forgery;
* each checkpoint is signed by the dock's published key and names the hash the chain has
  at that seq.

A record injected with a correct self-hash is caught when the real record of that seq
arrives, when the next record does not chain onto it, or when a checkpoint disagrees: only
checkpoints carry a signature, so that is the strongest statement the stream can make.
This module knows nothing of MQTT clients; it takes (topic, payload) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockd.report.mqtt.payloads import decode
from dockd.report.mqtt.topics import ParsedTopic, parse_topic
from dockd.store.custody import checkpoint_from_dict
from dockd.store.custody_check import (
    HEX64,
    UNHASHABLE,
    checkpoint_key_problem,
    checkpoint_records_problem,
    hashed_body,
    link_problem,
    range_text,
    ranges,
    record_form_problem,
)

# Kinds of finding; every kind but "duplicate" makes ``dockd watch --verify`` fail, because
# QoS 1 delivers at least once and an identical repeat proves nothing wrong.
GAP = "gap"
DUPLICATE = "duplicate"
FORGERY = "forgery"
MALFORMED = "malformed"
UNVERIFIED = "unverified_checkpoint"
HARMLESS = frozenset({DUPLICATE})


@dataclass(frozen=True)
class Finding:
    """One thing wrong (or merely repeated) in the stream."""

    kind: str
    dock: str
    seq: int | None
    detail: str

    @property
    def fails(self) -> bool:
        return self.kind not in HARMLESS

    def to_json_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "dock": self.dock, "seq": self.seq, "detail": self.detail}


@dataclass(frozen=True)
class Event:
    """A message of the tree as understood: what it is and what it says."""

    topic: str
    kind: str  # custody | checkpoint | status | bay | health | alert | unknown
    dock: str | None
    message: Any
    findings: tuple[Finding, ...] = ()
    # An empty retained payload: the dock withdrew this fact (a bay state at a clean stop).
    cleared: bool = False


@dataclass
class _Dock:
    records: dict[int, tuple[str, str, str, bytes]] = field(default_factory=dict)
    event_ids: dict[str, int] = field(default_factory=dict)
    checkpoints: dict[int, str] = field(default_factory=dict)   # seq -> hash (verified)
    waiting: list[Any] = field(default_factory=list)            # checkpoints without a key
    public_key: str | None = None
    checkpoints_verified: int = 0
    scan_start: int = 0
    scan_end: int = -1


class StreamVerifier:
    """Feeds on messages of one topic prefix; remembers enough per dock to judge the next."""

    def __init__(self, prefix: str, *, from_seq: int | None = None,
                 public_key: str | None = None) -> None:
        self.prefix = prefix
        self.from_seq = from_seq
        self.pinned_key = public_key
        self.docks: dict[str, _Dock] = {}
        self.findings: list[Finding] = []

    # -- input ----------------------------------------------------------------------

    def feed(self, topic: str, payload: bytes) -> Event:
        """Judge one message; its findings are also kept in ``self.findings``."""
        parsed = parse_topic(self.prefix, topic)
        if parsed is None:
            return Event(topic, "unknown", None, None)
        error: str | None = None
        try:
            message = decode(payload)
        except ValueError as exc:
            message, error = None, str(exc)
        found: list[Finding] = []
        if parsed.kind == "custody":
            found = self._custody(parsed, message, error)
        elif parsed.kind == "checkpoint":
            found = self._checkpoint(parsed, message, error)
        elif parsed.kind == "status":
            found = self._status(parsed, message)
        self.findings.extend(found)
        return Event(topic, parsed.kind, parsed.dock, message, tuple(found), cleared=payload == b"")

    # -- results --------------------------------------------------------------------

    def complete(self, until_seq: int, dock: str | None = None) -> bool:
        """True when every seq from the first expected to ``until_seq`` has arrived."""
        docks = [dock] if dock else list(self.docks)
        if not docks:
            return False
        for name in docks:
            state = self.docks.get(name)
            if state is None or not state.records:
                return False
            start = self._start(state)
            if state.scan_start != start:
                state.scan_start, state.scan_end = start, start - 1
            # Advance a high-water mark instead of rescanning: O(1) per message on average.
            while state.scan_end + 1 in state.records:
                state.scan_end += 1
            if state.scan_end < until_seq:
                return False
        return True

    def finish(self, until_seq: int | None = None, dock: str | None = None) -> list[Finding]:
        """Final findings: gaps and checkpoints that could not be checked."""
        found: list[Finding] = []
        names = set(self.docks) | ({dock} if dock else set())
        if not names and until_seq is not None:
            found.append(Finding(GAP, dock or "*", None, "no custody record arrived at all"))
        for name in sorted(names):
            state = self.docks.setdefault(name, _Dock())
            found += self._gaps(name, state, until_seq)
            for cp in state.waiting:
                found.append(Finding(UNVERIFIED, name, cp.seq,
                                     "checkpoint not checked: the dock published no public key"))
        self.findings.extend(found)
        return found

    def summary(self) -> dict[str, Any]:
        """Counts per dock, for the last line of ``dockd watch``."""
        return {
            "docks": {name: {"records": len(s.records),
                             "first_seq": min(s.records) if s.records else None,
                             "last_seq": max(s.records) if s.records else None,
                             "checkpoints_verified": s.checkpoints_verified}
                      for name, s in sorted(self.docks.items())},
            "problems": sum(1 for f in self.findings if f.fails),
            "duplicates": sum(1 for f in self.findings if f.kind == DUPLICATE),
            "ok": not any(f.fails for f in self.findings),
        }

    # -- custody records ----------------------------------------------------------

    def _custody(self, where: ParsedTopic, message: Any, error: str | None) -> list[Finding]:
        state = self.docks.setdefault(where.dock, _Dock())
        problem = error or record_form_problem(message)
        if problem is not None:
            claimed = message.get("seq") if isinstance(message, dict) else None
            return [Finding(MALFORMED, where.dock,
                            claimed if isinstance(claimed, int) else None, str(problem))]
        seq: int = message["seq"]
        if message["dock"] != where.dock:
            return [Finding(FORGERY, where.dock, seq, f"record names dock {message['dock']!r} "
                            f"but came on {where.dock}'s topic")]
        body, problem = hashed_body(message)
        if body is None:
            kind = MALFORMED if problem is not None and problem.code == UNHASHABLE.code \
                else FORGERY
            return [Finding(kind, where.dock, seq, str(problem))]
        known = state.records.get(seq)
        if known is not None:
            if known[3] == body:
                return [Finding(DUPLICATE, where.dock, seq, "received again (identical)")]
            return [Finding(FORGERY, where.dock, seq,
                            f"two different records claim seq {seq} (event ids {known[0]} and "
                            f"{message['event_id']})")]
        other = state.event_ids.get(message["event_id"])
        if other is not None:
            return [Finding(FORGERY, where.dock, seq,
                            f"event id {message['event_id']} already used by seq {other}")]
        found = self._links(where.dock, state, seq, message["prev_hash"], message["hash"])
        if found:
            return found
        state.records[seq] = (message["event_id"], message["prev_hash"], message["hash"], body)
        state.event_ids[message["event_id"]] = seq
        return []

    def _links(self, dock: str, state: _Dock, seq: int, prev_hash: str, hash_: str) -> list[Finding]:
        before = state.records.get(seq - 1)
        after = state.records.get(seq + 1)
        problem = link_problem(seq, prev_hash, hash_,
                               before=before[2] if before else None,
                               after_prev=after[1] if after else None,
                               pinned=state.checkpoints.get(seq),
                               pinned_before=state.checkpoints.get(seq - 1))
        return [] if problem is None else [Finding(FORGERY, dock, seq, str(problem))]

    def _gaps(self, dock: str, state: _Dock, until_seq: int | None) -> list[Finding]:
        if not state.records:
            if until_seq is not None:
                return [Finding(GAP, dock, None, "no custody record arrived")]
            return []
        start = self._start(state)
        end = max(max(state.records), until_seq or 0)
        missing = [s for s in range(start, end + 1) if s not in state.records]
        return [Finding(GAP, dock, lo, f"{range_text(lo, hi)} missing")
                for lo, hi in ranges(missing)]

    def _start(self, state: _Dock) -> int:
        return self.from_seq if self.from_seq is not None else min(state.records)

    # -- checkpoints and the dock's key -------------------------------------------

    def _checkpoint(self, where: ParsedTopic, message: Any, error: str | None) -> list[Finding]:
        state = self.docks.setdefault(where.dock, _Dock())
        if error is not None:
            return [Finding(MALFORMED, where.dock, None, error)]
        try:
            cp = checkpoint_from_dict(message)
        except ValueError as exc:
            return [Finding(MALFORMED, where.dock, None, f"checkpoint: {exc}")]
        if cp.dock != where.dock:
            return [Finding(FORGERY, where.dock, cp.seq,
                            f"checkpoint names dock {cp.dock!r} but came on {where.dock}'s topic")]
        key = self.pinned_key or state.public_key
        if key is None:
            state.waiting.append(cp)
            return []
        return self._check_checkpoint(where.dock, state, cp, key)

    def _check_checkpoint(self, dock: str, state: _Dock, cp: Any, key: str) -> list[Finding]:
        problem = checkpoint_key_problem(cp, key, "published")
        if problem is not None:
            return [Finding(FORGERY, dock, cp.seq, str(problem))]
        record = state.records.get(cp.seq)
        following = state.records.get(cp.seq + 1)
        disagreement = checkpoint_records_problem(cp, record[2] if record else None,
                                                  following[1] if following else None)
        if disagreement is not None:
            return [Finding(FORGERY, dock, disagreement[0], str(disagreement[1]))]
        state.checkpoints[cp.seq] = cp.hash
        state.checkpoints_verified += 1
        return []

    def _status(self, where: ParsedTopic, message: Any) -> list[Finding]:
        if not isinstance(message, dict):
            return []  # a status we cannot read says nothing about the chain
        key = message.get("public_key")
        if not isinstance(key, str) or not HEX64.match(key):
            return []
        state = self.docks.setdefault(where.dock, _Dock())
        found: list[Finding] = []
        if self.pinned_key is not None and key != self.pinned_key:
            found.append(Finding(FORGERY, where.dock, None,
                                 "status publishes a key other than the one given with --key"))
        elif state.public_key is not None and key != state.public_key:
            found.append(Finding(FORGERY, where.dock, None,
                                 "the dock's published key changed during the watch"))
        if state.public_key is None:
            state.public_key = key
        waiting, state.waiting = state.waiting, []
        for cp in waiting:
            found += self._check_checkpoint(where.dock, state, cp, self.pinned_key or key)
        return found

