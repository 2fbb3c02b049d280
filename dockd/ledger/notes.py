"""Every sentence the ledger stores about what it refused or found: alert details, the
reasons of rejected messages and forks, the resolutions of closed gaps.

Each is a :class:`~dockd.i18n.Sentence`: the row keeps its code and values (JSON, the
same in every language) next to the English text, and the page and the reports put it into
the reader's words through the ledger's catalog (``dockd_ledger.po``). Values that are data
(seqs, event ids, key fingerprints, field names, topics) stay as they are in any language.
The checks shared with ``dockd watch --verify`` have their sentences in
:mod:`dockd.store.custody_check`.
"""

from __future__ import annotations

from typing import Any

from dockd.i18n import N_, Note, Sentence
from dockd.ledger.words import LABELS, Words
from dockd.store import custody_check  # noqa: F401  (defines the shared checks' sentences)

# A rejection's code in words, as the first part of a ``rejected`` alert's sentence.
CODE_WORDS = {code: Sentence(f"label.{code}", LABELS.get(code, code)) for code in (
    "too_large", "not_json", "unknown_topic", "schema", "forged_hash", "wrong_dock",
    "unknown_dock", "key_mismatch", "bad_signature", "replayed", "unstorable")}


# judge: one message on its own
TOO_LARGE = Sentence("reject.too_large", N_("payload of {size} bytes exceeds "
                                            "max_payload_bytes ({limit})"))
UNKNOWN_TOPIC = Sentence("reject.unknown_topic", N_("not a topic of the dock tree"))
NOT_JSON = Sentence("reject.not_json", N_("payload is not UTF-8 JSON: {error}"))
BEYOND_64_BITS = Sentence("text.beyond_64_bits", N_("an integer is beyond 64 bits"))
NUL = Sentence("text.nul", N_("a string holds a NUL character"))
SURROGATE = Sentence("text.surrogate", N_("a string holds a lone UTF-16 surrogate"))
TOO_DEEP = Sentence("text.too_deep", N_("nested deeper than 64 levels"))
RECORD_WRONG_DOCK = Sentence("record.wrong_dock", N_("record names dock {named} but came on "
                                                     "{dock}'s topic"))
EVENT_ID = Sentence("record.event_id", N_("custody record event_id is not a lower-case UUID"))
RECORD_TIME = Sentence("record.time", N_("custody record time {time} is not an RFC 3339 time "
                                         "in {first}-{last}"))
EMPTY_TYPE = Sentence("record.empty_type", N_("custody record type is empty"))
CHECKPOINT_FORM = Sentence("checkpoint.form", N_("checkpoint: {error}"))
CHECKPOINT_FIELDS = Sentence("checkpoint.fields", N_("checkpoint: seq, hash, time or "
                                                     "public_key malformed"))
CHECKPOINT_WRONG_DOCK = Sentence("checkpoint.wrong_dock", N_("checkpoint names dock {named} "
                                                             "but came on {dock}'s topic"))
STATE_SCHEMA = Sentence("state.schema", N_("{kind}: {problem}"))
STATE_WRONG_DOCK = Sentence("state.wrong_dock", N_("{kind} names dock {named} but came on "
                                                   "{dock}'s topic"))
BAY_RANGE = Sentence("state.bay_range", N_("{kind}: bay {bay} is out of range"))
BAY_TOPIC = Sentence("state.bay_topic", N_("bay state of bay {bay} on bay {key}'s topic"))
HEALTH_TOPIC = Sentence("state.health_topic", N_("health of recorder {recorder} on {key}'s "
                                                 "topic"))
