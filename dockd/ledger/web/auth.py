"""Who may read the supervision page: HTTP basic against a users file, or a user name set
by the bureau's login proxy.

The users file (TOML, readable only by the service)::

    [[user]]
    name = "fzjcg-li"
    role = "audit"
    password = "scrypt$16384$8$1$<salt hex>$<key hex>"   # dockd ledger hash-password

The only role is ``audit``: read-only, which is all the page can do (it has no write
endpoint). With ``auth = "proxy"`` the proxy authenticates; the page trusts the user
header only from the peers in ``proxy_trusted`` and refuses every other request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from dockd.errors import ConfigError
from dockd.i18n import _

ROLES = ("audit",)
_SCRYPT = (16384, 8, 1)


@dataclass(frozen=True)
class User:
    """A reader of the page."""

    name: str
    role: str


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The users-file form of ``password`` (scrypt, random salt)."""
    n, r, p = _SCRYPT
    salt = salt or os.urandom(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${key.hex()}"


def check_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the users-file hash ``stored``."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n),
                             r=int(r), p=int(p), dklen=len(bytes.fromhex(key)),
                             maxmem=256 << 20)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, bytes.fromhex(key))


class UsersFile:
    """The users of HTTP basic auth, with a small cache of checked credentials (scrypt
    costs ~50 ms on purpose; a page loads several resources)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.users = _load(path)
        self._ok: dict[bytes, User] = {}

    def check(self, authorization: str | None) -> User | None:
        """The user of a ``Basic`` Authorization header, None when it does not verify."""
        if not authorization or not authorization.startswith("Basic "):
            return None
        try:
            name, _sep, password = base64.b64decode(authorization[6:], validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        token = hashlib.sha256(f"{name}\0{password}".encode()).digest()
        if token in self._ok:
            return self._ok[token]
        entry = self.users.get(name)
        if entry is None or not check_password(password, entry[1]):
            return None
        user = User(name, entry[0])
        if len(self._ok) > 1000:
            self._ok.clear()
        self._ok[token] = user
        return user


def _load(path: Path) -> dict[str, tuple[str, str]]:
    try:
        mode = path.stat().st_mode
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(_("ledger.web.users_file: {path} does not exist").format(
            path=path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(_("ledger.web.users_file: {path} cannot be read: {reason}").format(
            path=path, reason=exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_("ledger.web.users_file: {path} is not valid TOML: {reason}").format(
            path=path, reason=exc)) from None
    if mode & 0o077:
        raise ConfigError(_("ledger.web.users_file: {path} is readable by others; chmod 600 "
                            "it").format(path=path))
    users: dict[str, tuple[str, str]] = {}
    entries = data.get("user", [])
    if not isinstance(entries, list) or set(data) - {"user"}:
        raise ConfigError(_("ledger.web.users_file: {path} must hold only [[user]] "
                            "tables").format(path=path))
    for i, entry in enumerate(entries):
        where = f"{path}: user[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "role", "password"}:
            raise ConfigError(_("ledger.web.users_file: {where} needs exactly name, role, "
                                "password").format(where=where))
        if entry["role"] not in ROLES:
            raise ConfigError(_("ledger.web.users_file: {where}: role {role}; the page knows "
                                "only {roles} (read-only)").format(
                                    where=where, role=repr(entry["role"]),
                                    roles=", ".join(ROLES)))
        if not str(entry["password"]).startswith("scrypt$"):
            raise ConfigError(_("ledger.web.users_file: {where}: password must be a hash from "
                                "`dockd ledger hash-password`, never the password "
                                "itself").format(where=where))
        users[str(entry["name"])] = (str(entry["role"]), str(entry["password"]))
    if not users:
        raise ConfigError(_("ledger.web.users_file: {path} names no user").format(path=path))
    return users
