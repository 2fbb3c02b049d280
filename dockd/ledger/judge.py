"""What one MQTT message is, judged on its own: a custody record, a checkpoint, a status,
a bay or health state, a dock's alert, or something to reject (and why).

No state and no I/O: the topic and the bytes go in, one :data:`Judged` value comes out.
Whatever depends on what the ledger already holds (duplicates, forks, the chain, the
enrolled key) is decided afterwards by :mod:`dockd.ledger.plan`. Nothing here raises on
hostile input; every refusal is a :class:`Rejected` with a code and a sentence.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockd.i18n import Note
from dockd.ledger import notes
from dockd.names import DOCK_ID_PATTERN
from dockd.report.mqtt.topics import parse_topic
from dockd.store.canonical import canonical_json
from dockd.store.custody import Checkpoint, checkpoint_from_dict
from dockd.store.custody_check import HEX64, UNHASHABLE, hashed_body, record_form_problem

# Rejection codes: a word for tables, reports and the page; the reason (a Note) says the rest.
TOO_LARGE = "too_large"
NOT_JSON = "not_json"
UNKNOWN_TOPIC = "unknown_topic"
SCHEMA = "schema"
FORGED_HASH = "forged_hash"
WRONG_DOCK = "wrong_dock"
UNKNOWN_DOCK = "unknown_dock"
KEY_MISMATCH = "key_mismatch"
BAD_SIGNATURE = "bad_signature"
REPLAYED = "replayed"
CODES = (TOO_LARGE, NOT_JSON, UNKNOWN_TOPIC, SCHEMA, FORGED_HASH, WRONG_DOCK, UNKNOWN_DOCK,
         KEY_MISMATCH, BAD_SIGNATURE, REPLAYED)

EVIDENCE_BYTES = 4096  # of a too-large payload, what is kept besides its SHA-256
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
# Record times outside these years are refused: each month is a partition, and a dock
# clock in 1970 or 9999 is a broken clock, not a month worth a table.
MIN_YEAR, MAX_YEAR = 2000, 2199
MAX_INT = 1 << 63  # bigint columns
MAX_BAY = (1 << 31) - 1  # integer columns
SCHEMAS = Path(__file__).resolve().parent.parent / "report" / "mqtt" / "schemas"


@dataclass(frozen=True)
class Rejected:
    """A message the ledger keeps only as evidence of what was sent."""

    code: str
    reason: Note
    topic: str
    dock: str | None
    seq: int | None
    payload: bytes          # what is kept (the first EVIDENCE_BYTES of a huge one)
    payload_bytes: int      # its real size
    payload_sha256: bytes


@dataclass(frozen=True)
class RecordIn:
    """A well-formed custody record whose hash is its content's."""

    dock: str
    site: str
    seq: int
    event_id: str
    time: str
    at: dt.datetime
    type: str
    actor: str
    subject: str
    payload_json: str       # canonical JSON of the payload (what is hashed, byte for byte)
    prev_hash: str
    hash: str
    body: bytes             # canonical JSON of the whole record
    topic: str
    raw: bytes
    redelivered: bool = False  # MQTT DUP: the broker sending again what we did not ack


@dataclass(frozen=True)
class CheckpointIn:
    """A checkpoint of the right shape (its signature is checked against the enrolled key
    later: the key is state)."""

    dock: str
    site: str
    checkpoint: Checkpoint
    topic: str
    raw: bytes


@dataclass(frozen=True)
class StateIn:
    """A status, bay state, recorder health or alert that fits its schema."""

    kind: str               # status | bay | health | alert
    dock: str
    site: str
    key: str | None         # bay number or recorder serial
    message: dict[str, Any]
    topic: str
    raw: bytes


Judged = Rejected | RecordIn | CheckpointIn | StateIn


