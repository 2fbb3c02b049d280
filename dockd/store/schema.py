"""The catalog's tables, all in one place: the store owns the catalog's shape.

Every statement is idempotent (``CREATE … IF NOT EXISTS``) and runs whenever a catalog is
opened for writing. Tables only grow: rows that are evidence are never deleted or changed,
and triggers refuse it.

- core (the store): items, sightings, sessions, metadata, the custody log, its checkpoints,
  batch intents and the MQTT outbox;
- registry (``dockd.store.registry``): the enrolled recorders (rules art. 5(1), 7, 9, 10);
- records (``dockd.records``): holds, cases, case tags and item annotations; a hold is
  released by filling in ``released_*`` once, annotations are appended, the latest counts;
- archive (``dockd.records.archive``):
  - ``archive_objects``: one row per item held in the WORM bucket (the item's own object).
  - ``archive_files``: every other object this dock put there: per-item JSON manifests and
    session ASC MHL files, by key.
  - ``archive_uploads`` / ``archive_upload_parts``: multipart uploads in flight, so that an
    upload killed half-way resumes with the parts the bucket already has.
  Archived rows are never deleted (the objects cannot be either); only ``legal_hold`` (the
  mirror of the holds) changes.
"""

from __future__ import annotations

CORE_DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    sm3 TEXT,
    xxh128 TEXT,
    c4 TEXT,
    path TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    first_session TEXT NOT NULL,
    deleted_at TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    recorder TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    result TEXT NOT NULL,
    reason TEXT,
    files INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    folder TEXT,
    mhl_c4 TEXT
);
CREATE TABLE IF NOT EXISTS sightings (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    recorder TEXT NOT NULL,
    source_path TEXT NOT NULL,
    source_path_raw BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL REFERENCES items(sha256),
    seen_at TEXT NOT NULL,
    session_path TEXT,
    UNIQUE (recorder, source_path_raw, size, mtime_ns, sha256)
);
CREATE INDEX IF NOT EXISTS sightings_by_recorder ON sightings (recorder, seen_at);
CREATE INDEX IF NOT EXISTS sightings_by_sha ON sightings (sha256);
CREATE INDEX IF NOT EXISTS items_pruned ON items (sha256) WHERE deleted_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS metadata (
    sha256 TEXT PRIMARY KEY REFERENCES items(sha256),
    format TEXT,
    start_time TEXT,
    end_time TEXT,
    duration_s REAL,
    width INTEGER,
    height INTEGER,
    extractor TEXT
);
CREATE TABLE IF NOT EXISTS custody (
    seq INTEGER PRIMARY KEY,
    dock TEXT NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    time TEXT NOT NULL,
    type TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS custody_by_type ON custody (type, time);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    time TEXT NOT NULL,
    dock TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ref_seq INTEGER,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE sent_at IS NULL;

CREATE TRIGGER IF NOT EXISTS custody_no_update BEFORE UPDATE ON custody
BEGIN SELECT RAISE(ABORT, 'custody log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS custody_no_delete BEFORE DELETE ON custody
BEGIN SELECT RAISE(ABORT, 'custody log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS items_no_delete BEFORE DELETE ON items
BEGIN SELECT RAISE(ABORT, 'items are never deleted; prune marks deleted_at'); END;
CREATE TRIGGER IF NOT EXISTS items_immutable BEFORE UPDATE OF sha256, size, sm3, xxh128, c4, path,
    ingested_at, first_session ON items
BEGIN SELECT RAISE(ABORT, 'stored items are immutable'); END;
CREATE TRIGGER IF NOT EXISTS sightings_no_update BEFORE UPDATE ON sightings
BEGIN SELECT RAISE(ABORT, 'sightings are append-only'); END;
CREATE TRIGGER IF NOT EXISTS sightings_no_delete BEFORE DELETE ON sightings
BEGIN SELECT RAISE(ABORT, 'sightings are append-only'); END;
"""

REGISTRY_DDL = """
CREATE TABLE IF NOT EXISTS recorders (
    serial TEXT PRIMARY KEY,
    brand TEXT,
    model TEXT,
    officer_id TEXT,
    officer_name TEXT,
    unit TEXT,
    state TEXT NOT NULL,
    enrolled_at TEXT NOT NULL,
    retired_at TEXT
);
"""

RECORDS_DDL = """
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('item', 'case', 'recorder')),
    target TEXT NOT NULL,
    range_from TEXT,
    range_to TEXT,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    released_by TEXT,
    released_at TEXT
);
CREATE INDEX IF NOT EXISTS holds_active ON holds (scope, target) WHERE released_at IS NULL;
CREATE TABLE IF NOT EXISTS cases (
    case_no TEXT PRIMARY KEY,
    place TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS case_items (
    case_no TEXT NOT NULL REFERENCES cases(case_no),
    sha256 TEXT NOT NULL REFERENCES items(sha256),
    tagged_by TEXT NOT NULL,
    tagged_at TEXT NOT NULL,
    PRIMARY KEY (case_no, sha256)
);
CREATE INDEX IF NOT EXISTS case_items_by_sha ON case_items (sha256);
CREATE TABLE IF NOT EXISTS item_annotations (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL REFERENCES items(sha256),
    place TEXT,
    operator_name TEXT,
    annotated_by TEXT NOT NULL,
    annotated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS item_annotations_by_sha ON item_annotations (sha256, id);
-- Other art. 12(4) fields entered by hand (dockd case annotate), one row per field; the
-- latest of each counts, and only where the file, the registry or the dock knows nothing.
CREATE TABLE IF NOT EXISTS item_field_annotations (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL REFERENCES items(sha256),
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    annotated_by TEXT NOT NULL,
    annotated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS item_field_annotations_by_sha ON item_field_annotations (sha256, id);
CREATE TRIGGER IF NOT EXISTS item_field_annotations_no_update BEFORE UPDATE
    ON item_field_annotations
BEGIN SELECT RAISE(ABORT, 'annotations are append-only'); END;
CREATE TRIGGER IF NOT EXISTS item_field_annotations_no_delete BEFORE DELETE
    ON item_field_annotations
BEGIN SELECT RAISE(ABORT, 'annotations are append-only'); END;

CREATE TRIGGER IF NOT EXISTS holds_no_delete BEFORE DELETE ON holds
BEGIN SELECT RAISE(ABORT, 'holds are never deleted; release them'); END;
CREATE TRIGGER IF NOT EXISTS holds_fixed BEFORE UPDATE OF id, scope, target, range_from, range_to,
    reason, created_by, created_at ON holds
BEGIN SELECT RAISE(ABORT, 'a hold cannot be changed, only released'); END;
CREATE TRIGGER IF NOT EXISTS holds_release_once BEFORE UPDATE OF released_by, released_at ON holds
    WHEN OLD.released_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'the hold is already released'); END;
CREATE TRIGGER IF NOT EXISTS case_items_no_delete BEFORE DELETE ON case_items
BEGIN SELECT RAISE(ABORT, 'case tags are append-only'); END;
CREATE TRIGGER IF NOT EXISTS item_annotations_no_update BEFORE UPDATE ON item_annotations
BEGIN SELECT RAISE(ABORT, 'annotations are append-only'); END;
CREATE TRIGGER IF NOT EXISTS item_annotations_no_delete BEFORE DELETE ON item_annotations
BEGIN SELECT RAISE(ABORT, 'annotations are append-only'); END;
"""

ARCHIVE_DDL = """
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
CREATE TABLE IF NOT EXISTS archive_custody (
    last_seq INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    bucket TEXT NOT NULL,
    version_id TEXT NOT NULL,
    checksum_sha256 TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    retain_until TEXT NOT NULL,
    archived_at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS archive_custody_fixed BEFORE UPDATE ON archive_custody
BEGIN SELECT RAISE(ABORT, 'an archived custody segment is fixed'); END;
CREATE TRIGGER IF NOT EXISTS archive_custody_no_delete BEFORE DELETE ON archive_custody
BEGIN SELECT RAISE(ABORT, 'archived objects are never forgotten'); END;
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

CATALOG_DDL = (CORE_DDL, REGISTRY_DDL, RECORDS_DDL, ARCHIVE_DDL)
