"""The archive's S3 credentials, read from their own file (never from the config).

The file is TOML::

    access_key_id = "AKIA…"
    secret_access_key = "…"

It must not be readable by other users: a secret anyone on the box can read is not a
secret, so such a file is refused rather than used. No message ever contains the secret.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dockd.errors import ConfigError
from dockd.i18n import _

# Printable ASCII without spaces: what S3 implementations accept as keys.
_TOKEN = re.compile(r"^[\x21-\x7e]{1,256}$")


@dataclass(frozen=True)
class ArchiveCredentials:
    """An access key pair. ``repr`` hides the secret so it never lands in a log."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


def load_credentials(path: Path) -> ArchiveCredentials:
    """Read and check the credentials file at ``path``; ConfigError on any problem."""
    try:
        st = os.stat(path)
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(_("archive credentials file {path} does not exist").format(path=path)) from None
    except OSError as exc:
        raise ConfigError(_("archive credentials file {path} cannot be read: {strerror}").format(
                            path=path, strerror=exc.strerror)) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(_("archive credentials file {path} is not a regular file").format(path=path))
    if st.st_mode & stat.S_IROTH:
        raise ConfigError(_("archive credentials file {path} is readable by every user (mode "
                            "{mode:04o}); run chmod 600 on it").format(
                            path=path, mode=stat.S_IMODE(st.st_mode)))
    return parse_credentials(raw, str(path))


def parse_credentials(raw: bytes, name: str) -> ArchiveCredentials:
    """Parse the bytes of a credentials file named ``name`` (for messages)."""
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        # The parser's message may quote the line, and the line may hold the secret.
        raise ConfigError(_("archive credentials file {name} is not valid UTF-8 TOML").format(
                            name=name)) from None
    unknown = sorted(set(data) - {"access_key_id", "secret_access_key"})
    if unknown:
        raise ConfigError(_("archive credentials file {name}: unknown key {value!r} (known: "
                            "access_key_id, secret_access_key)").format(name=name, value=unknown[0]))
    values = []
    for key in ("access_key_id", "secret_access_key"):
        value = data.get(key)
        if not isinstance(value, str) or not _TOKEN.match(value):
            raise ConfigError(_("archive credentials file {name}: {key} is missing or not 1-256 "
                                "printable characters without spaces").format(name=name, key=key))
        values.append(value)
    return ArchiveCredentials(values[0], values[1])
