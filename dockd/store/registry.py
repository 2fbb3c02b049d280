"""The recorder registry (rules art. 5(1), 7, 9, 10): which recorder exists, who is
responsible for it, and whether it is in service. Every change is a custody event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockd.clock import utc_iso
from dockd.errors import UsageError
from dockd.i18n import N_, _
from dockd.store.canonical import JsonObject
from dockd.store.catalog import Catalog
from dockd.store.events import RecorderAssigned, RecorderEnrolled, RecorderRetired, RecorderStateChanged

if TYPE_CHECKING:
    from dockd.store.evidence import EvidenceStore

STATES = ("in_service", "faulty", "in_repair", "retired")
# How a state reads (translated where shown; the catalog and JSON keep the English key).
STATE_WORDS = {"in_service": N_("in service"), "faulty": N_("faulty"),
               "in_repair": N_("in repair"), "retired": N_("retired")}


def state_text(state: str) -> str:
    """A recorder state in the reader's language (在用 / 故障 / 维修中 / 已报废)."""
    return _(STATE_WORDS.get(state, state))




@dataclass(frozen=True)
class Recorder:
    """One enrolled recorder."""

    serial: str
    brand: str | None
    model: str | None
    officer_id: str | None
    officer_name: str | None
    unit: str | None
    state: str
    enrolled_at: str
    retired_at: str | None

    def to_json_dict(self) -> JsonObject:
        return dict(self.__dict__)


def lookup(catalog: Catalog, serial: str) -> Recorder | None:
    """The registry entry of ``serial``, or None when it is not enrolled."""
    row = catalog.query_one("SELECT * FROM recorders WHERE serial=?", (serial,))
    return Recorder(**dict(row)) if row is not None else None


def list_recorders(catalog: Catalog) -> list[Recorder]:
    return [Recorder(**dict(r)) for r in catalog.query("SELECT * FROM recorders ORDER BY serial")]


def enroll(store: EvidenceStore, actor: str, serial: str, brand: str, model: str,
           officer_id: str | None, officer_name: str | None, unit: str | None) -> Recorder:
    """Add a recorder to the registry (in service); UsageError if it is already there."""
    # Imported here: the ingest module's imports would weigh on every command that only
    # reads the registry (catalog, reports), and enrolling is the one use.
    from dockd.store.ingest import validate_serial

    validate_serial(serial)
    with store.catalog.transaction() as tx:
        if tx.execute("SELECT 1 FROM recorders WHERE serial=?", (serial,)).fetchone():
            raise UsageError(_("recorder {serial} is already enrolled").format(serial=serial))
        now = utc_iso(store.clock.now())
        tx.execute("INSERT INTO recorders (serial, brand, model, officer_id, officer_name, unit,"
                   " state, enrolled_at) VALUES (?,?,?,?,?,?,?,?)",
                   (serial, brand, model, officer_id, officer_name, unit, "in_service", now))
        store.custody.record(tx, RecorderEnrolled(serial, brand, model, officer_id, officer_name,
                                                  unit), actor)
    return _must(store.catalog, serial)


def assign(store: EvidenceStore, actor: str, serial: str, officer_id: str,
           officer_name: str | None, unit: str | None) -> Recorder:
    """Make an officer responsible for a recorder (art. 10)."""
    with store.catalog.transaction() as tx:
        before = _must(store.catalog, serial)
        if before.state == "retired":
            raise UsageError(_("recorder {serial} is retired and cannot be assigned")
                             .format(serial=serial))
        tx.execute("UPDATE recorders SET officer_id=?, officer_name=?, unit=COALESCE(?, unit)"
                   " WHERE serial=?", (officer_id, officer_name, unit, serial))
        store.custody.record(tx, RecorderAssigned(serial, officer_id, officer_name, unit,
                                                  before.officer_id), actor)
    return _must(store.catalog, serial)


def set_state(store: EvidenceStore, actor: str, serial: str, state: str) -> Recorder:
    """in_service | faulty | in_repair (art. 9); ``retire`` for taking it out for good."""
    if state not in STATES[:3]:
        raise UsageError(_("state {state!r} is not one of in_service, faulty, in_repair")
                         .format(state=state))
    with store.catalog.transaction() as tx:
        before = _must(store.catalog, serial)
        if before.state == "retired":
            raise UsageError(_("recorder {serial} is retired").format(serial=serial))
        tx.execute("UPDATE recorders SET state=? WHERE serial=?", (state, serial))
        store.custody.record(tx, RecorderStateChanged(serial, before.state, state), actor)
    return _must(store.catalog, serial)


def retire(store: EvidenceStore, actor: str, serial: str) -> Recorder:
    """Take a recorder out of service for good; its recordings stay."""
    with store.catalog.transaction() as tx:
        before = _must(store.catalog, serial)
        if before.state == "retired":
            raise UsageError(_("recorder {serial} is already retired").format(serial=serial))
        now = utc_iso(store.clock.now())
        tx.execute("UPDATE recorders SET state='retired', retired_at=? WHERE serial=?", (now, serial))
        store.custody.record(tx, RecorderRetired(serial, before.state), actor)
    return _must(store.catalog, serial)


def _must(catalog: Catalog, serial: str) -> Recorder:
    found = lookup(catalog, serial)
    if found is None:
        raise UsageError(_("recorder {serial} is not enrolled (see 'dockd recorders add')")
                         .format(serial=serial))
    return found
