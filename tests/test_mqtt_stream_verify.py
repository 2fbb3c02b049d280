"""The custody stream checker behind ``dockd watch --verify``, fed with records made by the
real evidence core (real SQLite, real Ed25519 key) and with hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.clock import SystemClock
from dockd.config import parse_config
from dockd.report.mqtt.stream_verify import DUPLICATE, FORGERY, GAP, MALFORMED, UNVERIFIED, StreamVerifier
from dockd.store.canonical import canonical_json
from dockd.store.custody import record_hash
from dockd.store.evidence import open_store
from tests.custody_support import NoteEvent

BASE = "dockd/site-01/dock-01"


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Twelve custody records with checkpoints every 5, as the outbox holds them."""
    root: Path = tmp_path_factory.mktemp("store")
    config = parse_config({"dock": {"store_dir": str(root)}, "ingest": {"checkpoint_every": 5}})
    store = open_store(config, SystemClock())
    for i in range(12):
        store.custody.append(NoteEvent(f"subject-{i}", {"i": i, "名": "证据"}), "tester")
    rows = store.catalog.query("SELECT kind, payload FROM outbox ORDER BY id")
    key = store.custody.signer.public_key_hex
    store.close()
    records = [r["payload"].encode() for r in rows if r["kind"] == "custody"]
    checkpoints = [r["payload"].encode() for r in rows if r["kind"] == "checkpoint"]
    status = canonical_json({"v": 1, "dock": "dock-01", "state": "online", "public_key": key})
    return {"records": records, "checkpoints": checkpoints, "key": key, "status": status}


def feed_all(v: StreamVerifier, genuine: dict[str, object], order: list[int] | None = None) -> None:
    records: list[bytes] = genuine["records"]  # type: ignore[assignment]
    v.feed(f"{BASE}/status", genuine["status"])  # type: ignore[arg-type]
    for i in order if order is not None else range(len(records)):
        v.feed(f"{BASE}/custody", records[i])


def kinds(v: StreamVerifier) -> list[str]:
    return [f.kind for f in v.findings]


def test_a_complete_genuine_stream_has_no_findings(genuine: dict[str, object]) -> None:
    v = StreamVerifier("dockd", from_seq=1)
    feed_all(v, genuine)
    for cp in genuine["checkpoints"]:  # type: ignore[attr-defined]
        v.feed(f"{BASE}/checkpoint", cp)
    assert v.finish(until_seq=12) == []
    summary = v.summary()
    assert summary["ok"] and summary["docks"]["dock-01"]["records"] == 12
    assert summary["docks"]["dock-01"]["checkpoints_verified"] == 2
    assert v.complete(12)


def test_identical_repeats_are_duplicates_not_failures(genuine: dict[str, object]) -> None:
    v = StreamVerifier("dockd", from_seq=1)
    feed_all(v, genuine, [0, 1, 2, 3, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11])
    v.finish(until_seq=12)
    assert kinds(v) == [DUPLICATE, DUPLICATE, DUPLICATE]
    assert v.summary()["ok"] and v.summary()["duplicates"] == 3


def test_a_missing_seq_is_a_gap(genuine: dict[str, object]) -> None:
    v = StreamVerifier("dockd", from_seq=1)
    feed_all(v, genuine, [0, 1, 2, 5, 6, 7, 8, 9, 10])
    assert not v.complete(11)
    found = v.finish(until_seq=12)
    assert [(f.kind, f.detail) for f in found] == [(GAP, "seq 4-5 missing"), (GAP, "seq 12 missing")]
    assert not v.summary()["ok"]


def test_a_gap_before_the_first_seen_counts_only_with_from_seq(genuine: dict[str, object]) -> None:
    v = StreamVerifier("dockd")
    feed_all(v, genuine, [3, 4, 5])
    assert v.finish() == []
    strict = StreamVerifier("dockd", from_seq=1)
    feed_all(strict, genuine, [3, 4, 5])
    assert [f.detail for f in strict.finish()] == ["seq 1-3 missing"]


