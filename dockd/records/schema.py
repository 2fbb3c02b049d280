"""The records tables: holds, cases, case tags and item annotations.

Registered with the catalog (``register_schema``) so they exist in every store opened for
writing. Like the core's tables they only grow: a hold is released by filling in
``released_*`` once, never deleted; annotations are appended, the latest one counts.
"""

from __future__ import annotations

from dockd.store.catalog import Catalog, register_schema

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

register_schema("records", RECORDS_DDL)


def has_table(catalog: Catalog, name: str) -> bool:
    """True when the catalog has table ``name`` (a store opened read-only may predate it)."""
    row = catalog.query_one("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row is not None
