"""Who may touch the store: that the store is dockd's own (checked at open), and the errors
that name a path the user may not read or write.

An unprivileged user running a command on the service's store (``/var/lib/dockd``, 0750
root:dockd) meets EACCES somewhere on the way in; the error names the path that stopped
them, its owner, group and mode, and what to do: join the group that may read it, or run
the command as root.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import stat
from collections.abc import Callable
from pathlib import Path

from dockd.errors import StoreUnavailableError
from dockd.i18n import _

DENIED = (errno.EACCES, errno.EPERM)
SERVICE_GROUP = "dockd"
"""The daemon's group (``Group=dockd`` in its unit; sysusers.d creates it)."""


def permission_denied(path: Path, write: bool = False) -> StoreUnavailableError:
    """The error for an EACCES/EPERM met on ``path`` (or on the way to it): it names the
    first path component the user may not pass, and the group to join (``write``: the
    command writes the store, which only its owner may)."""
    blocked = _first_blocked(path)
    user = _user_name(os.geteuid())
    try:
        st = os.stat(blocked)
    except OSError:
        return StoreUnavailableError(_("permission denied on {path} for user {user}; run the "
                                       "command as root (sudo)").format(path=blocked, user=user))
    group, owner = _group_name(st.st_gid), _user_name(st.st_uid)
    where = _("permission denied on {path} (owner {owner}, group {group}, mode {mode}) for "
              "user {user}").format(path=blocked, owner=owner, group=group, user=user,
                                    mode=f"{stat.S_IMODE(st.st_mode):04o}")
    if st.st_gid in os.getgroups() or st.st_gid == os.getegid() or write:
        then = _("only {owner} may write it; run the command as root (sudo)") if write else \
            _("only {owner} may read it; run the command as root (sudo)")
    else:
        then = _("join group {group} (usermod -aG {group} {user}, then log in again) or run "
                 "the command as root (sudo)")
    return StoreUnavailableError(_("{where}: {then}").format(
        where=where, then=then.format(owner=owner, group=group, user=user)))


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


def check_store_tree(root: Path, is_leaf: Callable[[str], bool] = lambda rel: False) -> None:
    """Refuse a store dockd does not own: at open, before anything is written.

    The store's directory and every directory below it must belong to root or to the user
    running dockd, and be writable by nobody else (group write only for root's group, the
    process's group or the service group ``dockd``); the files at its top likewise; no
    symbolic link anywhere in it. Once that holds, only dockd (or root) can change the
    tree, so nothing planted later can send a write outside it. The entries of a directory
    for which ``is_leaf(relative path)`` holds are not listed, so that the cost does not grow
    with the store: their own owner and mode are checked. The object fan-out directories
    hold only objects, put there by ``renameat2(RENAME_NOREPLACE)`` or ``link``, neither of
    which follows or replaces a name (reading them
    uses ``O_NOFOLLOW``); below a recorder's session folder, whatever is written or removed
    is checked where it is used (:func:`check_store_path`). StoreUnavailableError (exit 73)
    naming the path otherwise. The root itself may be a link (an administrator's choice).
    """
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # a new store: dockd creates it
    except OSError as exc:
        if exc.errno in DENIED:
            raise permission_denied(root, write=True) from None
        raise StoreUnavailableError(_("the evidence store {root} cannot be opened: {strerror}").format(
                                      root=root, strerror=exc.strerror)) from None
    trusted = _trusted_groups()
    pending = [(top, "")]
    try:
        _check_owner(root, os.fstat(top), trusted)
        while pending:
            fd, rel = pending.pop()
            try:
                pending += _check_entries(root, fd, rel, trusted, is_leaf)
            finally:
                os.close(fd)
    finally:
        for fd, _rel in pending:
            os.close(fd)


