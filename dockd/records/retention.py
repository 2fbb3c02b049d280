"""Retention and prune (rules art. 12(3)).

An item may be deleted only when all of these hold at the moment of deciding:

* its retention has run out: ``ingested_at + retention(category) <= now``, where the
  category is ``case`` (tagged with any case) or ``untagged``; ingest time is the dock's
  own clock when it received the file, so a recorder with a wrong clock cannot make a
  recording look old;
* no active hold covers it;
* when a central archive is required (``[archive] enabled``), the archive holds it.

The decision and the deletion happen in one catalog transaction per item, so a hold added
meanwhile by another process is always seen. Deletion marks ``deleted_at``, appends
``item.deleted`` and, once that is durable, removes the stored file and its session-folder
links. A crash between the two leaves files that the next prune removes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockd.clock import parse_utc_iso, utc_iso
from dockd.config.records import RecordsSection
from dockd.records.holds import holds_on_item
from dockd.store.catalog import Catalog, Transaction
from dockd.store.events import ItemDeleted
from dockd.store.evidence import EvidenceStore
from dockd.store.fsutil import raise_store_error
from dockd.store.guard import check_store_path
from dockd.store.queries import is_archived
from dockd.store.verify import hash_file

log = logging.getLogger(__name__)

DELETE = "expired"
HELD = "held"
TOO_YOUNG = "too_young"
NOT_ARCHIVED = "not_archived"


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep per category; both at least the legal 90 (checked by the config)."""

    untagged_days: int
    case_days: int

    @classmethod
    def from_settings(cls, settings: RecordsSection) -> RetentionPolicy:
        return cls(settings.retention_days, settings.case_retention_days)


@dataclass(frozen=True)
class ItemFacts:
    """What the decision looks at for one item."""

    sha256: str
    size: int
    ingested_at: dt.datetime
    cases: tuple[str, ...]
    holds: tuple[int, ...]
    archived: bool


@dataclass(frozen=True)
class Decision:
    """Delete or keep one item, and why."""

    sha256: str
    size: int
    verdict: str  # expired | held | too_young | not_archived
    category: str
    retention_days: int
    due: dt.datetime
    holds: tuple[int, ...] = ()

    @property
    def delete(self) -> bool:
        return self.verdict == DELETE

    def to_json_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "verdict": self.verdict,
                "category": self.category, "retention_days": self.retention_days,
                "due": utc_iso(self.due), "holds": list(self.holds)}


@dataclass
class PruneReport:
    """Every item looked at, what was decided, and what was removed."""

    now: dt.datetime
    dry_run: bool
    decisions: list[Decision] = field(default_factory=list)
    leftovers_removed: int = 0

    def count(self, verdict: str) -> int:
        return sum(1 for d in self.decisions if d.verdict == verdict)

    @property
    def deleted(self) -> list[Decision]:
        return [d for d in self.decisions if d.delete]

    def to_json_dict(self) -> dict[str, Any]:
        return {"now": utc_iso(self.now), "dry_run": self.dry_run,
                "deleted": len(self.deleted), "bytes": sum(d.size for d in self.deleted),
                "held": self.count(HELD), "too_young": self.count(TOO_YOUNG),
                "not_archived": self.count(NOT_ARCHIVED),
                "leftovers_removed": self.leftovers_removed,
                "items": [d.to_json_dict() for d in self.decisions]}


def decide(facts: ItemFacts, policy: RetentionPolicy, now: dt.datetime,
           archive_required: bool) -> Decision:
    """The pure rule: delete only what is past retention, unheld and (if required) archived."""
    category = "case" if facts.cases else "untagged"
    days = policy.case_days if facts.cases else policy.untagged_days
    due = facts.ingested_at + dt.timedelta(days=days)
    if facts.holds:
        verdict = HELD
    elif now < due:
        verdict = TOO_YOUNG
    elif archive_required and not facts.archived:
        verdict = NOT_ARCHIVED
    else:
        verdict = DELETE
    return Decision(facts.sha256, facts.size, verdict, category, days, due, facts.holds)


def prune(store: EvidenceStore, policy: RetentionPolicy, archive_required: bool, actor: str,
          dry_run: bool = False) -> PruneReport:
    """Decide for every stored item and, unless ``dry_run``, delete the expired ones."""
    now = store.clock.now()
    report = PruneReport(now, dry_run)
    if not dry_run:
        report.leftovers_removed = remove_leftovers(store)
    shas = [str(r[0]) for r in store.catalog.query(
        "SELECT sha256 FROM items WHERE deleted_at IS NULL ORDER BY ingested_at, sha256")]
    for sha in shas:
        decision: Decision | None
        if dry_run:
            decision = decide(_facts(store.catalog, sha, store.catalog), policy, now,
                              archive_required)
        else:
            decision = _decide_and_delete(store, sha, policy, now, archive_required, actor)
        if decision is not None:
            report.decisions.append(decision)
    return report


