"""Custody log segments in the WORM archive (real SeaweedFS with Object Lock), the ledger
filling its gaps from them (real PostgreSQL), and ``dockd verify --against-archive``
catching a dock that was rolled back."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from dockd.clock import SystemClock
from dockd.config import TableReader, load_config, parse_config
from dockd.config.ledger import parse_ledger
from dockd.ledger.archive_fill import ArchiveFiller
from dockd.ledger.gaps import GapKeeper
from dockd.ledger.judge import judge
from dockd.records.archive.custody_segments import parse_segment, segment_key
from dockd.records.archive.objectstore import Lock
from dockd.records.archive.sync import open_archive, sync_archive
from dockd.store.canonical import canonical_json
from dockd.store.evidence import EvidenceStore, open_store
from tests.conftest import run_dockd
from tests.custody_support import NoteEvent
from tests.ledger_support import PREFIX, open_db, rehashed
from tests.postgres_server import PostgresServer, ledger_dsn, postgres  # noqa: F401
from tests.seaweedfs_server import ACCESS_KEY, SECRET_KEY, SeaweedFS, seaweedfs_fixture  # noqa: F401

DOCK = "dock-arc"


def _config(tmp: Path, server: SeaweedFS, bucket: str, store: Path) -> Path:
    creds = tmp / "creds.toml"
    creds.write_text(f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{SECRET_KEY}"\n')
    creds.chmod(0o600)
    path = tmp / f"{store.name}.toml"
    path.write_text(textwrap.dedent(f"""\
        [dock]
        id = "{DOCK}"
        site = "s1"
        store_dir = "{store}"
        [ingest]
        checkpoint_every = 5
        [archive]
        endpoint_url = "{server.endpoint_url}"
        bucket = "{bucket}"
        credentials_file = "{creds}"
        connect_timeout_s = 2
        read_timeout_s = 20
        """))
    return path


@pytest.fixture
def archived(tmp_path: Path, seaweedfs: SeaweedFS) -> dict[str, Any]:
    bucket = seaweedfs.new_bucket()
    config_path = _config(tmp_path, seaweedfs, bucket, tmp_path / "store")
    config = load_config(config_path)
    store: EvidenceStore = open_store(config, SystemClock())
    for i in range(3):
        store.custody.append(NoteEvent(f"SN{i}", {"i": i}), "tester")
    store.close()
    # The copy a rolled-back dock would be restored from: three records, same key.
    shutil.copytree(tmp_path / "store", tmp_path / "old-store")
    store = open_store(config, SystemClock())
    for i in range(3, 12):
        store.custody.append(NoteEvent(f"SN{i}", {"i": i}), "tester")
    section, archive = open_archive(config)
    report = sync_archive(store, archive, section)
    outbox = [json.loads(r["payload"]) for r in store.catalog.query(
        "SELECT payload FROM outbox WHERE kind IN ('custody', 'checkpoint') ORDER BY id")]
    key = store.custody.signer.public_key_hex
    store.close()
    return {"config": config, "config_path": config_path, "archive": archive, "report": report,
            "outbox": outbox, "key": key, "tmp": tmp_path, "server": seaweedfs, "bucket": bucket}


def test_sync_archives_one_locked_segment_per_signed_checkpoint(archived: dict[str, Any]) -> None:
    assert archived["report"].custody_segments == (segment_key(DOCK, 1, 5),
                                                   segment_key(DOCK, 6, 10))
    archive = archived["archive"]
    segment = parse_segment(archive.get_bytes(segment_key(DOCK, 6, 10)), archived["key"], DOCK)
    assert [r["seq"] for r in segment.records] == [6, 7, 8, 9, 10]
    head = archive.head(segment_key(DOCK, 1, 5))
    assert head is not None and head.lock_mode == "COMPLIANCE"
    with pytest.raises(ValueError, match="not the dock's enrolled key"):
        parse_segment(archive.get_bytes(segment_key(DOCK, 1, 5)), "ab" * 32, DOCK)
    # A second run archives nothing new (segment 11.. waits for its checkpoint).
    store = open_store(archived["config"], SystemClock())
    try:
        section, _ = open_archive(archived["config"])
        assert sync_archive(store, archive, section).custody_segments == ()
        events = [r[0] for r in store.catalog.query("SELECT type FROM custody ORDER BY seq")]
    finally:
        store.close()
    assert events.count("custody.archived") == 1


def _ledger(archived: dict[str, Any], dsn: str) -> tuple[Any, Any]:
    db = open_db(dsn)
    db.add_dock(DOCK, archived["key"], "test", site="s1")
    t = TableReader({"database": dsn, "mqtt": {"broker": "mqtt://127.0.0.1:1"}, "archive": {
        "endpoint_url": archived["server"].endpoint_url, "bucket": archived["bucket"],
        "credentials_file": str(archived["tmp"] / "creds.toml")}}, "ledger")
    section = parse_ledger(t)
    assert section is not None
    return db, ArchiveFiller(section, archived["archive"])


def _feed(db: Any, messages: list[dict[str, Any]]) -> None:
    items = [judge(PREFIX, f"{PREFIX}/s1/{DOCK}/{'custody' if 'prev_hash' in m else 'checkpoint'}",
                   canonical_json(m), 1 << 20) for m in messages]
    db.apply_batch(items, SystemClock().now())


def _open(db: Any) -> list[tuple[str, str]]:
    rows = db.conn.execute("SELECT kind, key FROM alerts WHERE closed_at IS NULL"
                           " ORDER BY id").fetchall()
    db.conn.commit()
    return [(r[0], r[1]) for r in rows]


def test_the_ledger_fills_a_gap_from_the_archive_and_says_so(archived: dict[str, Any],
                                                             ledger_dsn: str) -> None:  # noqa: F811
    db, filler = _ledger(archived, ledger_dsn)
    records = [m for m in archived["outbox"] if "prev_hash" in m]
    checkpoints = [m for m in archived["outbox"] if "signature" in m]
    # MQTT lost 4..10: the ledger only got 1-3 and 11-12, and the checkpoint at 10.
    _feed(db, [r for r in records if r["seq"] <= 3 or r["seq"] >= 11] + checkpoints[1:])
    # A forged segment overlapping the hole is in the bucket too; it must be refused.
    forged = json.loads(archived["archive"].get_bytes(segment_key(DOCK, 1, 5)))
    forged["records"][3] = json.loads(rehashed(forged["records"][3], subject="SN-FORGED"))
    archived["archive"].put(f"{DOCK}/custody/000000000004-000000000005.json",
                            __import__("io").BytesIO(canonical_json(forged)),
                            len(canonical_json(forged)),
                            __import__("hashlib").sha256(canonical_json(forged)).hexdigest(),
                            Lock(SystemClock().now().replace(year=2099), False),
                            "application/json")
    keeper = GapKeeper(db, grace_s=0, filler=filler.fill, retry_s=0)
    assert keeper.run(SystemClock().now()) == {}
    rows = db.conn.execute("SELECT source, count(*) FROM custody_chain GROUP BY source"
                           " ORDER BY source").fetchall()
    assert rows == [("archive", 7), ("mqtt", 6)]  # 1-3, 11, 12, 13 (custody.archived)
    resolution = db.conn.execute("SELECT resolution FROM alerts WHERE kind = 'gap'").fetchone()
    assert resolution == ("filled (7 from archive)",)
    assert _open(db) == [("rejected", f"archive:{DOCK}/custody/000000000004-000000000005.json")]
    assert db.conn.execute("SELECT subject FROM custody WHERE seq = 4").fetchone() == ("SN3",)
    db.conn.commit()
    db.close()


def test_a_gap_neither_source_can_fill_stays_open_with_its_range(archived: dict[str, Any],
                                                                 ledger_dsn: str) -> None:  # noqa: F811
    db, filler = _ledger(archived, ledger_dsn)
    records = [m for m in archived["outbox"] if "prev_hash" in m]
    store = open_store(archived["config"], SystemClock())
    for i in range(12, 15):  # up to seq 15 (a checkpoint) — never synced to the archive
        store.custody.append(NoteEvent(f"SN{i}", {"i": i}), "tester")
    late = [json.loads(r["payload"]) for r in store.catalog.query(
        "SELECT payload FROM outbox WHERE kind = 'checkpoint' ORDER BY id DESC LIMIT 1")]
    store.close()
    _feed(db, [r for r in records if r["seq"] <= 2] + late)
    GapKeeper(db, grace_s=0, filler=filler.fill, retry_s=0).run(SystemClock().now())
    # 3..10 came from the archive; 11..15 are in no segment yet.
    assert _open(db) == [("gap", "11-15")]
    db.close()


def test_verify_against_the_archive_catches_a_rolled_back_dock(archived: dict[str, Any]) -> None:
    done = run_dockd(["verify", "--against-archive", "--config", archived["config_path"]])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 records compared (it holds up to seq 10): agrees" in done.stdout
    old = _config(archived["tmp"], archived["server"], archived["bucket"],
                  archived["tmp"] / "old-store")
    done = run_dockd(["verify", "--against-archive", "--config", old])
    assert done.returncode == 1
    # Its own verify.completed record took seq 4, which the archive holds otherwise.
    assert "rolled_back: seq 10" in done.stdout and "this log ends at 4" in done.stdout
    assert "differs: seq 4: differs from the archived record" in done.stdout
    assert "dockd: error: verification found 2 problem(s)" in done.stderr


def test_a_dock_without_archive_cannot_verify_against_it(tmp_path: Path) -> None:
    config = tmp_path / "d.toml"
    config.write_text(f'[dock]\nid = "d1"\nstore_dir = "{tmp_path / "s"}"\n')
    store = open_store(parse_config({"dock": {"id": "d1", "store_dir": str(tmp_path / "s")}}),
                       SystemClock())
    store.close()
    done = run_dockd(["verify", "--against-archive", "--config", config])
    assert done.returncode == 78 and "no [archive] section" in done.stderr
