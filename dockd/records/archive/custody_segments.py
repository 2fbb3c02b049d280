"""The dock's custody log in the WORM archive, in segments each covered by a signed
checkpoint.

A segment holds the records after one checkpoint up to and including the next
(``(previous checkpoint seq, checkpoint seq]``, from seq 1 for the first) and that
checkpoint, as one canonical JSON object under
``<prefix>/custody/<first:012d>-<last:012d>.json``, COMPLIANCE-locked like the evidence.
Anyone holding the dock's public key can check a segment alone: every record hashes to
its content, each chains onto the one before, and the last one's hash is what the
checkpoint signs. The ledger fills its gaps from these; ``dockd verify --against-archive``
proves the dock's own log still holds every archived record (it was not rolled back).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from dockd.store.canonical import canonical_json
from dockd.store.custody import Checkpoint, checkpoint_from_dict
from dockd.store.custody_check import checkpoint_key_problem, hashed_body, record_form_problem

KIND = "dockd.custody.segment"
_NAME = re.compile(r"/custody/(\d{12})-(\d{12})\.json$")


@dataclass(frozen=True)
class Segment:
    """The records of one checkpoint interval and the checkpoint itself."""

    dock: str
    first_seq: int
    last_seq: int
    records: list[dict[str, Any]]
    checkpoint: Checkpoint

    def to_bytes(self) -> bytes:
        return canonical_json({"kind": KIND, "dock": self.dock, "first_seq": self.first_seq,
                               "last_seq": self.last_seq, "records": self.records,
                               "checkpoint": self.checkpoint.to_json_dict()}) + b"\n"


def segment_key(prefix: str, first_seq: int, last_seq: int) -> str:
    """Where the segment of seqs ``first_seq``..``last_seq`` lives."""
    return f"{prefix}/custody/{first_seq:012d}-{last_seq:012d}.json"


def segment_range(key: str) -> tuple[int, int] | None:
    """The seq range a segment key names; None for any other key."""
    match = _NAME.search(key)
    return (int(match[1]), int(match[2])) if match else None


def parse_segment(data: bytes, public_key: str, dock: str) -> Segment:
    """A segment read back and checked against ``public_key``; ValueError saying what is
    wrong with it otherwise (every record's hash, the chain, the signed checkpoint)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"segment is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("dock") != dock:
        raise ValueError(f"not a custody segment of dock {dock}")
    first, last, records = doc.get("first_seq"), doc.get("last_seq"), doc.get("records")
    if not isinstance(first, int) or not isinstance(last, int) or not isinstance(records, list):
        raise ValueError("segment first_seq, last_seq or records malformed")
    cp = checkpoint_from_dict(doc.get("checkpoint"))
    key_problem = checkpoint_key_problem(cp, public_key, "enrolled")
    if key_problem is not None:
        raise ValueError(f"segment checkpoint: {key_problem}")
    if cp.dock != dock or cp.seq != last or not records:
        raise ValueError("segment checkpoint does not close the segment")
    previous: dict[str, Any] | None = None
    for expected_seq, record in enumerate(records, start=first):
        form = record_form_problem(record)
        problem = None if form is None else str(form)
        if problem is None and record["seq"] != expected_seq:
            problem = f"record seq {record['seq']} where {expected_seq} was due"
        if problem is None:
            forged = hashed_body(record)[1]
            problem = None if forged is None else str(forged)
        if problem is None and previous is not None and record["prev_hash"] != previous["hash"]:
            problem = "does not chain onto the record before it"
        if problem is None and record["dock"] != dock:
            problem = f"names dock {record['dock']!r}"
        if problem is not None:
            raise ValueError(f"segment record {expected_seq}: {problem}")
        previous = record
    assert previous is not None
    if previous["seq"] != last or previous["hash"] != cp.hash:
        raise ValueError("the signed checkpoint does not sign the segment's last record")
    return Segment(dock, first, last, records, cp)
