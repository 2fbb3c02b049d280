"""Judging custody records and checkpoints that arrive from outside the dock.

Shared by the two consumers that check a dock's custody stream: ``dockd watch --verify``
(:mod:`dockd.report.mqtt.stream_verify`, state in memory) and the bureau's ledger
(:mod:`dockd.ledger`, state in PostgreSQL). Each function looks at one record or checkpoint
and the neighbours the caller knows; none keeps state. Every answer is either ``None``
(nothing wrong) or a :class:`~dockd.i18n.Note` saying what is wrong: ``str()`` of it is the
English sentence both consumers report; the ledger stores its code and values and shows it in
the reader's language (its catalog, ``dockd_ledger.po``, translates these templates).
"""

from __future__ import annotations

import re
from typing import Any

from dockd.i18n import N_, Note, Sentence
from dockd.store.canonical import canonical_json
from dockd.store.custody import GENESIS_HASH, Checkpoint, record_hash
from dockd.store.keys import verify_signature

HEX64 = re.compile(r"^[0-9a-f]{64}$")
RECORD_FIELDS = frozenset({"v", "dock", "seq", "event_id", "time", "type", "actor", "subject",
                           "payload", "prev_hash", "hash"})

NOT_OBJECT = Sentence("record.not_object", N_("custody message is not a JSON object"))
FIELDS = Sentence("record.fields", N_("custody record fields wrong (missing: {missing}; "
                                      "unexpected: {unexpected})"))
VERSION = Sentence("record.version", N_("custody record version {version} is not 1"))
SEQ = Sentence("record.seq", N_("custody record seq is not a positive integer"))
NOT_STRING = Sentence("record.not_string", N_("custody record {field} is not a string"))
PAYLOAD = Sentence("record.payload", N_("custody record payload is not an object"))
NOT_HEX = Sentence("record.not_hex", N_("custody record {field} is not 64 hex digits"))
UNHASHABLE = Sentence("record.unhashable", N_("record cannot be hashed: {error}"))
FORGED = Sentence("record.forged", N_("hash does not match the record's content (edited or "
                                      "forged)"))
GENESIS = Sentence("link.genesis", N_("seq 1 does not start from the genesis hash"))
NOT_ONTO = Sentence("link.not_onto", N_("does not chain onto seq {seq}"))
NEXT_NOT_ONTO = Sentence("link.next_not_onto", N_("seq {seq} does not chain onto it"))
NOT_PINNED = Sentence("link.not_pinned", N_("differs from the signed checkpoint at this seq"))
NOT_ONTO_PINNED = Sentence("link.not_onto_pinned", N_("does not chain onto the signed "
                                                      "checkpoint at seq {seq}"))
OTHER_KEY = {
    "enrolled": Sentence("checkpoint.not_enrolled_key", N_(
        "checkpoint carries key {key}…, not the dock's enrolled key {expected}…")),
    "published": Sentence("checkpoint.not_published_key", N_(
        "checkpoint carries key {key}…, not the dock's published key {expected}…")),
}
BAD_SIGNATURE = Sentence("checkpoint.bad_signature", N_("checkpoint signature does not verify"))
DISAGREES = Sentence("checkpoint.disagrees", N_("signed checkpoint disagrees with the record "
                                                "received for this seq"))
NEXT_NOT_ONTO_CHECKPOINT = Sentence("checkpoint.next_not_onto", N_(
    "record does not chain onto the signed checkpoint at seq {seq}"))
ONE_SEQ = Sentence("range.one", N_("seq {seq}"))
SEQ_RANGE = Sentence("range.many", N_("seq {lo}-{hi}"))
KEY_SHOWN = 16  # hex digits of a key a sentence shows (a fingerprint, not the key)