def test_out_of_order_arrival_still_checks_the_links(genuine: dict[str, object]) -> None:
    v = StreamVerifier("dockd", from_seq=1)
    feed_all(v, genuine, [2, 0, 1, 4, 3, 5, 6, 7, 8, 9, 10, 11])
    assert v.finish(until_seq=12) == []


def test_an_edited_payload_is_a_forgery(genuine: dict[str, object]) -> None:
    record = json.loads(genuine["records"][4])  # type: ignore[index]
    record["payload"]["i"] = 999
    v = StreamVerifier("dockd", from_seq=1)
    v.feed(f"{BASE}/custody", canonical_json(record))
    assert kinds(v) == [FORGERY]
    assert "hash does not match" in v.findings[0].detail


def test_a_rehashed_record_with_other_content_is_a_forgery(genuine: dict[str, object]) -> None:
    # The forger recomputes the hash: the record is self-consistent but is not the dock's.
    record = json.loads(genuine["records"][4])  # type: ignore[index]
    record["subject"] = "someone-else"
    record["hash"] = record_hash(record["dock"], record["seq"], record["event_id"], record["time"],
                                 record["type"], record["actor"], record["subject"],
                                 record["payload"], record["prev_hash"])
    forged = canonical_json(record)
    v = StreamVerifier("dockd", from_seq=1)
    feed_all(v, genuine)
    v.feed(f"{BASE}/custody", forged)
    assert kinds(v) == [FORGERY]
    assert "two different records claim seq 5" in v.findings[0].detail
    # ... and first-come forged, then the real one: still a forgery, and seq 6 does not chain.
    w = StreamVerifier("dockd", from_seq=1)
    w.feed(f"{BASE}/custody", forged)
    feed_all(w, genuine, [5])
    assert FORGERY in kinds(w)


def test_seq_one_must_start_from_genesis(genuine: dict[str, object]) -> None:
    record = json.loads(genuine["records"][0])  # type: ignore[index]
    record["prev_hash"] = "1" * 64
    record["hash"] = record_hash(record["dock"], 1, record["event_id"], record["time"],
                                 record["type"], record["actor"], record["subject"],
                                 record["payload"], record["prev_hash"])
    v = StreamVerifier("dockd")
    v.feed(f"{BASE}/custody", canonical_json(record))
    assert kinds(v) == [FORGERY]


def test_a_record_on_another_docks_topic_is_a_forgery(genuine: dict[str, object]) -> None:
    v = StreamVerifier("dockd")
    v.feed("dockd/site-01/dock-02/custody", genuine["records"][0])  # type: ignore[index]
    assert kinds(v) == [FORGERY]


def test_checkpoint_signature_and_key_are_checked(genuine: dict[str, object]) -> None:
    cp = json.loads(genuine["checkpoints"][0])  # type: ignore[index]
    bad_sig = dict(cp, signature=cp["signature"][:10] + ("A" if cp["signature"][10] != "A" else "B")
                   + cp["signature"][11:])
    v = StreamVerifier("dockd")
    v.feed(f"{BASE}/status", genuine["status"])  # type: ignore[arg-type]
    v.feed(f"{BASE}/checkpoint", canonical_json(bad_sig))
    assert kinds(v) == [FORGERY]
    other_key = dict(cp, public_key="ab" * 32)
    v.feed(f"{BASE}/checkpoint", canonical_json(other_key))
    assert kinds(v) == [FORGERY, FORGERY]
    assert "not the dock's published key" in v.findings[1].detail


def test_a_checkpoint_disagreeing_with_the_records_is_a_forgery(genuine: dict[str, object]) -> None:
    # A validly signed checkpoint of seq 5 — but the stream's seq 5 was replaced (re-hashed).
    record = json.loads(genuine["records"][4])  # type: ignore[index]
    record["actor"] = "forger"
    record["hash"] = record_hash(record["dock"], 5, record["event_id"], record["time"],
                                 record["type"], record["actor"], record["subject"],
                                 record["payload"], record["prev_hash"])
    v = StreamVerifier("dockd")
    v.feed(f"{BASE}/status", genuine["status"])  # type: ignore[arg-type]
    v.feed(f"{BASE}/custody", canonical_json(record))
    v.feed(f"{BASE}/checkpoint", genuine["checkpoints"][0])  # type: ignore[index]
    assert kinds(v) == [FORGERY]
    assert "disagrees" in v.findings[0].detail