def remove_leftovers(store: EvidenceStore) -> int:
    """Remove files of items already marked deleted (a prune interrupted after its commit)."""
    removed = 0
    # Under the publication lock: an ingest docking such a recording again restores its
    # item and stores its object anew, and that object must not be taken for a leftover.
    with store.content.publication_lock():
        for row in store.catalog.query("SELECT sha256 FROM items WHERE deleted_at IS NOT NULL"):
            removed += _remove_files(store, str(row[0]))
    return removed


def _decide_and_delete(store: EvidenceStore, sha: str, policy: RetentionPolicy,
                       now: dt.datetime, archive_required: bool, actor: str) -> Decision | None:
    # The publication lock is what an ingest holds while it links a batch and commits it.
    # Without it, an ingest could link a new sighting to this object between the deletion's
    # commit and the unlink, and commit it as a sighting of a live item after the object is
    # gone. With it, the ingest comes either before (the item is deleted with its new
    # sighting) or after (the item is restored and its object stored again).
    with store.content.publication_lock():
        with store.catalog.transaction() as tx:
            row = tx.execute("SELECT deleted_at FROM items WHERE sha256 = ?", (sha,)).fetchone()
            if row is None or row[0] is not None:
                return None  # another prune got there first
            decision = decide(_facts(tx, sha, store.catalog), policy, now, archive_required)
            if decision.delete:
                _mark_deleted(store, tx, decision, now, actor)
        if decision.delete:
            _remove_files(store, sha)
    if decision.delete:
        log.info("item deleted after retention",
                 extra={"sha256": sha, "category": decision.category, "due": utc_iso(decision.due)})
    return decision


def _mark_deleted(store: EvidenceStore, tx: Transaction, decision: Decision, now: dt.datetime,
                  actor: str) -> None:
    tx.execute("UPDATE items SET deleted_at = ? WHERE sha256 = ?",
               (utc_iso(now), decision.sha256))
    # Checkpointed: verification accepts a removal only when a signed checkpoint covers it.
    store.custody.record(tx, ItemDeleted(
        decision.sha256, decision.size, "retention_expired", decision.category,
        decision.retention_days, utc_iso(decision.due),
        is_archived(store.catalog, decision.sha256)), actor, checkpoint=True)


def _facts(source: Catalog | Transaction, sha: str, catalog: Catalog) -> ItemFacts:
    """Facts of ``sha`` read through ``source`` (the deciding transaction, when deleting;
    ``catalog`` is the same connection, for helpers that take a Catalog)."""
    conn = source.conn
    row = conn.execute("SELECT size, ingested_at FROM items WHERE sha256 = ?", (sha,)).fetchone()
    cases = tuple(str(r[0]) for r in conn.execute(
        "SELECT case_no FROM case_items WHERE sha256 = ? ORDER BY case_no", (sha,)))
    return ItemFacts(sha, int(row[0]), parse_utc_iso(row[1]), cases,
                     tuple(holds_on_item(source, sha)), is_archived(catalog, sha))


def _remove_files(store: EvidenceStore, sha: str) -> int:
    """Unlink the session-folder links and the stored object; how many were removed."""
    removed = 0
    links = store.catalog.query(
        "SELECT ses.folder, s.session_path FROM sightings s JOIN sessions ses"
        " ON ses.id = s.session_id WHERE s.sha256 = ? AND s.session_path IS NOT NULL"
        " AND ses.folder IS NOT NULL", (sha,))
    obj = store.content.object_path(sha)
    for row in links:
        rel = f"{row['folder']}/{row['session_path']}"
        check_store_path(store.root, rel)  # never removes through a planted link
        link = store.root / rel
        if _is_copy_of(link, obj, sha, store.config.ingest.chunk_bytes):
            removed += _unlink(link)
    return removed + _unlink(obj)


def _is_copy_of(link: Path, obj: Path, sha: str, chunk_bytes: int) -> bool:
    """True when ``link`` is the stored file (same inode, or, with the object already gone,
    the same content): prune never removes a file it did not store."""
    try:
        if obj.exists():
            return os.path.samefile(link, obj)
        return hash_file(link, ["sha256"], chunk_bytes)[0]["sha256"] == sha
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise_store_error(exc, f"checking {link}")
        raise


def _unlink(path: Path) -> int:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise_store_error(exc, f"removing {path}")
        raise
    return 1