def record_form_problem(message: Any) -> Note | None:
    """Why ``message`` is not a v1 custody record; None when its shape is right."""
    if not isinstance(message, dict):
        return NOT_OBJECT()
    if set(message) != RECORD_FIELDS:
        # Field names of a hostile message are data: shown as JSON strings, at most 20.
        missing = sorted(RECORD_FIELDS - set(message))
        extra = [repr(k)[:40] for k in sorted(set(message) - RECORD_FIELDS)][:20]
        return FIELDS(missing=missing, unexpected=extra)
    if message["v"] != 1 or isinstance(message["v"], bool):
        return VERSION(version=repr(message["v"])[:40])
    seq = message["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return SEQ()
    for name in ("dock", "event_id", "time", "type", "actor", "subject"):
        if not isinstance(message[name], str):
            return NOT_STRING(field=name)
    if not isinstance(message["payload"], dict):
        return PAYLOAD()
    for name in ("prev_hash", "hash"):
        if not isinstance(message[name], str) or not HEX64.match(message[name]):
            return NOT_HEX(field=name)
    return None


def hashed_body(message: dict[str, Any]) -> tuple[bytes | None, Note | None]:
    """The canonical bytes of a well-formed record and whether its ``hash`` is its content's.

    Returns ``(body, None)`` when the hash is right; ``(None, problem)`` when the record
    cannot be hashed (the problem's code is :data:`UNHASHABLE`'s) or was edited/forged.
    """
    try:
        body = canonical_json(message)
        expected = record_hash(message["dock"], message["seq"], message["event_id"],
                               message["time"], message["type"], message["actor"],
                               message["subject"], message["payload"], message["prev_hash"])
    except (ValueError, TypeError, RecursionError) as exc:
        return None, UNHASHABLE(error=str(exc)[:200])
    if expected != message["hash"]:
        return None, FORGED()
    return body, None


def link_problem(seq: int, prev_hash: str, hash_: str, *, before: str | None,
                 after_prev: str | None, pinned: str | None = None,
                 pinned_before: str | None = None) -> Note | None:
    """Whether a record fits its known neighbours.

    ``before`` is the hash of the record at ``seq - 1`` and ``after_prev`` the ``prev_hash``
    of the record at ``seq + 1`` (None when unknown); ``pinned``/``pinned_before`` the hashes
    signed checkpoints vouch for at ``seq`` and ``seq - 1``.
    """
    if seq == 1 and prev_hash != GENESIS_HASH:
        return GENESIS()
    if before is not None and before != prev_hash:
        return NOT_ONTO(seq=seq - 1)
    if after_prev is not None and after_prev != hash_:
        return NEXT_NOT_ONTO(seq=seq + 1)
    if pinned is not None and pinned != hash_:
        return NOT_PINNED()
    if pinned_before is not None and pinned_before != prev_hash:
        return NOT_ONTO_PINNED(seq=seq - 1)
    return None


def checkpoint_key_problem(cp: Checkpoint, key: str, whose: str) -> Note | None:
    """Whether ``cp`` is signed by ``key`` (``whose``: ``enrolled`` or ``published``, where
    the key came from)."""
    if cp.public_key != key:
        return OTHER_KEY[whose](key=cp.public_key[:KEY_SHOWN], expected=key[:KEY_SHOWN])
    if not verify_signature(key, cp.signed_bytes(), cp.signature):
        return BAD_SIGNATURE()
    return None


def checkpoint_records_problem(cp: Checkpoint, record_hash_at: str | None,
                               next_prev_hash: str | None) -> tuple[int, Note] | None:
    """Whether a (verified) checkpoint agrees with the records known at and after its seq;
    ``(seq, problem)`` names the record that disagrees."""
    if record_hash_at is not None and record_hash_at != cp.hash:
        return cp.seq, DISAGREES()
    if next_prev_hash is not None and next_prev_hash != cp.hash:
        return cp.seq + 1, NEXT_NOT_ONTO_CHECKPOINT(seq=cp.seq)
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


def range_note(lo: int, hi: int) -> Note:
    """``seq 4`` or ``seq 4-9``, as a Note."""
    return ONE_SEQ(seq=lo) if hi == lo else SEQ_RANGE(lo=lo, hi=hi)


def range_text(lo: int, hi: int) -> str:
    """``seq 4`` or ``seq 4-9``."""
    return str(range_note(lo, hi))
