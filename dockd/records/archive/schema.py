"""The archive's tables in the catalog.

- ``archive_objects``: one row per item held in the WORM bucket (the item's own object).
- ``archive_files``: every other object this dock put there: per-item JSON manifests and
  session ASC MHL files, by key.
- ``archive_uploads`` / ``archive_upload_parts``: multipart uploads in flight, so that an
  upload killed half-way resumes with the parts the bucket already has.

Archived rows are never deleted (the objects cannot be either); only ``legal_hold`` (the
mirror of the holds) changes.
"""

from __future__ import annotations

from dockd.store.catalog import register_schema

DDL = """
CREATE TABLE IF NOT EXISTS archive_objects (
    sha256 TEXT PRIMARY KEY REFERENCES items(sha256),
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    checksum_sha256 TEXT NOT NULL,
    retain_until TEXT NOT NULL,
    legal_hold INTEGER NOT NULL DEFAULT 0,
    archived_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS archive_files (
    key TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_sha256 TEXT REFERENCES items(sha256),
    session_id TEXT REFERENCES sessions(id),
    content_sha256 TEXT NOT NULL,
    version_id TEXT NOT NULL,
    checksum_sha256 TEXT NOT NULL,
    retain_until TEXT NOT NULL,
    legal_hold INTEGER NOT NULL DEFAULT 0,
    archived_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS archive_files_by_item ON archive_files (item_sha256);
CREATE INDEX IF NOT EXISTS archive_files_by_session ON archive_files (session_id);
CREATE TABLE IF NOT EXISTS archive_uploads (
    key TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    upload_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    part_bytes INTEGER NOT NULL,
    retain_until TEXT NOT NULL,
    legal_hold INTEGER NOT NULL,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS archive_upload_parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    etag TEXT NOT NULL,
    checksum_sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE TRIGGER IF NOT EXISTS archive_objects_no_delete BEFORE DELETE ON archive_objects
BEGIN SELECT RAISE(ABORT, 'archived objects are never forgotten'); END;
CREATE TRIGGER IF NOT EXISTS archive_objects_fixed BEFORE UPDATE OF sha256, bucket, key,
    version_id, checksum_sha256, retain_until, archived_at ON archive_objects
BEGIN SELECT RAISE(ABORT, 'an archived object is fixed; only legal_hold changes'); END;
CREATE TRIGGER IF NOT EXISTS archive_files_no_delete BEFORE DELETE ON archive_files
BEGIN SELECT RAISE(ABORT, 'archived objects are never forgotten'); END;
CREATE TRIGGER IF NOT EXISTS archive_files_fixed BEFORE UPDATE OF key, bucket, kind, item_sha256,
    session_id, content_sha256, version_id, checksum_sha256, retain_until, archived_at
    ON archive_files
BEGIN SELECT RAISE(ABORT, 'an archived object is fixed; only legal_hold changes'); END;
"""

register_schema("dockd.records.archive.schema", DDL)
