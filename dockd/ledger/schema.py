"""The ledger's PostgreSQL tables (docs/ledger.md describes each one).

Applied by :func:`dockd.ledger.db.migrate` in one transaction under an advisory lock, so
several instances starting together do not race. Hashes are stored as 32 raw bytes
(``bytea``), not hex: half the size of every chain row and index entry.

Big, growing tables are partitioned by month of the record's own time (``custody``) or of
arrival (``rejected``); ``custody_chain`` is the small unpartitioned key table that makes
``(dock, seq)`` unique across every partition (PostgreSQL only enforces uniqueness that
includes the partition key). Evidence tables refuse UPDATE and DELETE by trigger.
"""

from __future__ import annotations

SCHEMA_VERSION = 2

DDL = """
CREATE TABLE IF NOT EXISTS ledger_meta (
    key text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE IF NOT EXISTS docks (
    dock text PRIMARY KEY,
    public_key text NOT NULL CHECK (public_key ~ '^[0-9a-f]{64}$'),
    site text,
    archive_prefix text,
    enrolled_at timestamptz NOT NULL DEFAULT now(),
    enrolled_by text NOT NULL,
    note text NOT NULL DEFAULT '',
    max_seq bigint NOT NULL DEFAULT 0,
    contiguous_to bigint NOT NULL DEFAULT 0,
    records bigint NOT NULL DEFAULT 0,
    duplicates bigint NOT NULL DEFAULT 0,
    last_record_at timestamptz,
    last_checkpoint_seq bigint,
    verified_at timestamptz
);

-- Every key a dock was enrolled with, for the record (re-enrolment keeps the old ones).
CREATE TABLE IF NOT EXISTS dock_keys (
    dock text NOT NULL REFERENCES docks,
    public_key text NOT NULL,
    enrolled_at timestamptz NOT NULL DEFAULT now(),
    enrolled_by text NOT NULL,
    replaced_at timestamptz,
    PRIMARY KEY (dock, public_key, enrolled_at)
);

CREATE TABLE IF NOT EXISTS custody_chain (
    dock text NOT NULL REFERENCES docks,
    seq bigint NOT NULL CHECK (seq >= 1),
    event_id uuid NOT NULL,
    prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL DEFAULT 'mqtt',
    PRIMARY KEY (dock, seq),
    UNIQUE (dock, event_id)
);

CREATE TABLE IF NOT EXISTS custody (
    dock text NOT NULL,
    seq bigint NOT NULL,
    at timestamptz NOT NULL,
    time text NOT NULL,
    type text NOT NULL,
    actor text NOT NULL,
    subject text NOT NULL,
    payload text NOT NULL,
    PRIMARY KEY (dock, seq, at)
) PARTITION BY RANGE (at);
CREATE INDEX IF NOT EXISTS custody_type_at ON custody (type, at);
CREATE INDEX IF NOT EXISTS custody_subject ON custody (subject, at);

CREATE TABLE IF NOT EXISTS checkpoints (
    dock text NOT NULL REFERENCES docks,
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    time text NOT NULL,
    public_key text NOT NULL,
    signature text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL DEFAULT 'mqtt',
    PRIMARY KEY (dock, seq)
);

CREATE TABLE IF NOT EXISTS forks (
    id bigserial PRIMARY KEY,
    dock text NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    reason text NOT NULL,
    body bytea NOT NULL,
    topic text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS forks_dock_seq ON forks (dock, seq);

CREATE TABLE IF NOT EXISTS rejected (
    id bigserial,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic text NOT NULL,
    dock text,
    seq bigint,
    code text NOT NULL,
    reason text NOT NULL,
    payload bytea NOT NULL,
    payload_bytes integer NOT NULL,
    payload_sha256 bytea NOT NULL,
    PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS rejected_dock_code ON rejected (dock, code);

CREATE TABLE IF NOT EXISTS alerts (
    id bigserial PRIMARY KEY,
    dock text,
    kind text NOT NULL,
    key text NOT NULL DEFAULT '',
    detail text NOT NULL,
    seq_from bigint,
    seq_to bigint,
    count bigint NOT NULL DEFAULT 1,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    resolution text,
    fill_tried_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts (coalesce(dock, ''), kind, key)
    WHERE closed_at IS NULL;

CREATE TABLE IF NOT EXISTS dock_status (
    dock text PRIMARY KEY,
    site text NOT NULL,
    state text NOT NULL,
    time text,
    public_key text NOT NULL,
    message jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS bay_states (
    dock text NOT NULL,
    bay integer NOT NULL,
    state text NOT NULL,
    fault text,
    recorder text,
    officer text,
    updated_at text,
    message jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dock, bay)
);

CREATE TABLE IF NOT EXISTS recorder_health (
    dock text NOT NULL,
    recorder text NOT NULL,
    last_docked text,
    message jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dock, recorder)
);

CREATE TABLE IF NOT EXISTS dock_alerts (
    dock text NOT NULL,
    body_sha256 bytea NOT NULL,
    time text NOT NULL,
    at timestamptz NOT NULL,
    reason text NOT NULL,
    bay integer,
    recorder text,
    detail text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dock, body_sha256)
);
CREATE INDEX IF NOT EXISTS dock_alerts_at ON dock_alerts (at);

"""

# What every append-only trigger runs; migrate compares the stored body with this at each start.
REFUSE_CHANGE_BODY = """
BEGIN
    RAISE EXCEPTION 'the ledger table % is append-only', TG_TABLE_NAME;
END """
DDL += ("CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql"
        f" AS $${REFUSE_CHANGE_BODY}$$;\n")

# Version 2: what the ledger says about an alert, a refusal or a fork is also kept as data,
# {"code": …, "args": {…}} (dockd.ledger.notes), and shown in the reader's language; the text
# columns keep the English sentence. Rows from before have only the text (NULL here).
# Adding a NULL column rewrites no row, so the append-only triggers are not involved.
MIGRATE_V2 = """
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS detail_note jsonb;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS resolution_note jsonb;
ALTER TABLE rejected ADD COLUMN IF NOT EXISTS reason_note jsonb;
ALTER TABLE forks ADD COLUMN IF NOT EXISTS reason_note jsonb;
"""

# Evidence: rows are only ever added (partition children inherit row triggers, PG >= 13;
# TRUNCATE of the parent is refused by a statement trigger).
APPEND_ONLY = ("custody_chain", "custody", "checkpoints", "forks", "rejected", "dock_alerts")


# pg_trigger.tgtype of each kind (bits of PostgreSQL's pg_trigger.h: ROW 1, BEFORE 2,
# DELETE 8, UPDATE 16, TRUNCATE 32).
_TRIGGER_TYPES = {"append_only": 1 | 2 | 8 | 16, "no_truncate": 2 | 32}


def append_only_triggers() -> list[tuple[str, str, int]]:
    """(table, trigger name, tgtype) of every trigger that keeps an evidence table
    append-only."""
    return [(t, f"{t}_{kind}", tgtype) for t in APPEND_ONLY
            for kind, tgtype in _TRIGGER_TYPES.items()]


def append_only_ddl() -> str:
    """One BEFORE UPDATE OR DELETE trigger per evidence table."""
    return "\n".join(
        f"DROP TRIGGER IF EXISTS {t}_append_only ON {t};\n"
        f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
        "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();\n"
        f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t};\n"
        f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();" for t in APPEND_ONLY)


PARTITIONED = ("custody", "rejected")
