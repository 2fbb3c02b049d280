"""The access register (rules art. 14): who viewed which recordings, for what, approved
by whom, and when -- one ``access.registered`` custody event per viewing."""

from __future__ import annotations

from dataclasses import dataclass

from dockd.errors import UsageError
from dockd.i18n import _
from dockd.records.export import check_registration
from dockd.store.custody import CustodyRecord
from dockd.store.events import AccessRegistered
from dockd.store.evidence import EvidenceStore


@dataclass(frozen=True)
class AccessRequest:
    """One viewing to register."""

    shas: tuple[str, ...]
    case_no: str | None
    requester: str
    unit: str
    reason: str
    approved_by: str


def register_access(store: EvidenceStore, request: AccessRequest, actor: str) -> CustodyRecord:
    """Append ``access.registered``; UsageError when a registration field is missing."""
    check_registration(request.requester, request.unit, request.reason, request.approved_by,
                       public_use=False, unit_option="--unit")
    if not request.shas:
        raise UsageError(_("nothing to register: the selection has no stored recordings"))
    return store.custody.append(AccessRegistered(
        case=request.case_no, items=tuple(request.shas), requester=request.requester.strip(),
        requester_unit=request.unit.strip(), reason=request.reason.strip(),
        approved_by=request.approved_by.strip()), actor, checkpoint=True)
