"""The archive's parts that need no bucket: config, credentials, retention, checksums,
manifests, the catalog tables and ``is_archived`` / status."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sqlite3
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockd.clock import parse_utc_iso
from dockd.config import parse_config
from dockd.config.archive import ArchiveSection
from dockd.errors import ConfigError
from dockd.records.archive.credentials import load_credentials, parse_credentials
from dockd.records.archive.manifest import ArchivedCopy, item_manifest
from dockd.records.archive.objectstore import composite_checksum, sha256_b64
from dockd.records.archive.retention import MIN_LOCK, recorded_at, retain_until
from dockd.records.archive.status import archive_status
from dockd.store.evidence import EvidenceStore
from dockd.store.ingest import Ingestor
from dockd.store.queries import is_archived, open_catalog_read_only
from tests.conftest import run_dockd, write_tree

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
BASE = {"endpoint_url": "https://s3.example:9000", "bucket": "dockd-evidence",
        "credentials_file": "/etc/dockd/archive.toml"}


def _section(**values: Any) -> ArchiveSection | None:
    section = parse_config({"archive": {**BASE, **values}}).archive
    assert section is None or isinstance(section, ArchiveSection)
    return section


# -- [archive] -----------------------------------------------------------------------------


def test_absent_section_means_no_archive() -> None:
    assert parse_config({}).archive is None


def test_section_defaults() -> None:
    section = _section()
    assert section is not None
    assert section.retention_days == 90 and section.part_bytes == 16 << 20
    assert section.prefix("dock-7") == "dock-7"
    assert _section(key_prefix="bureau/dock-7").prefix("x") == "bureau/dock-7"  # type: ignore[union-attr]


@pytest.mark.parametrize(("values", "message"), [
    ({"retention_days": 89}, "archive.retention_days: 89 is below the minimum 90"),
    ({"bucket": "Bad_Bucket"}, "archive.bucket: 'Bad_Bucket' is not valid"),
    ({"endpoint_url": "ftp://x"}, "archive.endpoint_url"),
    ({"part_bytes": 1024}, "archive.part_bytes: 1024 is below the minimum"),
    ({"part_bytes": 8 << 20, "multipart_threshold_bytes": 6 << 20},
     "archive.multipart_threshold_bytes"),
    ({"key_prefix": "../up"}, "archive.key_prefix"),
    ({"access_key_id": "AKIA"}, "archive.access_key_id: unknown key"),
    ({"addressing_style": "dns"}, "archive.addressing_style"),
])
def test_bad_section_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        _section(**values)


@pytest.mark.parametrize("missing", ["endpoint_url", "bucket", "credentials_file"])
def test_required_keys(missing: str) -> None:
    values = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigError, match=f"archive.{missing}: missing"):
        parse_config({"archive": values})


_toml_scalars = st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.floats(),
                          st.none(), st.lists(st.integers(), max_size=3))


@given(st.dictionaries(st.sampled_from([*BASE, "retention_days", "part_bytes", "region",
                                        "key_prefix", "multipart_threshold_bytes", "ca_bundle",
                                        "read_timeout_s", "addressing_style", "junk"]),
                       _toml_scalars, max_size=8))
@settings(max_examples=300, deadline=None)
def test_any_section_parses_or_is_a_config_error(values: dict[str, Any]) -> None:
    try:
        section = parse_config({"archive": {k: v for k, v in values.items() if v is not None}})
    except ConfigError:
        return
    parsed = section.archive
    if parsed is not None:
        assert parsed.retention_days >= 90
        assert parsed.multipart_threshold_bytes >= parsed.part_bytes >= 5 << 20


# -- credentials ---------------------------------------------------------------------------


def test_credentials_file_is_read_and_secret_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "creds.toml"
    path.write_text('access_key_id = "AK1"\nsecret_access_key = "s3cr3t/+="\n')
    path.chmod(0o600)
    creds = load_credentials(path)
    assert (creds.access_key_id, creds.secret_access_key) == ("AK1", "s3cr3t/+=")
    assert "s3cr3t" not in repr(creds)


def test_world_readable_credentials_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "creds.toml"
    path.write_text('access_key_id = "AK1"\nsecret_access_key = "s"\n')
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"readable by every user.*chmod 600"):
        load_credentials(path)


def test_missing_credentials_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_credentials(tmp_path / "nope.toml")


@pytest.mark.parametrize("text", [
    'access_key_id = "AK1"\n',
    'access_key_id = "AK1"\nsecret_access_key = ""\n',
    'access_key_id = "AK 1"\nsecret_access_key = "x"\n',
    'access_key_id = "AK1"\nsecret_access_key = "x"\nregion = "y"\n',
    'secret_access_key = "hunter2" broken',
])
def test_bad_credentials_content(text: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_credentials(text.encode(), "creds.toml")
    assert "hunter2" not in str(exc.value)


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_random_credentials_bytes_never_crash(raw: bytes) -> None:
    try:
        creds = parse_credentials(raw, "creds")
    except ConfigError:
        return
    assert creds.access_key_id and creds.secret_access_key


@given(st.text(alphabet=st.characters(min_codepoint=0x30, max_codepoint=0x7a), min_size=8,
               max_size=40),
       st.sampled_from(["", "broken", "\nextra = 1", "\n[table]", " = 3"]))
def test_credential_errors_never_quote_the_secret(secret: str, garbage: str) -> None:
    text = f'access_key_id = "A B"\nsecret_access_key = "{secret}"{garbage}\n'
    with pytest.raises(ConfigError) as exc:
        parse_credentials(text.encode(), "creds.toml")
    assert secret not in str(exc.value)


# -- retention -------------------------------------------------------------------------------


def test_retention_from_recording_start() -> None:
    until = retain_until("2026-02-01T08:00:00.250000Z", 90, NOW)
    assert until == dt.datetime(2026, 5, 2, 8, 0, 1, tzinfo=dt.UTC)  # rounded up


def test_retention_already_run_out_still_locks_a_day() -> None:
    assert retain_until("2020-01-01T00:00:00Z", 90, NOW) == NOW + MIN_LOCK


def test_recorded_at_falls_back_to_ingest() -> None:
    assert recorded_at(None, "2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
    assert recorded_at("garbage", "2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
    assert recorded_at("2025-12-31T23:00:00Z", "2026-01-01T00:00:00Z") == "2025-12-31T23:00:00Z"


@given(st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 1, 1),
                    timezones=st.just(dt.UTC)),
       st.integers(90, 36500))
def test_retention_is_never_short(recorded: dt.datetime, days: int) -> None:
    until = retain_until(recorded.isoformat(), days, NOW)
    assert until >= recorded + dt.timedelta(days=days)
    assert until >= NOW + MIN_LOCK
    assert until.microsecond == 0
    assert until - max(recorded + dt.timedelta(days=days), NOW + MIN_LOCK) < dt.timedelta(seconds=1)


@given(st.text(max_size=40))
def test_recorded_at_never_crashes(text: str) -> None:
    chosen = recorded_at(text, "2026-01-01T00:00:00Z")
    parse_utc_iso(chosen)


# -- checksums -------------------------------------------------------------------------------


@given(st.binary(max_size=4096))
def test_sha256_b64_is_base64_of_the_raw_digest(data: bytes) -> None:
    digest = hashlib.sha256(data)
    assert base64.b64decode(sha256_b64(digest.hexdigest())) == digest.digest()


def test_sha256_b64_refuses_other_lengths() -> None:
    with pytest.raises(ValueError):
        sha256_b64("ab" * 20)


def test_composite_checksum_matches_s3s_rule() -> None:
    parts = [b"a" * 10, b"b" * 3]
    digests = [hashlib.sha256(p).digest() for p in parts]
    inner = hashlib.sha256(digests[0] + digests[1]).digest()
    assert composite_checksum(digests) == base64.b64encode(inner).decode() + "-2"


# -- manifest, tables, status --------------------------------------------------------------------


@pytest.fixture
def ingested(open_test_store: Callable[..., EvidenceStore], tmp_path: Path) -> EvidenceStore:
    store = open_test_store()
    source = write_tree(tmp_path / "vol", {"DCIM/A.MP4": b"a" * 100,
                                           b"DCIM/\xff\xfeodd.MP4": b"b" * 50})
    assert Ingestor(store).ingest(source, "REC9").result == "completed"
    return store


def test_manifest_is_canonical_and_complete(ingested: EvidenceStore) -> None:
    sha = hashlib.sha256(b"b" * 50).hexdigest()
    copy = ArchivedCopy("bkt", "k", "v1", "c", "2026-06-01T00:00:00.000000Z")
    raw = item_manifest(ingested.catalog, "dock-test", "site-01", sha, copy)
    assert raw == item_manifest(ingested.catalog, "dock-test", "site-01", sha, copy)
    doc = json.loads(raw)
    assert doc["item"]["sha256"] == sha and doc["item"]["size"] == 50
    (sighting,) = doc["sightings"]
    assert base64.b64decode(sighting["source_path_b64"]) == b"DCIM/\xff\xfeodd.MP4"
    assert doc["archive"] == {"bucket": "bkt", "key": "k", "version_id": "v1",
                              "checksum_sha256": "c", "lock_mode": "COMPLIANCE",
                              "retain_until": "2026-06-01T00:00:00.000000Z"}


def test_archive_rows_are_fixed(ingested: EvidenceStore) -> None:
    sha = hashlib.sha256(b"a" * 100).hexdigest()
    with ingested.catalog.transaction() as tx:
        tx.execute("INSERT INTO archive_objects VALUES (?,?,?,?,?,?,?,?)",
                   (sha, "b", "k", "v", "c", "2026-06-01T00:00:00Z", 0, "2026-03-01T00:00:00Z"))
    assert is_archived(ingested.catalog, sha)
    with ingested.catalog.transaction() as tx:
        assert is_archived(tx, sha)  # also inside a transaction (prune decides there)
    for sql in ("DELETE FROM archive_objects", "UPDATE archive_objects SET version_id='w'",
                "UPDATE archive_objects SET retain_until='2026-03-02T00:00:00Z'"):
        with pytest.raises(sqlite3.IntegrityError):
            ingested.catalog.conn.execute(sql)
    ingested.catalog.conn.execute("UPDATE archive_objects SET legal_hold=1")
    with pytest.raises(sqlite3.IntegrityError):  # only items of the catalog can be archived
        ingested.catalog.conn.execute("INSERT INTO archive_objects VALUES (?,?,?,?,?,?,?,?)",
                                      ("f" * 64, "b", "k2", "v", "c", "x", 0, "y"))
    status = archive_status(ingested.catalog)
    assert (status.items_stored, status.items_archived, status.items_pending,
            status.legal_holds, status.sessions_pending) == (2, 1, 1, 1, 1)


def test_read_only_catalog_without_archive_tables(tmp_path: Path) -> None:
    path = tmp_path / "store"
    path.mkdir()
    conn = sqlite3.connect(path / "catalog.sqlite")
    conn.executescript("CREATE TABLE items (sha256 TEXT, size INTEGER, deleted_at TEXT);"
                       "CREATE TABLE sessions (id TEXT, folder TEXT, mhl_c4 TEXT, result TEXT);"
                       "INSERT INTO items VALUES ('ab', 10, NULL);")
    conn.close()
    catalog = open_catalog_read_only(path)
    try:
        assert not is_archived(catalog, "ab")
        assert archive_status(catalog).items_pending == 1
    finally:
        catalog.close()


def test_cli_sync_without_archive_section_exit_78(tmp_path: Path) -> None:
    config = tmp_path / "dockd.toml"
    config.write_text(textwrap.dedent(f"""\
        [dock]
        store_dir = "{tmp_path / 'store'}"
        """))
    done = run_dockd(["archive", "sync", "--config", config])
    assert done.returncode == 78
    assert "no [archive] section" in done.stderr


def test_cli_status_on_a_fresh_store(ingested: EvidenceStore) -> None:
    done = run_dockd(["archive", "status", "--store", ingested.root])
    assert done.returncode == 0, done.stderr
    assert "items archived 0 of 2" in done.stdout


def test_cli_limit_must_be_positive() -> None:
    done = run_dockd(["archive", "sync", "--limit", "0"])
    assert done.returncode == 2