def judge(prefix: str, topic: str, payload: bytes, max_bytes: int) -> Judged:
    """Judge one message of the topic tree under ``prefix``."""
    parsed = parse_topic(prefix, topic)
    dock = parsed.dock if parsed is not None and DOCK_ID_PATTERN.match(parsed.dock) else None
    if len(payload) > max_bytes:
        return reject(TOO_LARGE, notes.TOO_LARGE(size=len(payload), limit=max_bytes), topic,
                      dock, None, payload)
    if parsed is None or dock is None:
        return reject(UNKNOWN_TOPIC, notes.UNKNOWN_TOPIC(), topic, dock, None, payload)
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        return reject(NOT_JSON, notes.NOT_JSON(error=str(exc)[:200]), topic, dock, None,
                      payload)
    problem = text_problem(message)
    if problem is not None:
        return reject(SCHEMA, problem, topic, dock, None, payload)
    if parsed.kind == "custody":
        return _record(parsed.site, dock, topic, message, payload)
    if parsed.kind == "checkpoint":
        return _checkpoint(parsed.site, dock, topic, message, payload)
    return _state(parsed.kind, parsed.site, dock, parsed.key, topic, message, payload)


def reject(code: str, reason: Note, topic: str, dock: str | None, seq: int | None,
           payload: bytes) -> Rejected:
    """A :class:`Rejected`; of a too-large payload only the first :data:`EVIDENCE_BYTES`
    are kept (with the whole one's SHA-256), of any other the whole payload."""
    kept = payload[:EVIDENCE_BYTES] if code == TOO_LARGE else payload
    return Rejected(code, reason, topic, dock, seq, kept, len(payload),
                    hashlib.sha256(payload).digest())


def text_problem(value: Any, depth: int = 0) -> Note | None:
    """Why a decoded JSON value cannot be kept in PostgreSQL: a NUL character or a lone
    surrogate anywhere, or an integer beyond 64 bits (each would fail the whole batch's
    transaction)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None if -MAX_INT <= value < MAX_INT else notes.BEYOND_64_BITS()
    if isinstance(value, str):
        if "\x00" in value:
            return notes.NUL()
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return notes.SURROGATE()
        return None
    if depth > 64:
        return notes.TOO_DEEP()
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key, depth + 1) or text_problem(item, depth + 1)
            if problem is not None:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = text_problem(item, depth + 1)
            if problem is not None:
                return problem
    return None


def parse_record_time(text: str) -> dt.datetime | None:
    """The instant of a record's ``time``; None when it is not RFC 3339 or out of range."""
    if not _TIME.match(text):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None or not MIN_YEAR <= moment.year <= MAX_YEAR:
        return None
    return moment.astimezone(dt.UTC)


def _record(site: str, dock: str, topic: str, message: Any, raw: bytes) -> Judged:
    problem = record_form_problem(message)
    claimed = message.get("seq") if isinstance(message, dict) else None
    seq = claimed if isinstance(claimed, int) and not isinstance(claimed, bool) else None
    if problem is not None:
        return reject(SCHEMA, problem, topic, dock, seq, raw)
    if message["dock"] != dock:
        return reject(WRONG_DOCK, notes.RECORD_WRONG_DOCK(named=_shown(message["dock"]),
                                                          dock=dock), topic, dock, seq, raw)
    if not _UUID.match(message["event_id"]):
        return reject(SCHEMA, notes.EVENT_ID(), topic, dock, seq, raw)
    at = parse_record_time(message["time"])
    if at is None:
        return reject(SCHEMA, notes.RECORD_TIME(time=_shown(message["time"]), first=MIN_YEAR,
                                                last=MAX_YEAR), topic, dock, seq, raw)
    if not message["type"]:
        return reject(SCHEMA, notes.EMPTY_TYPE(), topic, dock, seq, raw)
    body, problem = hashed_body(message)
    if body is None:
        assert problem is not None
        code = SCHEMA if problem.code == UNHASHABLE.code else FORGED_HASH
        return reject(code, problem, topic, dock, seq, raw)
    payload_json = canonical_json(message["payload"]).decode("utf-8")
    return RecordIn(dock, site, message["seq"], message["event_id"], message["time"], at,
                    message["type"], message["actor"], message["subject"], payload_json,
                    message["prev_hash"], message["hash"], body, topic, raw)


