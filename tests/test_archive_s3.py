"""The WORM archive against a real SeaweedFS S3 gateway with Object Lock."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from dockd.clock import SystemClock
from dockd.config import Config, load_config
from dockd.errors import ArchiveUnavailableError, ConfigError
from dockd.records.archive.manifest import item_key, manifest_key
from dockd.records.archive.objectstore import Lock
from dockd.records.archive.retention import retain_until
from dockd.records.archive.status import archive_status
from dockd.records.archive.sync import open_archive, sync_archive
from dockd.records.archive.uploader import Uploader
from dockd.store.evidence import EvidenceStore, open_store
from dockd.store.ingest import Ingestor
from dockd.store.queries import is_archived
from tests.conftest import REPO_ROOT, run_dockd, write_tree
from tests.seaweedfs_server import (
    ACCESS_KEY,
    SECRET_KEY,
    SeaweedFS,
    seaweedfs_fixture,  # noqa: F401
)

PART = 5 << 20  # the smallest part S3 allows; the multipart tests use files above it


# -- fixtures ----------------------------------------------------------------------------


class Dock:
    """A store with recordings ingested from a real volume, and its config file."""

    def __init__(self, tmp: Path, server: SeaweedFS, bucket: str, secret: str = SECRET_KEY,
                 part_bytes: int = PART, threshold: int = PART) -> None:
        self.tmp = tmp
        self.server = server
        self.bucket = bucket
        tmp.mkdir(parents=True, exist_ok=True)
        creds = tmp / "archive-credentials.toml"
        creds.write_text(f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{secret}"\n')
        creds.chmod(0o600)
        self.config_path = tmp / "dockd.toml"
        self.config_path.write_text(textwrap.dedent(f"""\
            [dock]
            id = "dock-a"
            store_dir = "{tmp / 'store'}"
            [archive]
            endpoint_url = "{server.endpoint_url}"
            bucket = "{bucket}"
            credentials_file = "{creds}"
            retention_days = 90
            part_bytes = {part_bytes}
            multipart_threshold_bytes = {threshold}
            connect_timeout_s = 2
            read_timeout_s = 20
            """))
        self.config: Config = load_config(self.config_path)
        self.store: EvidenceStore = open_store(self.config, SystemClock())

    def ingest(self, files: dict[str, bytes], recorder: str = "REC001") -> None:
        source = write_tree(self.tmp / f"vol-{recorder}-{len(files)}-{os.urandom(2).hex()}", files)
        report = Ingestor(self.store).ingest(source, recorder)
        assert report.result == "completed"

    def sync(self, **kwargs: Any) -> Any:
        section, archive = open_archive(self.config)
        return sync_archive(self.store, archive, section, **kwargs)

    def events(self, type_: str) -> list[dict[str, Any]]:
        rows = self.store.catalog.query("SELECT payload FROM custody WHERE type=? ORDER BY seq",
                                        (type_,))
        return [json.loads(r[0]) for r in rows]

    def count(self, table: str) -> int:
        return int(self.store.catalog.query_one(f"SELECT COUNT(*) FROM {table}")[0])


@pytest.fixture
def make_dock(tmp_path: Path, seaweedfs: SeaweedFS) -> Iterator[Callable[..., Dock]]:
    docks: list[Dock] = []

    def factory(bucket: str | None = None, **kwargs: Any) -> Dock:
        dock = Dock(tmp_path / f"d{len(docks)}", seaweedfs, bucket or seaweedfs.new_bucket(),
                    **kwargs)
        docks.append(dock)
        return dock

    yield factory
    for dock in docks:
        dock.store.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _error_code(exc: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


# -- the server itself -------------------------------------------------------------------


def test_seaweedfs_listens_on_loopback_only(seaweedfs: SeaweedFS) -> None:
    listeners = seaweedfs.listeners()
    assert listeners, "found no listening sockets of the weed process"
    assert all(addr.startswith("127.0.0.1:") for addr in listeners), listeners
    assert f"127.0.0.1:{seaweedfs.ports['filer']}" in listeners


# -- upload and checksum ------------------------------------------------------------------


def test_sync_uploads_items_and_manifests_checked_by_sha256(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    small, other = b"recording one " * 1000, b"recording two " * 500
    dock.ingest({"DCIM/100/A.MP4": small, "DCIM/100/B.MP4": other})
    report = dock.sync()
    assert sorted(a.sha256 for a in report.archived) == sorted([_sha(small), _sha(other)])
    assert report.failed == ()
    s3 = dock.server.client()
    for data in (small, other):
        key = item_key("dock-a", _sha(data))
        head = s3.head_object(Bucket=dock.bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == _b64(data)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["Metadata"]["sha256"] == _sha(data)
        body = s3.get_object(Bucket=dock.bucket, Key=key)["Body"].read()
        assert body == data
        row = dock.store.catalog.query_one("SELECT * FROM archive_objects WHERE sha256=?",
                                           (_sha(data),))
        assert row["version_id"] == head["VersionId"]
        assert row["checksum_sha256"] == _b64(data)
        assert is_archived(dock.store.catalog, _sha(data))
        manifest = json.loads(s3.get_object(Bucket=dock.bucket,
                                            Key=manifest_key("dock-a", _sha(data)))["Body"].read())
        assert manifest["item"]["sha256"] == _sha(data)
        assert manifest["archive"]["version_id"] == head["VersionId"]
        assert manifest["sightings"][0]["recorder"] == "REC001"
    events = dock.events("file.archived")
    assert {e["sha256"]: e["version_id"] for e in events} == {
        r.sha256: r.version_id for r in report.archived}
    # The session's ASC MHL went up too, under the same retention.
    assert len(report.sessions) == 1
    mhl = [r for r in dock.store.catalog.query("SELECT * FROM archive_files WHERE kind='session-mhl'")]
    assert {Path(r["key"]).name for r in mhl} >= {"ascmhl_chain.xml"}
    assert len(dock.events("session.archived")) == 1


def test_second_sync_writes_no_new_version(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    dock.ingest({"A.MP4": b"a" * 5000})
    dock.sync()
    again = dock.sync()
    assert again.archived == () and again.sessions == ()
    versions = dock.server.client().list_object_versions(Bucket=dock.bucket)["Versions"]
    assert len(versions) == len({v["Key"] for v in versions})


def test_retention_counts_from_ingest_and_is_at_least_90_days(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    data = b"no metadata, so the retention counts from ingest"
    dock.ingest({"A.BIN": data})
    dock.sync()
    ingested = dock.store.catalog.query_one("SELECT ingested_at FROM items")[0]
    head = dock.server.client().head_object(Bucket=dock.bucket, Key=item_key("dock-a", _sha(data)))
    expected = retain_until(ingested, 90, SystemClock().now())
    assert abs((head["ObjectLockRetainUntilDate"] - expected).total_seconds()) <= 1


def test_limit_archives_only_n_items(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    dock.ingest({f"F{i}.MP4": bytes([i]) * 100 for i in range(3)})
    assert len(dock.sync(limit=2).archived) == 2
    assert archive_status(dock.store.catalog).items_pending == 1
    assert len(dock.sync().archived) == 1


def test_corrupted_local_copy_is_refused_by_the_bucket(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    good, bad = b"good " * 100, b"will rot " * 100
    dock.ingest({"GOOD.MP4": good, "BAD.MP4": bad})
    path = dock.store.content.object_path(_sha(bad))
    path.chmod(0o640)
    path.write_bytes(b"X" + bad[1:])  # bit rot after ingest
    report = dock.sync()
    assert [a.sha256 for a in report.archived] == [_sha(good)]
    assert [f.sha256 for f in report.failed] == [_sha(bad)]
    assert "SHA-256" in report.failed[0].reason
    assert not is_archived(dock.store.catalog, _sha(bad))
    assert [e["sha256"] for e in dock.events("file.archived")] == [_sha(good)]
    s3 = dock.server.client()
    with pytest.raises(botocore.exceptions.ClientError):
        s3.head_object(Bucket=dock.bucket, Key=item_key("dock-a", _sha(bad)))


def test_corrupted_large_file_aborts_the_multipart_upload(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    data = os.urandom(PART * 2 + 1000)
    dock.ingest({"BIG.MP4": data})
    path = dock.store.content.object_path(_sha(data))
    path.chmod(0o640)
    with path.open("r+b") as fh:
        fh.seek(PART + 10)
        fh.write(b"\0\1\2")
    report = dock.sync()
    assert report.archived == () and len(report.failed) == 1
    assert dock.count("archive_uploads") == 0 and dock.count("archive_upload_parts") == 0
    listing = dock.server.client().list_multipart_uploads(Bucket=dock.bucket)
    assert listing.get("Uploads", []) == []


# -- WORM: COMPLIANCE retention ------------------------------------------------------------


def test_archived_version_cannot_be_deleted_or_shortened(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    data = b"evidence that must stay" * 100
    dock.ingest({"A.MP4": data})
    (archived,) = dock.sync().archived
    s3 = dock.server.client()
    key, version = archived.key, archived.version_id
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.delete_object(Bucket=dock.bucket, Key=key, VersionId=version)
    assert _error_code(exc) == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.delete_object(Bucket=dock.bucket, Key=key, VersionId=version,
                         BypassGovernanceRetention=True)
    assert _error_code(exc) == "AccessDenied"
    head = s3.head_object(Bucket=dock.bucket, Key=key, VersionId=version)
    until = head["ObjectLockRetainUntilDate"]
    shorter = until - dt.timedelta(days=1)  # still in the future, but sooner
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_object_retention(Bucket=dock.bucket, Key=key, VersionId=version,
                                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": shorter})
    assert _error_code(exc) == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.put_object_retention(Bucket=dock.bucket, Key=key, VersionId=version,
                                Retention={"Mode": "GOVERNANCE",
                                           "RetainUntilDate": until})
    assert _error_code(exc) == "AccessDenied"
    assert s3.get_object_retention(Bucket=dock.bucket, Key=key, VersionId=version)["Retention"] \
        == {"Mode": "COMPLIANCE", "RetainUntilDate": until}
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.delete_bucket(Bucket=dock.bucket)
    assert _error_code(exc) == "BucketNotEmpty"
    # Overwriting the key only adds a version on top; the archived one stays as it was.
    s3.put_object(Bucket=dock.bucket, Key=key, Body=b"forged")
    s3.delete_object(Bucket=dock.bucket, Key=key)  # a delete marker, not a deletion
    kept = s3.get_object(Bucket=dock.bucket, Key=key, VersionId=version, ChecksumMode="ENABLED")
    assert kept["Body"].read() == data
    assert kept["ChecksumSHA256"] == _b64(data)


# -- legal holds ----------------------------------------------------------------------------


def test_legal_hold_blocks_deletion_until_released(make_dock: Callable[..., Dock]) -> None:
    # Our objects also carry a 90-day COMPLIANCE retention, which alone blocks deletion; to
    # see what the legal hold does on its own, this object is written without retention
    # and the hold is set and released through the archive's own client.
    dock = make_dock()
    _section, archive = open_archive(dock.config)
    s3 = dock.server.client()
    version = s3.put_object(Bucket=dock.bucket, Key="probe/held", Body=b"held")["VersionId"]
    archive.set_legal_hold("probe/held", version, True)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        s3.delete_object(Bucket=dock.bucket, Key="probe/held", VersionId=version)
    assert _error_code(exc) == "AccessDenied"
    archive.set_legal_hold("probe/held", version, False)
    s3.delete_object(Bucket=dock.bucket, Key="probe/held", VersionId=version)
    assert archive.head("probe/held", version) is None


def test_sync_mirrors_holds_on_and_off(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    held_data, free_data = b"complaint " * 50, b"routine " * 50
    dock.ingest({"HELD.MP4": held_data, "FREE.MP4": free_data})
    held = {_sha(held_data)}
    dock.sync(held_items=lambda _catalog: frozenset(held))
    s3 = dock.server.client()

    def hold_status(data: bytes) -> str:
        row = dock.store.catalog.query_one("SELECT key, version_id FROM archive_objects"
                                           " WHERE sha256=?", (_sha(data),))
        return str(s3.get_object_legal_hold(Bucket=dock.bucket, Key=row[0],
                                            VersionId=row[1])["LegalHold"]["Status"])

    assert hold_status(held_data) == "ON" and hold_status(free_data) == "OFF"
    manifest = dock.store.catalog.query_one("SELECT legal_hold FROM archive_files WHERE"
                                            " item_sha256=?", (_sha(held_data),))
    assert manifest[0] == 1
    held.clear()  # the hold is released
    report = dock.sync(held_items=lambda _catalog: frozenset(held))
    assert hold_status(held_data) == "OFF"
    assert {c.legal_hold for c in report.hold_changes} == {False}
    held.add(_sha(free_data))  # a new hold on an archived item
    dock.sync(held_items=lambda _catalog: frozenset(held))
    assert hold_status(free_data) == "ON"
    statuses = [e["legal_hold"] for e in dock.events("archive.legal_hold")]
    assert statuses.count("OFF") >= 2 and statuses.count("ON") >= 2  # item + manifest (+ MHL)


def test_default_hold_source_reads_the_holds_module(make_dock: Callable[..., Dock]) -> None:
    from dockd.records.holds import HoldRequest, add_hold, release_hold

    dock = make_dock()
    data = b"petition " * 40
    dock.ingest({"P.MP4": data})
    hold = add_hold(dock.store, HoldRequest("item", _sha(data), "petition", "supervisor"), "test")
    dock.sync()
    row = dock.store.catalog.query_one("SELECT legal_hold FROM archive_objects")
    assert row[0] == 1
    release_hold(dock.store, hold.id, "supervisor", "test")
    dock.sync()
    assert dock.store.catalog.query_one("SELECT legal_hold FROM archive_objects")[0] == 0


# -- resumable multipart --------------------------------------------------------------------


_KILLER = """
import os, signal, sys
from pathlib import Path
from dockd.clock import SystemClock
from dockd.config import load_config
from dockd.store.evidence import open_store
from dockd.records.archive.sync import open_archive, sync_archive