def check_store_path(root: Path, rel: str) -> None:
    """Before writing or removing at ``root/rel``, in a part of the store that
    :func:`check_store_tree` does not list at open (a recorder's session folders): each
    directory on the way that exists must be no symbolic link, belong to root or the user
    running dockd and be writable by nobody else (what the open checks for the rest), so
    nothing is written or removed through a planted link. The last component is not
    looked at: ``link`` and ``unlink`` never follow it. A path that is absolute or has an
    empty, ``.`` or ``..`` component (an altered catalog) is refused before any of that.
    StoreUnavailableError (exit 73) naming the path otherwise. A few ``lstat`` calls: one
    per directory level."""
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in (".", ".."):
        # The path comes from the catalog: one that climbs out of the store or names it
        # oddly was not written by dockd.
        raise StoreUnavailableError(
            _("the catalog names {value} as a file of the evidence store, but that path leaves "
              "or bends around the store: the catalog was altered; run dockd verify, then "
              "restore it from a backup").format(value=root / rel))
    trusted = _trusted_groups()
    here = root
    for part in parts[:-1]:
        here = here / part
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            return  # the rest is made by dockd, below a directory only it may write
        except OSError as exc:
            if exc.errno in DENIED:
                raise permission_denied(here, write=True) from None
            raise StoreUnavailableError(_("the evidence store {root} cannot be opened: {strerror}").format(
                                          root=here, strerror=exc.strerror)) from None
        if stat.S_ISLNK(st.st_mode):
            raise _link_inside(here, os.readlink(here))
        _check_owner(here, st, trusted)


def _link_inside(path: Path, target: str) -> StoreUnavailableError:
    return StoreUnavailableError(
        _("{value} is a symbolic link (to {target}) inside the evidence store; dockd "
          "never follows links there: remove it (or move what it points to into the "
          "store), then try again").format(value=path, target=target))


def _check_entries(root: Path, fd: int, rel: str, trusted: frozenset[int],
                   is_leaf: Callable[[str], bool]) -> list[tuple[int, str]]:
    """Check the entries of one directory; the subdirectories to walk, opened."""
    below: list[tuple[int, str]] = []
    try:
        with os.scandir(fd) as entries:
            # Per entry only what the directory listing already says (d_type): a store's
            # session folders hold one entry per file.
            for entry in entries:
                if entry.is_symlink():
                    raise _link_inside(root / rel / entry.name, os.readlink(entry.name, dir_fd=fd))
                if entry.is_dir(follow_symlinks=False):
                    name = f"{rel}/{entry.name}" if rel else entry.name
                    if is_leaf(name):
                        _check_owner(root / name, entry.stat(follow_symlinks=False), trusted)
                        continue
                    try:
                        sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                      | os.O_CLOEXEC, dir_fd=fd)
                    except PermissionError:  # a user who may read the store, not write it
                        raise permission_denied(root / name, write=True) from None
                    below.append((sub, name))
                    _check_owner(root / name, os.fstat(sub), trusted)
                elif not rel:  # the store's own files: catalog, checkpoint, fan-out, locks
                    _check_owner(root / entry.name, entry.stat(follow_symlinks=False), trusted)
    except BaseException:
        for sub, _name in below:
            os.close(sub)
        raise
    return below


def _check_owner(path: Path, st: os.stat_result, trusted: frozenset[int]) -> None:
    what = _("directory") if stat.S_ISDIR(st.st_mode) else _("file")
    if st.st_uid not in (0, os.geteuid()):
        raise StoreUnavailableError(
            _("the evidence store's {what} {path} belongs to {user_name}, not to {user_name2} who runs "
              "dockd: anyone who owns it can redirect or alter evidence; check it, then chown it to "
              "{user_name2} (or use another store_dir)").format(
              what=what, path=path, user_name=_user_name(st.st_uid), user_name2=_user_name(os.geteuid())))
    if st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP and st.st_gid not in trusted):
        who = _("everyone") if st.st_mode & stat.S_IWOTH else _("group {group}").format(
            group=_group_name(st.st_gid))
        raise StoreUnavailableError(
            _("the evidence store's {what} {path} (mode {mode:04o}) is writable by {who}: anyone who may "
              "write it can redirect or alter evidence; check it, then chmod go-w {path}").format(
              what=what, path=path, mode=stat.S_IMODE(st.st_mode), who=who))


def _trusted_groups() -> frozenset[int]:
    """Groups that may have write on the store: root's, the process's, the service's."""
    groups = {0, os.getegid()}
    with contextlib.suppress(KeyError):  # a machine without the service group trusts none
        groups.add(grp.getgrnam(SERVICE_GROUP).gr_gid)
    return frozenset(groups)
