"""Who runs a command, as the operating system knows them, and what their groups let them do.

The actor of a custody record is never taken from a command-line flag: it is the real user
id, or, when root runs the command for someone through sudo, the user sudo names
(``SUDO_UID``, which only root can set for itself). A ``--by`` text is what the operator
states, kept beside the actor as ``stated_by``. Roles are Unix groups: ``dockd-admin``
changes the records (registry, holds, export, prune, cases, the access register, the key),
``dockd-audit`` only looks (status, catalog, log, verify, reports); root, not acting for
anyone, may do everything (the services run as root).
"""

from __future__ import annotations

import enum
import grp
import os
import pwd
from dataclasses import dataclass

from dockd.errors import NotPermittedError
from dockd.i18n import _

ADMIN_GROUP = "dockd-admin"
AUDIT_GROUP = "dockd-audit"
SERVICE_ACTOR_ENV = "DOCKD_ACTOR"
"""Set by the services' units (``dockd``, ``dockd-prune``…): their actor name. Honoured only
for root not acting through sudo: anyone else could name themselves the daemon."""


class Role(enum.Enum):
    """What a command needs: its value is the group that grants it."""

    ADMIN = ADMIN_GROUP
    AUDIT = AUDIT_GROUP


@dataclass(frozen=True)
class Operator:
    """The person a command runs for: user id and name, their groups' names, and whether
    root runs it for them through sudo."""

    uid: int
    name: str
    groups: frozenset[str]
    via_sudo: bool = False

    def may(self, role: Role) -> bool:
        """True when this operator holds ``role`` (an admin may also do what auditors do)."""
        if self.uid == 0:
            return True
        if role is Role.AUDIT:
            return bool(self.groups & {AUDIT_GROUP, ADMIN_GROUP})
        return ADMIN_GROUP in self.groups


def operator() -> Operator:
    """The operator of this process, from its real user id (and ``SUDO_UID`` under root)."""
    ruid = os.getuid()
    sudo_uid = os.environ.get("SUDO_UID", "")
    if ruid == 0 and sudo_uid.isdigit() and int(sudo_uid) != 0:
        uid = int(sudo_uid)
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return Operator(uid, f"uid{uid}", frozenset(), via_sudo=True)
        # The groups the user database gives them now (sudo does not carry the caller's).
        gids = os.getgrouplist(entry.pw_name, entry.pw_gid)
        return Operator(uid, entry.pw_name, _group_names(gids), via_sudo=True)
    try:
        name = pwd.getpwuid(ruid).pw_name
    except KeyError:
        name = f"uid{ruid}"
    return Operator(ruid, name, _group_names([os.getgid(), *os.getgroups()]))


def actor() -> str:
    """The actor of the custody records this process writes: ``cli:<user>`` of
    :func:`operator`, or the service's name (``$DOCKD_ACTOR``) for root's own services."""
    who = operator()
    service = os.environ.get(SERVICE_ACTOR_ENV, "")
    if who.uid == 0 and not who.via_sudo and service:
        return service
    return f"cli:{who.name}"


def require_role(role: Role, command: str, who: Operator | None = None) -> Operator:
    """The operator, when they hold ``role``; NotPermittedError (exit 77) naming the group
    to join otherwise."""
    who = who or operator()
    if who.may(role):
        return who
    group = role.value
    also = _(" (or {group})").format(group=ADMIN_GROUP) if role is Role.AUDIT else ""
    raise NotPermittedError(
        _("{command} needs group {group}{also}: user {user} is not in it; an administrator "
          "adds them with `usermod -aG {group} {user}` (they log in again after)")
        .format(command=command, group=group, also=also, user=who.name))


def _group_names(gids: list[int]) -> frozenset[str]:
    names = set()
    for gid in gids:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue  # a group without a name grants no role
    return frozenset(names)