def _checkpoint(site: str, dock: str, topic: str, message: Any, raw: bytes) -> Judged:
    try:
        cp = checkpoint_from_dict(message)
    except ValueError as exc:
        return reject(SCHEMA, notes.CHECKPOINT_FORM(error=str(exc)[:200]), topic, dock, None,
                      raw)
    if cp.seq < 1 or not HEX64.match(cp.hash) or not HEX64.match(cp.public_key) or \
            parse_record_time(cp.time) is None:
        return reject(SCHEMA, notes.CHECKPOINT_FIELDS(), topic, dock,
                      cp.seq if cp.seq >= 1 else None, raw)
    if cp.dock != dock:
        return reject(WRONG_DOCK, notes.CHECKPOINT_WRONG_DOCK(named=_shown(cp.dock), dock=dock),
                      topic, dock, cp.seq, raw)
    return CheckpointIn(dock, site, cp, topic, raw)


_SCHEMA_OF = {"status": "status", "bay": "bay_state", "health": "recorder_health",
              "alert": "alert"}


def _state(kind: str, site: str, dock: str, key: str | None, topic: str, message: Any,
           raw: bytes) -> Judged:
    problem = schema_problem(_SCHEMA_OF[kind], message)
    if problem is not None:
        return reject(SCHEMA, notes.STATE_SCHEMA(kind=kind, problem=problem), topic, dock, None,
                      raw)
    if message.get("dock") != dock:
        return reject(WRONG_DOCK, notes.STATE_WRONG_DOCK(kind=kind,
                                                         named=_shown(message.get("dock")),
                                                         dock=dock), topic, dock, None, raw)
    bay = message.get("bay")
    if isinstance(bay, int) and bay > MAX_BAY:
        return reject(SCHEMA, notes.BAY_RANGE(kind=kind, bay=bay), topic, dock, None, raw)
    if kind == "bay" and str(message["bay"]) != key:
        return reject(SCHEMA, notes.BAY_TOPIC(bay=message["bay"], key=key), topic, dock, None,
                      raw)
    if kind == "health" and message["recorder"] != key:
        return reject(SCHEMA, notes.HEALTH_TOPIC(recorder=_shown(message["recorder"]), key=key),
                      topic, dock, None, raw)
    return StateIn(kind, dock, site, key, message, topic, raw)


def schema_problem(name: str, message: Any) -> Note | None:
    """The first way ``message`` breaks the published ``<name>.v1`` schema; None if none."""
    error = next(iter(_validator(name).iter_errors(message)), None)
    if error is None:
        return None
    path = "/".join(str(p) for p in error.absolute_path)[:200]
    where: Note | str = path or notes.MESSAGE()
    rule, value = error.validator, error.validator_value
    if rule == "required" and isinstance(error.instance, dict):
        absent = [f for f in value if isinstance(f, str) and f not in error.instance]
        return notes.SCHEMA_REQUIRED(where=where, field=absent[0] if absent else "?")
    if rule == "type":
        return notes.SCHEMA_TYPE(where=where, type=_words_of(value))
    if rule == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        extra = [_shown(k) for k in error.instance if k not in allowed][:10]
        return notes.SCHEMA_EXTRA(where=where, fields=extra)
    if rule == "enum":
        return notes.SCHEMA_ENUM(where=where, allowed=_words_of(value))
    limits = {"maxLength": notes.SCHEMA_LONG, "minLength": notes.SCHEMA_SHORT,
              "minimum": notes.SCHEMA_LOW, "maximum": notes.SCHEMA_HIGH}
    if rule in limits:
        return limits[rule](where=where, limit=value)
    if rule == "pattern":
        return notes.SCHEMA_PATTERN(where=where, pattern=str(value)[:100])
    return notes.SCHEMA_OTHER(where=where, message=error.message[:200])


def _shown(value: Any) -> str:
    """A value of a hostile message as a sentence shows it: JSON-like, at most 80 characters."""
    return repr(value)[:80]


def _words_of(value: Any) -> list[str]:
    """A schema's ``type`` or ``enum`` value as a list of words."""
    return [str(v)[:40] for v in (value if isinstance(value, list) else [value])][:20]


@functools.cache
def _validator(name: str) -> Any:
    import jsonschema

    schema = json.loads((SCHEMAS / f"{name}.v1.json").read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)
