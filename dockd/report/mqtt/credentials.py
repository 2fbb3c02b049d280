"""The files that ``[mqtt]`` names: the broker credentials and the TLS certificates.

Read when the reporter starts (not at first connect), so a missing or unreadable file is
reported at once with the key that names it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from dockd.config.mqtt import MqttSection
from dockd.errors import ConfigError
from dockd.i18n import _

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    """Username and password read from the credentials file."""

    username: str
    password: str = field(repr=False)


def read_credentials(path: Path) -> Credentials:
    """Line 1 the username, line 2 the password (UTF-8); ConfigError when unusable."""
    try:
        mode = path.stat().st_mode
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(_("mqtt.credentials_file: {path} does not exist").format(path=path)) from None
    except PermissionError:
        raise ConfigError(_("mqtt.credentials_file: {path} is not readable by this user").format(
                            path=path)) from None
    except UnicodeDecodeError:
        raise ConfigError(_("mqtt.credentials_file: {path} is not UTF-8 text").format(path=path)) from None
    except OSError as exc:
        raise ConfigError(_("mqtt.credentials_file: {path} cannot be read: {strerror}").format(
                            path=path, strerror=exc.strerror)) from None
    if mode & 0o077:
        # Not fatal (the admin may be mid-setup), but a readable password must be seen.
        log.warning("MQTT credentials file is readable by group or others; chmod 600 it",
                    extra={"path": str(path)})
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].strip():
        raise ConfigError(_("mqtt.credentials_file: {path} must hold the username on line 1 and the "
                            "password on line 2").format(path=path))
    return Credentials(lines[0].strip(), lines[1])


def check_tls_files(section: MqttSection) -> None:
    """Every named TLS file exists and is readable (checked at start, not at first connect)."""
    for name in ("ca_file", "cert_file", "key_file"):
        path: Path | None = getattr(section, name)
        if path is None:
            continue
        try:
            with path.open("rb"):
                pass
        except FileNotFoundError:
            raise ConfigError(_("mqtt.{name}: {path} does not exist").format(
                                name=name, path=path)) from None
        except OSError as exc:
            raise ConfigError(_("mqtt.{name}: {path} cannot be read: {strerror}").format(
                                name=name, path=path, strerror=exc.strerror)) from None


