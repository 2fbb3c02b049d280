"""Who may touch the store: the errors that name a path the user may not read or write.

An unprivileged user running a command on the service's store (``/var/lib/dockd``, 0750
root:dockd) meets EACCES somewhere on the way in; the error names the path that stopped
them, its owner, group and mode, and what to do: join the group that may read it, or run
the command as root.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from pathlib import Path

from dockd.errors import StoreUnavailableError

DENIED = (errno.EACCES, errno.EPERM)


def permission_denied(path: Path, write: bool = False) -> StoreUnavailableError:
    """The error for an EACCES/EPERM met on ``path`` (or on the way to it): it names the
    first path component the user may not pass, and the group to join (``write``: the
    command writes the store, which only its owner may)."""
    blocked = _first_blocked(path)
    user = _user_name(os.geteuid())
    try:
        st = os.stat(blocked)
    except OSError:
        return StoreUnavailableError(f"permission denied on {blocked} for user {user}; "
                                     "run the command as root (sudo)")
    group = _group_name(st.st_gid)
    where = (f"permission denied on {blocked} (owner {_user_name(st.st_uid)}, group {group}, "
             f"mode {stat.S_IMODE(st.st_mode):04o}) for user {user}")
    if st.st_gid in os.getgroups() or st.st_gid == os.getegid() or write:
        return StoreUnavailableError(f"{where}: only {_user_name(st.st_uid)} may "
                                     f"{'write' if write else 'read'} it; run the command as "
                                     "root (sudo)")
    return StoreUnavailableError(f"{where}: join group {group} (usermod -aG {group} {user}, "
                                 "then log in again) or run the command as root (sudo)")


def _first_blocked(path: Path) -> Path:
    """The first of ``path``'s directories (from /) the user may not enter, else ``path``
    (or its directory, when ``path`` is not there)."""
    path = Path(os.path.abspath(path))
    for directory in reversed(path.parents):
        if not os.access(directory, os.X_OK):
            return directory
    return path if os.path.lexists(path) else path.parent


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)

