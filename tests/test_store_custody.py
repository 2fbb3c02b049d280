"""Custody log: hash chain, append-only triggers, signed checkpoints, key file, and every
way of tampering that verification must name."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.clock import parse_utc_iso
from dockd.errors import ConfigError
from dockd.store.custody import (
    CHECKPOINT_FILE,
    GENESIS_HASH,
    RECORD_TAG,
    canonical_json,
    read_checkpoint_file,
    record_from_row,
    record_hash,
    uuid4_text,
)
from dockd.store.evidence import EvidenceStore
from dockd.store.ingest import Ingestor
from dockd.store.keys import fingerprint
from dockd.store.verify import verify_store
from tests.custody_support import RawEvent

Opener = Callable[..., EvidenceStore]


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _ingest_some(store: EvidenceStore, tmp_path: Path, n: int = 3) -> None:
    src = _write_tree(tmp_path / f"src{n}", {f"DCIM/{i}.MP4": os.urandom(1000 + i) for i in range(n)})
    report = Ingestor(store, "test").ingest(src, "REC-1")
    assert report.result == "completed"


def _raw(store: EvidenceStore) -> sqlite3.Connection:
    return sqlite3.connect(store.catalog.path, isolation_level=None)


def _kinds(store: EvidenceStore) -> set[str]:
    return {p.kind for p in verify_store(store, "test").problems}


def test_chain_fields_and_hash_formula(open_test_store: Opener, tmp_path: Path) -> None:
    store = open_test_store()
    _ingest_some(store, tmp_path)
    rows = store.catalog.query("SELECT * FROM custody ORDER BY seq")
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r["type"] for r in rows] == ["session.started"] + ["file.ingested"] * 3 + [
        "session.completed"]
    prev = GENESIS_HASH
    for r in rows:
        assert r["prev_hash"] == prev
        assert r["time"].endswith("Z") and parse_utc_iso(r["time"]).utcoffset().total_seconds() == 0
        assert r["actor"] == "test" and r["dock"] == "dock-test"
        payload = json.loads(r["payload"])
        assert r["payload"].encode() == canonical_json(payload)  # stored canonical
        body = canonical_json({"v": 1, "dock": r["dock"], "seq": r["seq"],
                               "event_id": r["event_id"], "time": r["time"], "type": r["type"],
                               "actor": r["actor"], "subject": r["subject"], "payload": payload,
                               "prev_hash": r["prev_hash"]})
        expected = hashlib.sha256(RECORD_TAG + bytes.fromhex(prev) + body).hexdigest()
        assert r["hash"] == expected
        prev = r["hash"]
    # each record has its outbox row in the same transaction
    outbox = store.catalog.query("SELECT ref_seq FROM outbox WHERE kind='custody' ORDER BY ref_seq")
    assert [o[0] for o in outbox] == [r["seq"] for r in rows]
    assert verify_store(store, "test").ok


@pytest.mark.parametrize("sql", [
    "UPDATE custody SET payload='{}' WHERE seq=1",
    "DELETE FROM custody WHERE seq=1",
    "UPDATE checkpoints SET signature='x'",
    "DELETE FROM checkpoints",
    "DELETE FROM items",
    "UPDATE items SET sha256='0'",
    "UPDATE sightings SET source_path='x'",
    "DELETE FROM sightings",
])
def test_triggers_reject_update_and_delete(open_test_store: Opener, tmp_path: Path,
                                           sql: str) -> None:
    store = open_test_store()
    _ingest_some(store, tmp_path)
    conn = _raw(store)
    with pytest.raises(sqlite3.IntegrityError, match=r"append-only|never deleted|immutable"):
        conn.execute(sql)
    conn.close()
    assert verify_store(store, "test").ok


def test_checkpoint_after_every_session_and_every_n_records(open_test_store: Opener,
                                                            tmp_path: Path) -> None:
    store = open_test_store(checkpoint_every=4)
    _ingest_some(store, tmp_path, n=9)  # 11 records: started, 9 files, completed
    seqs = [r[0] for r in store.catalog.query("SELECT seq FROM checkpoints ORDER BY seq")]
    assert seqs == [4, 8, 11]
    cp = read_checkpoint_file(store.root / CHECKPOINT_FILE)
    assert cp is not None and cp.seq == 11
    assert cp.public_key == store.custody.signer.public_key_hex
    # published too (retained), for off-box checking
    assert store.catalog.query_one("SELECT COUNT(*) FROM outbox WHERE kind='checkpoint'")[0] == 3


def test_key_file_created_on_first_use_mode_0400(open_test_store: Opener, store_dir: Path) -> None:
    key = store_dir / "keys" / "custody.ed25519"
    assert not key.exists()
    store = open_test_store()
    assert stat.S_IMODE(key.stat().st_mode) == 0o400
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    first = store.custody.signer.public_key_hex
    store.close()
    again = open_test_store()
    assert again.custody.signer.public_key_hex == first  # loaded, not recreated


def test_truncated_tail_is_detected_as_log_truncated(open_test_store: Opener,
                                                     tmp_path: Path) -> None:
    store = open_test_store()
    _ingest_some(store, tmp_path)
    tail = store.catalog.query_one("SELECT MAX(seq) FROM custody")[0]
    conn = _raw(store)
    conn.executescript("DROP TRIGGER custody_no_delete; DROP TRIGGER checkpoints_no_delete;")
    conn.execute("DELETE FROM custody WHERE seq > ?", (tail - 2,))
    conn.execute("DELETE FROM checkpoints WHERE seq > ?", (tail - 2,))  # a careful forger
    conn.close()
    assert "log_truncated" in _kinds(store)


def test_log_keeps_working_after_truncation_and_never_reuses_a_signed_seq(
        open_test_store: Opener, tmp_path: Path) -> None:
    store = open_test_store()
    _ingest_some(store, tmp_path)
    tail = store.catalog.query_one("SELECT MAX(seq) FROM custody")[0]
    conn = _raw(store)
    conn.executescript("DROP TRIGGER custody_no_delete;")
    conn.execute("DELETE FROM custody WHERE seq = ?", (tail,))  # the checkpointed record
    conn.close()
    kinds = _kinds(store)  # appends verify.failed: must not crash on the checkpoint's seq
    assert "log_truncated" in kinds
    seqs = [r[0] for r in store.catalog.query("SELECT seq FROM custody ORDER BY seq")]
    assert seqs[-1] == tail + 1 and tail not in seqs
    _ingest_some(store, tmp_path, n=2)
    assert {"chain_gap", "log_truncated"} <= _kinds(store)


def test_edited_payload_is_detected_as_chain_hash(open_test_store: Opener, tmp_path: Path) -> None:
    store = open_test_store()
    _ingest_some(store, tmp_path)
    conn = _raw(store)
    conn.execute("DROP TRIGGER custody_no_update")
    row = conn.execute("SELECT seq, payload FROM custody WHERE type='file.ingested' LIMIT 1").fetchone()
    payload = json.loads(row[1])
    payload["source_path"] = "DCIM/innocent.MP4"
    conn.execute("UPDATE custody SET payload=? WHERE seq=?", (canonical_json(payload).decode(), row[0]))
    conn.close()
    problems = verify_store(store, "test").problems
    assert any(p.kind == "chain_hash" and p.subject == f"seq {row[0]}" for p in problems)


def test_rehashed_forgery_breaks_the_signed_checkpoint(open_test_store: Opener,
                                                       tmp_path: Path) -> None:
    """A forger who recomputes every hash after an edit still cannot re-sign checkpoints."""
    store = open_test_store()
    _ingest_some(store, tmp_path)
    conn = _raw(store)
    conn.row_factory = sqlite3.Row
    conn.execute("DROP TRIGGER custody_no_update")
    from dockd.store.custody import record_hash
    prev = GENESIS_HASH
    for r in conn.execute("SELECT * FROM custody ORDER BY seq").fetchall():
        payload = json.loads(r["payload"])
        if r["type"] == "file.ingested":
            payload["size"] = 1
        h = record_hash(r["dock"], r["seq"], r["event_id"], r["time"], r["type"], r["actor"],
                        r["subject"], payload, prev)
        conn.execute("UPDATE custody SET payload=?, prev_hash=?, hash=? WHERE seq=?",
                     (canonical_json(payload).decode(), prev, h, r["seq"]))
        prev = h
    conn.close()
    kinds = _kinds(store)
    assert "chain_hash" not in kinds  # the chain itself is consistent again …
    assert {"checkpoint", "checkpoint_file"} <= kinds  # … but the signed tail is not


def test_forged_checkpoint_signature_is_flagged(open_test_store: Opener, tmp_path: Path) -> None:
    store = open_test_store()
    _ingest_some(store, tmp_path)
    path = store.root / CHECKPOINT_FILE
    data = json.loads(path.read_bytes())
    sig = bytearray(base64.b64decode(data["signature"]))
    sig[0] ^= 1
    data["signature"] = base64.b64encode(bytes(sig)).decode()
    path.write_text(json.dumps(data))
    problems = verify_store(store, "test").problems
    assert any(p.kind == "checkpoint_file" and "signature" in p.detail for p in problems)


def test_forged_signature_in_the_database_is_flagged(open_test_store: Opener,
                                                     tmp_path: Path) -> None:
    store = open_test_store()
    _ingest_some(store, tmp_path)
    conn = _raw(store)
    conn.execute("DROP TRIGGER checkpoints_no_update")
    conn.execute("UPDATE checkpoints SET signature=?", (base64.b64encode(b"\0" * 64).decode(),))
    conn.close()
    problems = verify_store(store, "test").problems
    assert any(p.kind == "checkpoint" and "signature" in p.detail for p in problems)


def test_a_store_with_checkpoints_refuses_a_missing_or_other_key(open_test_store: Opener,
                                                                 tmp_path: Path,
                                                                 store_dir: Path) -> None:
    # Silently making a new key would make every later checkpoint unverifiable (issue 14.7).
    store = open_test_store()
    _ingest_some(store, tmp_path)
    store.close()
    key = store_dir / "keys" / "custody.ed25519"
    key.chmod(0o600)
    original = key.read_bytes()
    key.unlink()
    with pytest.raises(ConfigError, match=r"no signing key at .*dockd key rotate"):
        open_test_store()
    assert not key.exists()  # refused, not made
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    key.write_bytes(other)
    with pytest.raises(ConfigError, match="is not the key of the store's checkpoints"):
        open_test_store()
    key.write_bytes(original)
    assert verify_store(open_test_store(), "test").ok


def test_deleted_checkpoint_file_is_flagged(open_test_store: Opener, tmp_path: Path) -> None:
    store = open_test_store()
    _ingest_some(store, tmp_path)
    (store.root / CHECKPOINT_FILE).unlink()
    assert "checkpoint_file" in _kinds(store)


def test_verify_result_is_a_custody_event(open_test_store: Opener, tmp_path: Path) -> None:
    store = open_test_store()
    _ingest_some(store, tmp_path)
    verify_store(store, "auditor")
    last = store.catalog.query_one("SELECT * FROM custody ORDER BY seq DESC LIMIT 1")
    assert (last["type"], last["actor"]) == ("verify.completed", "auditor")
    assert json.loads(last["payload"])["ok"] is True
    obj = next(p for p in (store.root / "objects").rglob("*") if p.is_file())
    obj.chmod(0o640)
    obj.write_bytes(b"tampered")
    report = verify_store(store, "auditor")
    last = store.catalog.query_one("SELECT * FROM custody ORDER BY seq DESC LIMIT 1")
    assert last["type"] == "verify.failed"
    assert json.loads(last["payload"])["problem_count"] == len(report.problems) == 1


def test_fingerprint_is_stable() -> None:
    assert fingerprint("00" * 32) == ":".join(
        hashlib.sha256(bytes(32)).hexdigest()[i:i + 4] for i in range(0, 32, 4))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.one_of(st.binary(max_size=400),
                      st.dictionaries(st.sampled_from(["dock", "seq", "hash", "time", "public_key",
                                                       "signature", "v"]),
                                      st.one_of(st.integers(), st.text(max_size=80), st.none(),
                                                st.booleans(), st.lists(st.integers(), max_size=3)))
                      .map(lambda d: json.dumps(d).encode())))
def test_random_checkpoint_file_is_a_problem_never_a_crash(open_test_store: Opener, tmp_path: Path,
                                                           junk: bytes) -> None:
    store_dir = tmp_path / "prop-store"
    if not (store_dir / "catalog.sqlite").exists():
        store = open_test_store(store_dir)
        _ingest_some(store, tmp_path)
        store.close()
    for aside in store_dir.glob(CHECKPOINT_FILE + ".corrupt-*"):
        aside.unlink()  # each example starts from a store with no earlier findings
    store = open_test_store(store_dir)
    (store_dir / CHECKPOINT_FILE).write_bytes(junk)
    report = verify_store(store, "test")
    store.close()
    assert any(p.kind in ("checkpoint_file", "log_truncated") and ".corrupt-" not in p.subject
               for p in report.problems), report.problems
    # and the damaged file was set aside, not lost, by the checkpoint verify wrote
    asides = list(store_dir.glob(CHECKPOINT_FILE + ".corrupt-*"))
    assert [a.read_bytes() for a in asides] in ([junk], [])


def test_damaged_checkpoint_file_is_set_aside_and_stays_flagged(open_test_store: Opener,
                                                               tmp_path: Path) -> None:
    store = open_test_store()
    _ingest_some(store, tmp_path)
    (store.root / CHECKPOINT_FILE).write_bytes(b"\xff not json")
    _ingest_some(store, tmp_path, n=2)  # writing the next checkpoint must not crash
    asides = list(store.root.glob(CHECKPOINT_FILE + ".corrupt-*"))
    assert [a.read_bytes() for a in asides] == [b"\xff not json"]
    assert read_checkpoint_file(store.root / CHECKPOINT_FILE) is not None
    problems = verify_store(store, "test").problems
    assert [p.subject for p in problems] == [asides[0].name]
    asides[0].unlink()  # the administrator examined it
    assert verify_store(store, "test").ok


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**60, 2**60)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(st.dictionaries(st.text(max_size=8), _JSON, max_size=5), min_size=1,
                         max_size=5),
       subject=st.text(max_size=10), actor=st.text(max_size=10))
def test_record_many_writes_exactly_what_record_would_hash_and_publish(
        open_test_store: Opener, payloads: list[dict[str, object]], subject: str,
        actor: str) -> None:
    """The batch path builds each record's canonical text around its payload's instead of
    encoding the whole record: what it stores must re-hash to its hash (as verify does it)
    and what it publishes must be the canonical JSON of the record."""
    store = open_test_store()
    before = store.catalog.query_one("SELECT COALESCE(MAX(seq), 0) FROM custody")[0]
    with store.catalog.transaction() as tx:
        store.custody.record_many(tx, [RawEvent("test.event", subject, p) for p in payloads],
                                  actor)
    rows = store.catalog.query("SELECT * FROM custody WHERE seq > ? ORDER BY seq", (before,))
    assert len(rows) == len(payloads)
    for row, payload in zip(rows, payloads, strict=True):
        record = record_from_row(row)
        assert record.payload == json.loads(canonical_json(payload))
        assert record.hash == record_hash(record.dock, record.seq, record.event_id, record.time,
                                          record.type, record.actor, record.subject,
                                          record.payload, record.prev_hash)
        published = store.catalog.query_one(
            "SELECT payload FROM outbox WHERE kind='custody' AND ref_seq=?", (record.seq,))
        assert published[0] == canonical_json(record.to_json_dict()).decode()
    assert verify_store(store, "t").ok


@settings(max_examples=300)
@given(random16=st.binary(min_size=16, max_size=16))
def test_event_ids_are_the_uuid4_text_of_their_random_bytes(random16: bytes) -> None:
    """A batch's event ids are made from one read of random bytes without a UUID object
    each: the same text uuid.UUID gives for a version-4 UUID of those bytes."""
    text = uuid4_text(random16)
    assert text == str(uuid.UUID(bytes=random16, version=4))
    assert uuid.UUID(text).version == 4