# A JSON Schema finding: where in the message, and what (the common checks in words, any
# other with the validator's own English text kept as data).
SCHEMA_REQUIRED = Sentence("schema.required", N_("{where}: the field {field} is missing"))
SCHEMA_TYPE = Sentence("schema.type", N_("{where}: not of JSON type {type}"))
SCHEMA_EXTRA = Sentence("schema.additional", N_("{where}: fields not in the schema: {fields}"))
SCHEMA_ENUM = Sentence("schema.enum", N_("{where}: not one of {allowed}"))
SCHEMA_LONG = Sentence("schema.max_length", N_("{where}: longer than {limit} characters"))
SCHEMA_SHORT = Sentence("schema.min_length", N_("{where}: shorter than {limit} characters"))
SCHEMA_LOW = Sentence("schema.minimum", N_("{where}: less than {limit}"))
SCHEMA_HIGH = Sentence("schema.maximum", N_("{where}: more than {limit}"))
SCHEMA_PATTERN = Sentence("schema.pattern", N_("{where}: does not match the pattern {pattern}"))
SCHEMA_OTHER = Sentence("schema.other", N_("{where}: does not fit the schema ({message})"))
MESSAGE = Sentence("schema.message", N_("the message"))

# plan and db: against what the ledger holds
NOT_ENROLLED = Sentence("dock.not_enrolled", N_("dock {dock} is not enrolled (dockd ledger "
                                                "dock add)"))
FROM_UNENROLLED = Sentence("dock.messages_unenrolled", N_("messages from dock {dock}, which is "
                                                          "not enrolled"))
CHECKPOINT_FORK = Sentence("fork.checkpoint", N_("the dock signed two different hashes for seq "
                                                 "{seq} (rolled back?)"))
REPLAYED_RECORD = Sentence("replay.record", N_(
    "seq {seq} published again {after} after it was kept, not as a redelivery: an old record "
    "replayed (identical, so nothing kept changes)"))
FORK_SAME_ID = Sentence("fork.same_event_id", N_("two different records claim seq {seq} (same "
                                                 "event id {event_id}; the first received is "
                                                 "kept)"))
FORK_OTHER_ID = Sentence("fork.other_event_id", N_("two different records claim seq {seq} "
                                                   "(event ids {kept} kept, {other} not)"))
EVENT_ID_REUSED = Sentence("fork.event_id_reused", N_("event id {event_id} already used by seq "
                                                      "{seq}"))
CONTRADICTED = Sentence("checkpoint.contradicts_kept", N_(
    "{problem}: the record the ledger keeps is contradicted by the dock's signature"))
STATUS_KEY = Sentence("status.other_key", N_("status publishes key {key}…, not the enrolled "
                                             "{expected}…"))
STALE_STATUS = Sentence("replay.status", N_("status of {new} is older than the one kept "
                                            "({old}): replayed"))
STALE_BAY = Sentence("replay.bay", N_("bay {bay} state of {new} is older than the one kept "
                                      "({old}): replayed"))
STALE_HEALTH = Sentence("replay.health", N_("health of {recorder} of {new} is older than the "
                                            "one kept ({old}): replayed"))
REJECTED = Sentence("rejected", N_("{code}: {reason} (topic {topic})"))

# the consumer: a message it could not judge or PostgreSQL would not take
UNJUDGED = Sentence("reject.unjudged", N_("could not be judged: {error}"))
REFUSED_BY_DATABASE = Sentence("reject.database", N_("PostgreSQL refused it: {error}"))

# gaps and the archive
GAP = Sentence("gap.missing", N_("{range} missing (not received, not filled from the archive)"))
FILLED_FROM = Sentence("gap.filled_from", N_("{count} from {source}"))
FILLED = Sentence("gap.filled", N_("filled ({filled})"))
PARTLY_FILLED = Sentence("gap.partly_filled", N_("partly filled ({filled}); still missing: "
                                                 "{missing}"))
SEGMENT_REFUSED = Sentence("archive.segment_refused", N_("archive segment {name} refused: "
                                                         "{error}"))


def shown(_: Words, note: Any, text: str | None) -> str:
    """What a person reads for a stored sentence: its Note (the JSON column) in the language
    of ``_``; a row from before Notes were kept, or with a code this version does not know,
    shows its stored text as it is."""
    parsed = Note.from_json(note)
    return parsed.render(_) if parsed is not None else text or "—"


def code_word(code: str) -> Note | str:
    """A rejection code in words (the code itself if it has none)."""
    return CODE_WORDS[code]() if code in CODE_WORDS else code
