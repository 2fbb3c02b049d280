"""Retention and holds (rules art. 12(3)): the 90-day floor, per-category retention, holds
on items, cases and recorders, the archive condition, and prune's deletions -- through
the real store, the real catalog and the real CLI."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.config import parse_config
from dockd.errors import ConfigError, UsageError
from dockd.records.cases import tag_items
from dockd.records.holds import HoldRequest, add_hold, held_items, list_holds, release_hold
from dockd.records.retention import (
    DELETE,
    HELD,
    NOT_ARCHIVED,
    TOO_YOUNG,
    ItemFacts,
    RetentionPolicy,
    decide,
    prune,
)
from dockd.store.verify import verify_store
from tests.conftest import run_dockd
from tests.records_support import T0, SettableClock, ingest, open_clocked_store, snapshot

POLICY = RetentionPolicy(untagged_days=90, case_days=365)
ARCHIVE = {"endpoint_url": "https://s3.example", "bucket": "evidence",
           "credentials_file": "/nonexistent/creds.toml"}


def _store(tmp_path: Path, clock: SettableClock, **sections: dict[str, object]):
    return open_clocked_store(tmp_path / "store", clock, **sections)


def _three(tmp_path: Path, clock: SettableClock, **sections: dict[str, object]):
    store = _store(tmp_path, clock, **sections)
    report = ingest(store, tmp_path / "src", {"DCIM/a.mp4": b"A" * 100, "DCIM/b.mp4": b"B" * 200,
                                              "DCIM/c.mp4": b"C" * 300})
    shas = {f.source_path.split("/")[-1][0]: f.sha256 for f in report.files}
    return store, shas


def _types(store) -> list[str]:
    return [r[0] for r in store.catalog.query("SELECT type FROM custody ORDER BY seq")]


# -- config ----------------------------------------------------------------------------

def test_retention_below_90_days_is_refused_citing_the_rule() -> None:
    with pytest.raises(ConfigError, match=r"records.retention_days: 30 days .*art\. 12\(3\)"):
        parse_config({"records": {"retention_days": 30}})
    with pytest.raises(ConfigError, match=r"records.case_retention_days: 89 days"):
        parse_config({"records": {"case_retention_days": 89}})


def test_records_section_defaults_and_values() -> None:
    cfg = parse_config({"records": {"retention_days": 120, "case_retention_days": 730,
                                    "undocked_alert_hours": 24}})
    s = cfg.records
    assert (s.retention_days, s.case_retention_days, s.undocked_alert_hours) == (120, 730, 24)
    assert parse_config({}).records.retention_days == 90
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config({"records": {"retention": 120}})
    assert (parse_config({"archive": ARCHIVE}).archive is not None)
    assert not (parse_config({}).archive is not None)


def test_cli_with_a_30_day_config_exits_78_and_changes_nothing(tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store, _ = _three(tmp_path, clock)
    store.close()
    cfg = tmp_path / "dockd.toml"
    cfg.write_text(f'[dock]\nstore_dir = "{tmp_path / "store"}"\n[records]\nretention_days = 30\n')
    before = snapshot(tmp_path / "store", tmp_path / "store" / "objects")
    done = run_dockd(["prune", "--config", cfg])
    assert done.returncode == 78
    assert "art. 12(3)" in done.stderr and "retention_days" in done.stderr
    assert snapshot(tmp_path / "store", tmp_path / "store" / "objects") == before


# -- the rule --------------------------------------------------------------------------

def test_prune_deletes_only_expired_unheld_items(tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store, sha = _three(tmp_path, clock)
    tag_items(store, "C-1", [sha["b"]], "clerk", "test")
    add_hold(store, HoldRequest("item", sha["c"], "complaint 2026-17", "chief"), "test")
    obj = {k: store.content.object_path(v) for k, v in sha.items()}
    links = [tmp_path / "store" / r[0] / r[1] for r in store.catalog.query(
        "SELECT ses.folder, s.session_path FROM sightings s JOIN sessions ses"
        " ON ses.id = s.session_id WHERE s.sha256 = ?", (sha["a"],))]
    assert links and all(p.exists() for p in links)

    clock.t = T0 + dt.timedelta(days=89, hours=23)
    assert prune(store, POLICY, False, "test").deleted == []

    clock.t = T0 + dt.timedelta(days=90)
    report = prune(store, POLICY, False, "test")
    assert [d.sha256 for d in report.deleted] == [sha["a"]]
    verdicts = {d.sha256: d.verdict for d in report.decisions}
    assert verdicts == {sha["a"]: DELETE, sha["b"]: TOO_YOUNG, sha["c"]: HELD}
    assert not obj["a"].exists() and not any(p.exists() for p in links)
    assert obj["b"].exists() and obj["c"].exists()
    deleted = store.catalog.query("SELECT payload FROM custody WHERE type = 'item.deleted'")
    assert [json.loads(r[0])["sha256"] for r in deleted] == [sha["a"]]
    assert json.loads(deleted[0][0])["category"] == "untagged"
    # verify skips the deleted item: nothing missing, no extra file, no broken link
    assert verify_store(store, "test").ok

    hold = list_holds(store.catalog)[0]
    release_hold(store, hold.id, "chief", "test")
    report = prune(store, POLICY, False, "test")
    assert [d.sha256 for d in report.deleted] == [sha["c"]]
    clock.t = T0 + dt.timedelta(days=365)
    assert [d.sha256 for d in prune(store, POLICY, False, "test").deleted] == [sha["b"]]
    assert verify_store(store, "test").ok
    store.close()


def test_dry_run_deletes_nothing(tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store, _sha = _three(tmp_path, clock)
    clock.t = T0 + dt.timedelta(days=400)
    before = snapshot(tmp_path / "store", tmp_path / "store" / "objects")
    report = prune(store, POLICY, False, "test", dry_run=True)
    assert len(report.deleted) == 3
    assert snapshot(tmp_path / "store", tmp_path / "store" / "objects") == before
    store.close()


def test_archive_required_keeps_unarchived_items(tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store, sha = _three(tmp_path, clock, archive=ARCHIVE)
    required = (store.config.archive is not None)
    assert required
    store.catalog.conn.execute(
        "INSERT INTO archive_objects (sha256, bucket, key, version_id, checksum_sha256,"
        " retain_until, archived_at) VALUES (?, 'evidence', 'k', 'v1', 'x', ?, ?)",
        (sha["b"], "2027-01-01T00:00:00Z", "2026-11-24T00:00:00Z"))
    clock.t = T0 + dt.timedelta(days=200)
    report = prune(store, POLICY, required, "test")
    assert [d.sha256 for d in report.deleted] == [sha["b"]]
    assert report.count(NOT_ARCHIVED) == 2
    store.close()


def test_recorder_hold_with_range_covers_items_docked_in_it(tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store, sha = _three(tmp_path, clock)
    inside = HoldRequest("recorder", "CAM001", "petition", "chief",
                         T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1))
    before = HoldRequest("recorder", "CAM001", "petition", "chief",
                         T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=3))
    add_hold(store, before, "test")
    assert held_items(store.catalog) == frozenset()
    add_hold(store, inside, "test")
    assert held_items(store.catalog) == frozenset(sha.values())
    clock.t = T0 + dt.timedelta(days=1000)
    assert prune(store, POLICY, False, "test").deleted == []
    store.close()


def test_holds_on_unknown_targets_are_refused_and_change_nothing(tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store, sha = _three(tmp_path, clock)
    count = len(_types(store))
    for request, message in (
        (HoldRequest("case", "NO-SUCH-CASE", "x", "chief"), "unknown case NO-SUCH-CASE"),
        (HoldRequest("recorder", "CAM999", "x", "chief"), "unknown recorder CAM999"),
        (HoldRequest("item", "ab" * 32, "x", "chief"), "no stored item"),
        (HoldRequest("item", sha["a"], "  ", "chief"), "--reason is required"),
        (HoldRequest("item", sha["a"], "x", ""), "--by is required"),
    ):
        with pytest.raises(UsageError, match=message):
            add_hold(store, request, "test")
    with pytest.raises(UsageError, match="no hold has id 42"):
        release_hold(store, 42, "chief", "test")
    assert len(_types(store)) == count
    hold = add_hold(store, HoldRequest("item", sha["a"][:12], "x", "chief"), "test")
    assert hold.target == sha["a"]
    release_hold(store, hold.id, "chief", "test")
    with pytest.raises(UsageError, match="already released"):
        release_hold(store, hold.id, "chief", "test")
    assert _types(store)[-2:] == ["hold.added", "hold.released"]
    store.close()


def test_cli_hold_on_unknown_case_exits_2_and_log_does_not_grow(tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store, sha = _three(tmp_path, clock)
    store.close()
    s = tmp_path / "store"
    before = snapshot(s)
    done = run_dockd(["hold", "add", "--case", "NO-SUCH", "--reason", "complaint", "--by",
                      "chief", "--store", s])
    assert done.returncode == 2 and "unknown case NO-SUCH" in done.stderr
    assert snapshot(s).custody == before.custody
    done = run_dockd(["hold", "add", "--item", sha["a"], "--reason", "complaint 17", "--by",
                      "chief", "--store", s, "--json"])
    assert done.returncode == 0, done.stderr
    hold = json.loads(done.stdout)
    listed = run_dockd(["hold", "list", "--store", s, "--json"])
    assert [h["id"] for h in json.loads(listed.stdout)] == [hold["id"]]
    done = run_dockd(["hold", "release", str(hold["id"]), "--by", "chief", "--store", s])
    assert done.returncode == 0, done.stderr
    assert json.loads(run_dockd(["hold", "list", "--store", s, "--json"]).stdout) == []
    out = run_dockd(["prune", "--store", s, "--json"])  # the system clock: all too young
    assert out.returncode == 0 and json.loads(out.stdout)["deleted"] == 0


def test_holds_table_cannot_be_rewritten(tmp_path: Path) -> None:
    import sqlite3

    clock = SettableClock(T0)
    store, sha = _three(tmp_path, clock)
    hold = add_hold(store, HoldRequest("item", sha["a"], "x", "chief"), "test")
    for sql in ("DELETE FROM holds", "UPDATE holds SET target = 'x'",
                "UPDATE holds SET reason = 'y'"):
        with pytest.raises(sqlite3.IntegrityError):
            store.catalog.conn.execute(sql)
    assert list_holds(store.catalog)[0] == hold
    store.close()


def test_prune_removes_leftovers_of_an_interrupted_deletion(tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store, sha = _three(tmp_path, clock)
    # as if a prune committed the deletion of "a" and died before unlinking
    store.catalog.conn.execute("UPDATE items SET deleted_at = ? WHERE sha256 = ?",
                               ("2027-01-01T00:00:00.000000Z", sha["a"]))
    assert store.content.object_path(sha["a"]).exists()
    report = prune(store, POLICY, False, "test")
    assert report.leftovers_removed == 2  # the object and its session-folder link
    assert not store.content.object_path(sha["a"]).exists()
    store.close()


# -- properties ------------------------------------------------------------------------

_moments = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2200, 1, 1),
                        timezones=st.just(dt.UTC))


@given(ingested=_moments, now=_moments, cases=st.lists(st.text(min_size=1), max_size=2),
       holds=st.lists(st.integers(1, 9), max_size=2), archived=st.booleans(),
       required=st.booleans(), untagged=st.integers(90, 4000), case=st.integers(90, 4000))
def test_decide_never_deletes_held_young_or_unarchived(ingested, now, cases, holds, archived,
                                                        required, untagged, case) -> None:
    facts = ItemFacts("a" * 64, 1, ingested, tuple(cases), tuple(holds), archived)
    d = decide(facts, RetentionPolicy(untagged, case), now, required)
    days = case if cases else untagged
    if d.delete:
        assert not holds
        assert now >= ingested + dt.timedelta(days=days) >= ingested + dt.timedelta(days=90)
        assert archived or not required
    else:
        assert holds or now < ingested + dt.timedelta(days=days) or (required and not archived)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_prune_on_a_real_store_under_random_clocks_and_holds(tmp_path_factory, data) -> None:
    base = tmp_path_factory.mktemp("prop")
    clock = SettableClock(T0)
    store, sha = _three(base, clock, archive=ARCHIVE)
    names = sorted(sha)
    held = data.draw(st.sets(st.sampled_from(names)))
    tagged = data.draw(st.sets(st.sampled_from(names)))
    archived = data.draw(st.sets(st.sampled_from(names)))
    required = data.draw(st.booleans())
    if tagged:
        tag_items(store, "CASE-P", [sha[n] for n in sorted(tagged)], "clerk", "test")
    for n in sorted(held):
        scope = data.draw(st.sampled_from(["item", "recorder"]))
        target = sha[n] if scope == "item" else "CAM001"
        add_hold(store, HoldRequest(scope, target, "p", "chief"), "test")
    for n in sorted(archived):
        store.catalog.conn.execute(
            "INSERT INTO archive_objects (sha256, bucket, key, version_id, checksum_sha256,"
            " retain_until, archived_at) VALUES (?, 'b', ?, 'v', 'x', 'r', 'a')", (sha[n], n))
    clocks = data.draw(st.lists(st.integers(-10_000, 20_000), min_size=1, max_size=3))
    recorder_hold = bool(store.catalog.query("SELECT 1 FROM holds WHERE scope='recorder'"))
    for offset in clocks:
        clock.t = T0 + dt.timedelta(days=offset)
        for d in prune(store, POLICY, required, "test").deleted:
            name = next(n for n in names if sha[n] == d.sha256)
            assert name not in held and not recorder_hold
            assert clock.t >= T0 + dt.timedelta(days=365 if name in tagged else 90)
            assert name in archived or not required
            assert not store.content.object_path(d.sha256).exists()
    for n in names:
        deleted = store.catalog.query_one("SELECT deleted_at FROM items WHERE sha256=?",
                                          (sha[n],))[0] is not None
        assert deleted != store.content.object_path(sha[n]).exists()
    assert verify_store(store, "test").ok
    store.close()


def test_redocking_a_pruned_recording_restores_the_item_and_verify_stays_clean(
        tmp_path: Path) -> None:
    clock = SettableClock(T0)
    store, sha = _three(tmp_path, clock)
    clock.t = T0 + dt.timedelta(days=91)
    assert sha["a"] in [d.sha256 for d in prune(store, POLICY, False, "test").deleted]
    assert not store.content.object_path(sha["a"]).exists()

    # The recorder still had the file (it was never cleared): it is docked again.
    again = ingest(store, tmp_path / "src2", {"DCIM/a.mp4": b"A" * 100})
    assert [(f.outcome, f.sha256) for f in again.files] == [("stored", sha["a"])]
    assert store.content.object_path(sha["a"]).exists()
    row = store.catalog.query_one("SELECT deleted_at FROM items WHERE sha256=?", (sha["a"],))
    assert row is not None and row[0] is None
    ingested = store.catalog.query("SELECT payload FROM custody WHERE type='file.ingested'")
    assert json.loads(ingested[-1][0])["restored_after_prune"] is True
    assert verify_store(store, "test").ok
    store.close()


def test_prune_waits_for_a_batch_being_published(tmp_path: Path) -> None:
    """An ingest links and commits a batch under the store's publication lock; prune takes
    the same lock, so it never deletes an object between another batch's link and commit."""
    clock = SettableClock(T0)
    store, sha = _three(tmp_path, clock)
    clock.t = T0 + dt.timedelta(days=91)
    reports = []
    with store.content.publication_lock():  # as a committing ingest holds it
        pruner = threading.Thread(target=lambda: reports.append(prune(store, POLICY, False, "t")))
        pruner.start()
        pruner.join(0.5)
        assert pruner.is_alive()  # waiting for the lock
        assert all(store.content.object_path(s).exists() for s in sha.values())
    pruner.join(30)
    assert not pruner.is_alive()
    assert sorted(d.sha256 for d in reports[0].deleted) == sorted(sha.values())
    assert not any(store.content.object_path(s).exists() for s in sha.values())
    assert verify_store(store, "test").ok
    store.close()