config = load_config(Path(sys.argv[1]))
section, archive = open_archive(config)
store = open_store(config, SystemClock())

def on_progress(progress):
    if progress.part_number == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # a crash, mid-upload, nothing cleaned up

sync_archive(store, archive, section, on_progress=on_progress)
"""


def test_upload_resumes_after_sigkill_mid_multipart(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    data = os.urandom(PART * 3 + 12345)  # four parts
    dock.ingest({"LONG.MP4": data})
    killed = subprocess.run([sys.executable, "-c", _KILLER, str(dock.config_path)],
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                            capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr
    upload = dock.store.catalog.query_one("SELECT * FROM archive_uploads")
    assert upload is not None and upload["sha256"] == _sha(data)
    assert dock.count("archive_upload_parts") == 2
    s3 = dock.server.client()
    listed = s3.list_parts(Bucket=dock.bucket, Key=upload["key"], UploadId=upload["upload_id"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    assert not is_archived(dock.store.catalog, _sha(data))

    report = dock.sync()
    assert [a.sha256 for a in report.archived] == [_sha(data)]
    assert report.parts_uploaded == 2  # parts 3 and 4 only: 1 and 2 were kept
    head = s3.head_object(Bucket=dock.bucket, Key=upload["key"], ChecksumMode="ENABLED")
    parts = [data[i:i + PART] for i in range(0, len(data), PART)]
    composite = base64.b64encode(hashlib.sha256(
        b"".join(hashlib.sha256(p).digest() for p in parts)).digest()).decode() + "-4"
    assert head["ChecksumSHA256"] == composite
    assert head["Metadata"]["sha256"] == _sha(data)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert s3.get_object(Bucket=dock.bucket, Key=upload["key"])["Body"].read() == data
    assert dock.count("archive_uploads") == 0 and dock.count("archive_upload_parts") == 0
    (event,) = dock.events("file.archived")
    assert event["version_id"] == head["VersionId"]
    assert event["checksum_sha256"] == composite


def test_crash_after_upload_before_record_adopts_the_version(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    data = b"uploaded, then the power failed " * 10
    dock.ingest({"A.MP4": data})
    _section, archive = open_archive(dock.config)
    key = item_key("dock-a", _sha(data))
    ingested = dock.store.catalog.query_one("SELECT ingested_at FROM items")[0]
    lock = Lock(retain_until(ingested, 90, SystemClock().now()), False)
    first = Uploader(dock.store.catalog, archive, SystemClock(), PART, PART).upload(
        key, dock.store.content.object_path(_sha(data)), _sha(data), len(data), lock,
        "application/octet-stream")
    # ... and the catalog never heard of it. The next sync must not write a second copy.
    (archived,) = dock.sync().archived
    assert archived.version_id == first.version_id
    versions = dock.server.client().list_object_versions(Bucket=dock.bucket, Prefix=key)
    assert [v["VersionId"] for v in versions["Versions"]] == [first.version_id]


# -- refusals --------------------------------------------------------------------------------


def test_bucket_without_object_lock_is_refused(make_dock: Callable[..., Dock],
                                               seaweedfs: SeaweedFS) -> None:
    dock = make_dock(bucket=seaweedfs.new_bucket(object_lock=False))
    dock.ingest({"A.MP4": b"not into a bucket that is not WORM"})
    before = dock.count("custody")
    with pytest.raises(ConfigError, match="is not WORM: it has no Object Lock"):
        dock.sync()
    assert dock.count("custody") == before and dock.count("archive_objects") == 0
    assert "Versions" not in seaweedfs.client().list_object_versions(Bucket=dock.bucket)


def test_missing_bucket_is_a_config_error(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock(bucket="no-such-bucket-here")
    with pytest.raises(ConfigError, match="does not exist"):
        dock.sync()


def test_wrong_credentials_clear_error_and_nothing_recorded(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock(secret="not-the-secret")
    dock.ingest({"A.MP4": b"x" * 100})
    before = dock.count("custody")
    with pytest.raises(ConfigError, match=r"refused the credentials in .*archive-credentials"
                                          r"\.toml.*SignatureDoesNotMatch") as exc:
        dock.sync()
    assert "not-the-secret" not in str(exc.value)
    assert dock.count("custody") == before
    assert dock.count("archive_objects") == 0 and dock.count("archive_uploads") == 0
    assert "Versions" not in dock.server.client().list_object_versions(Bucket=dock.bucket)


def test_unreachable_endpoint_is_temporary(tmp_path: Path, make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    text = dock.config_path.read_text().replace(dock.server.endpoint_url, "http://127.0.0.1:9")
    dock.config_path.write_text(text)
    section, archive = open_archive(load_config(dock.config_path))
    with pytest.raises(ArchiveUnavailableError, match="cannot be reached"):
        sync_archive(dock.store, archive, section)


# -- the command line ------------------------------------------------------------------------


def test_cli_sync_and_status(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock()
    dock.ingest({"A.MP4": b"a" * 300, "B.MP4": b"b" * 300})
    done = run_dockd(["archive", "sync", "--limit", "1", "--json", "--config", dock.config_path])
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["archived"]) == 1
    status = run_dockd(["archive", "status", "--json", "--config", dock.config_path])
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["items_archived"] == 1
    assert json.loads(status.stdout)["items_pending"] == 1


def test_cli_wrong_credentials_exit_78(make_dock: Callable[..., Dock]) -> None:
    dock = make_dock(secret="wrong-secret")
    done = run_dockd(["archive", "sync", "--config", dock.config_path])
    assert done.returncode == 78
    assert "refused the credentials" in done.stderr and "wrong-secret" not in done.stderr