def test_checkpoints_wait_for_the_key_and_fail_without_one(genuine: dict[str, object]) -> None:
    v = StreamVerifier("dockd")
    v.feed(f"{BASE}/checkpoint", genuine["checkpoints"][0])  # type: ignore[index]
    assert v.findings == []
    v.feed(f"{BASE}/status", genuine["status"])  # type: ignore[arg-type]
    assert v.findings == [] and v.summary()["docks"]["dock-01"]["checkpoints_verified"] == 1
    lonely = StreamVerifier("dockd")
    lonely.feed(f"{BASE}/checkpoint", genuine["checkpoints"][0])  # type: ignore[index]
    assert [f.kind for f in lonely.finish()] == [UNVERIFIED]


def test_a_pinned_key_overrides_the_status_topic(genuine: dict[str, object]) -> None:
    v = StreamVerifier("dockd", public_key="cd" * 32)
    v.feed(f"{BASE}/status", genuine["status"])  # type: ignore[arg-type]
    v.feed(f"{BASE}/checkpoint", genuine["checkpoints"][0])  # type: ignore[index]
    assert kinds(v) == [FORGERY, FORGERY]


def test_nothing_received_with_until_seq_is_a_gap() -> None:
    v = StreamVerifier("dockd")
    assert [f.kind for f in v.finish(until_seq=3, dock="dock-01")] == [GAP]
    assert not v.complete(3)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300))
def test_random_bytes_never_crash_and_are_malformed(payload: bytes) -> None:
    v = StreamVerifier("dockd")
    for suffix in ("custody", "checkpoint", "status", "alert", "bay/1/state", "nonsense"):
        v.feed(f"{BASE}/{suffix}", payload)
    assert all(f.kind in (MALFORMED, FORGERY) for f in v.findings)
    v.finish(until_seq=1)


@settings(max_examples=300)
@given(value=JSON_VALUES)
def test_random_json_never_crashes(value: object) -> None:
    v = StreamVerifier("dockd")
    data = json.dumps(value).encode()
    v.feed(f"{BASE}/custody", data)
    v.feed(f"{BASE}/checkpoint", data)
    v.feed(f"{BASE}/status", data)
    assert v.summary()["docks"].get("dock-01", {"records": 0})["records"] == 0


FIELDS = ["v", "dock", "seq", "event_id", "time", "type", "actor", "subject", "payload",
          "prev_hash", "hash"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=JSON_VALUES, index=st.integers(0, 11))
def test_any_field_changed_is_flagged_and_never_stored(genuine: dict[str, object], field: str,
                                                       value: object, index: int) -> None:
    record = json.loads(genuine["records"][index])  # type: ignore[index]
    if record[field] == value:
        return
    record[field] = value
    v = StreamVerifier("dockd", from_seq=1)
    feed_all(v, genuine)
    v.feed(f"{BASE}/custody", json.dumps(record).encode())
    assert [f.kind for f in v.findings] in ([FORGERY], [MALFORMED])
    assert v.finish(until_seq=12) == []  # the genuine chain is intact and complete


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.lists(st.integers(0, 11), max_size=40))
def test_any_delivery_order_of_genuine_records_finds_only_gaps_and_duplicates(
        genuine: dict[str, object], order: list[int]) -> None:
    v = StreamVerifier("dockd", from_seq=1)
    feed_all(v, genuine, order)
    found = v.finish(until_seq=12)
    assert {f.kind for f in v.findings} <= {GAP, DUPLICATE}
    missing = sorted(set(range(1, 13)) - {i + 1 for i in order})
    assert (found == []) == (missing == [])
    assert v.summary()["duplicates"] == len(order) - len(set(order))
