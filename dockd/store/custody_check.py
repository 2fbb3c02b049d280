"""Judging custody records and checkpoints that arrive from outside the dock.

Shared by the two consumers that check a dock's custody stream: ``dockd watch --verify``
(:mod:`dockd.report.mqtt.stream_verify`, state in memory) and the bureau's ledger
(:mod:`dockd.ledger`, state in PostgreSQL). Each function looks at one record or checkpoint
and the neighbours the caller knows; none keeps state. Every answer is either ``None``
(nothing wrong) or one sentence saying what is wrong, in the words both consumers report.
"""

from __future__ import annotations

import re
from typing import Any

from dockd.store.canonical import canonical_json
from dockd.store.custody import GENESIS_HASH, Checkpoint, record_hash
from dockd.store.keys import verify_signature

HEX64 = re.compile(r"^[0-9a-f]{64}$")
RECORD_FIELDS = frozenset({"v", "dock", "seq", "event_id", "time", "type", "actor", "subject",
                           "payload", "prev_hash", "hash"})


def record_form_problem(message: Any) -> str | None:
    """Why ``message`` is not a v1 custody record; None when its shape is right."""
    if not isinstance(message, dict):
        return "custody message is not a JSON object"
    if set(message) != RECORD_FIELDS:
        missing = sorted(RECORD_FIELDS - set(message))
        extra = sorted(set(message) - RECORD_FIELDS)
        return f"custody record fields wrong (missing {missing}, unexpected {extra})"
    if message["v"] != 1 or isinstance(message["v"], bool):
        return f"custody record version {message['v']!r} is not 1"
    seq = message["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return "custody record seq is not a positive integer"
    for name in ("dock", "event_id", "time", "type", "actor", "subject"):
        if not isinstance(message[name], str):
            return f"custody record {name} is not a string"
    if not isinstance(message["payload"], dict):
        return "custody record payload is not an object"
    for name in ("prev_hash", "hash"):
        if not isinstance(message[name], str) or not HEX64.match(message[name]):
            return f"custody record {name} is not 64 hex digits"
    return None


def hashed_body(message: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """The canonical bytes of a well-formed record and whether its ``hash`` is its content's.

    Returns ``(body, None)`` when the hash is right; ``(None, problem)`` when the record
    cannot be hashed (the problem starts with ``cannot be hashed``) or was edited/forged.
    """
    try:
        body = canonical_json(message)
        expected = record_hash(message["dock"], message["seq"], message["event_id"],
                               message["time"], message["type"], message["actor"],
                               message["subject"], message["payload"], message["prev_hash"])
    except (ValueError, TypeError, RecursionError) as exc:
        return None, f"record cannot be hashed: {exc}"
    if expected != message["hash"]:
        return None, "hash does not match the record's content (edited or forged)"
    return body, None


def link_problem(seq: int, prev_hash: str, hash_: str, *, before: str | None,
                 after_prev: str | None, pinned: str | None = None,
                 pinned_before: str | None = None) -> str | None:
    """Whether a record fits its known neighbours.

    ``before`` is the hash of the record at ``seq - 1`` and ``after_prev`` the ``prev_hash``
    of the record at ``seq + 1`` (None when unknown); ``pinned``/``pinned_before`` the hashes
    signed checkpoints vouch for at ``seq`` and ``seq - 1``.
    """
    if seq == 1 and prev_hash != GENESIS_HASH:
        return "seq 1 does not start from the genesis hash"
    if before is not None and before != prev_hash:
        return f"does not chain onto seq {seq - 1}"
    if after_prev is not None and after_prev != hash_:
        return f"seq {seq + 1} does not chain onto it"
    if pinned is not None and pinned != hash_:
        return "differs from the signed checkpoint at this seq"
    if pinned_before is not None and pinned_before != prev_hash:
        return f"does not chain onto the signed checkpoint at seq {seq - 1}"
    return None


def checkpoint_key_problem(cp: Checkpoint, key: str, whose: str) -> str | None:
    """Whether ``cp`` is signed by ``key`` (``whose`` names where the key came from)."""
    if cp.public_key != key:
        return f"checkpoint carries a key that is not the dock's {whose} key"
    if not verify_signature(key, cp.signed_bytes(), cp.signature):
        return "checkpoint signature does not verify"
    return None


def checkpoint_records_problem(cp: Checkpoint, record_hash_at: str | None,
                               next_prev_hash: str | None) -> tuple[int, str] | None:
    """Whether a (verified) checkpoint agrees with the records known at and after its seq;
    ``(seq, problem)`` names the record that disagrees."""
    if record_hash_at is not None and record_hash_at != cp.hash:
        return cp.seq, "signed checkpoint disagrees with the record received for this seq"
    if next_prev_hash is not None and next_prev_hash != cp.hash:
        return cp.seq + 1, f"record does not chain onto the signed checkpoint at seq {cp.seq}"
    return None


def ranges(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted integers as inclusive runs: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def range_text(lo: int, hi: int) -> str:
    """``seq 4`` or ``seq 4-9``."""
    return f"seq {lo}" + (f"-{hi}" if hi != lo else "")
