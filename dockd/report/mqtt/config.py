"""The ``[mqtt]`` config section: which broker, how to authenticate, how to publish.

::

    [mqtt]
    enabled = true
    broker = "mqtts://broker.bureau.example:8883"   # mqtt:// (1883) or mqtts:// (8883, TLS)
    prefix = "dockd"                                 # first level of every topic
    protocol = "5"                                   # "5" or "3.1.1"
    client_id = ""                                   # default: dockd-<site>-<dock>
    keepalive_s = 30
    session_expiry_s = 86400
    credentials_file = "/etc/dockd/mqtt.credentials" # line 1 username, line 2 password
    ca_file = "/etc/dockd/mqtt-ca.pem"               # TLS: CA of the broker certificate
    cert_file = "/etc/dockd/dock.crt"                # TLS: client certificate (optional)
    key_file = "/etc/dockd/dock.key"                 # TLS: its key (with cert_file)
    inflight_window = 100                            # QoS 1 messages awaiting PUBACK at once
    outbox_alert_rows = 10000                        # unsent rows that raise an alert
    reconnect_min_s = 1.0
    reconnect_max_s = 60.0
    poll_interval_s = 0.2                            # how often rows of other processes are looked for
    [mqtt.homeassistant]
    enabled = false
    prefix = "homeassistant"

The password never sits in this file: the config names a file (mode 0600, owned by the
service) that holds it.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from dockd.config import TableReader, register_section
from dockd.errors import ConfigError

log = logging.getLogger(__name__)

PROTOCOLS = ("5", "3.1.1")
# One topic level: no wildcards, no separators, no NUL; what MQTT and the ACL can express.
TOPIC_LEVEL_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{0,128}$")


@dataclass(frozen=True)
class Broker:
    """Where the broker is: host, port and whether the link is TLS."""

    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class Credentials:
    """Username and password read from the credentials file."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class HomeAssistantSection:
    """Home Assistant MQTT discovery (off unless asked for)."""

    enabled: bool = False
    prefix: str = "homeassistant"


@dataclass(frozen=True)
class MqttSection:
    """The parsed ``[mqtt]`` section."""

    enabled: bool = False
    broker: Broker = field(default_factory=lambda: Broker("localhost", 1883, False))
    prefix: str = "dockd"
    protocol: str = "5"
    client_id: str = ""
    keepalive_s: int = 30
    session_expiry_s: int = 86400
    credentials_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    inflight_window: int = 100
    outbox_alert_rows: int = 10000
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    poll_interval_s: float = 0.2
    homeassistant: HomeAssistantSection = field(default_factory=HomeAssistantSection)


def parse_mqtt(t: TableReader) -> MqttSection:
    """Validate ``[mqtt]`` (the caller checks for unknown keys at this level)."""
    broker_key = t.key("broker")
    broker = parse_broker_url(t.get("broker", str, "mqtt://localhost:1883"), broker_key)
    ha_table = t.table("homeassistant")
    ha = HomeAssistantSection(
        enabled=ha_table.boolean("enabled", False),
        prefix=ha_table.string("prefix", "homeassistant", TOPIC_LEVEL_PATTERN,
                               "one topic level: letters, digits, '_', '.', '-'"),
    )
    ha_table.finish()
    section = MqttSection(
        enabled=t.boolean("enabled", False),
        broker=broker,
        prefix=t.string("prefix", "dockd", TOPIC_LEVEL_PATTERN,
                        "one topic level: letters, digits, '_', '.', '-' (at most 64)"),
        protocol=t.choice("protocol", "5", PROTOCOLS),
        client_id=t.string("client_id", "", CLIENT_ID_PATTERN,
                           "letters, digits, '_', '.', ':', '-' (at most 128)"),
        keepalive_s=t.integer("keepalive_s", 30, minimum=5, maximum=3600),
        session_expiry_s=t.integer("session_expiry_s", 86400, minimum=0, maximum=0xFFFFFFFF),
        credentials_file=t.path("credentials_file", None),
        ca_file=t.path("ca_file", None),
        cert_file=t.path("cert_file", None),
        key_file=t.path("key_file", None),
        inflight_window=t.integer("inflight_window", 100, minimum=1, maximum=65535),
        outbox_alert_rows=t.integer("outbox_alert_rows", 10000, minimum=1),
        reconnect_min_s=t.number("reconnect_min_s", 1.0, minimum=0.05, maximum=3600),
        reconnect_max_s=t.number("reconnect_max_s", 60.0, minimum=0.05, maximum=3600),
        poll_interval_s=t.number("poll_interval_s", 0.2, minimum=0.01, maximum=60),
        homeassistant=ha,
    )
    if section.reconnect_max_s < section.reconnect_min_s:
        raise ConfigError(f"{t.key('reconnect_max_s')}: must not be below reconnect_min_s")
    if (section.cert_file is None) != (section.key_file is None):
        raise ConfigError(f"{t.key('cert_file')}: a client certificate needs both cert_file "
                          "and key_file")
    if not broker.tls and (section.ca_file or section.cert_file):
        raise ConfigError(f"{broker_key}: ca_file/cert_file are set but the broker URL is not "
                          "mqtts://; use mqtts:// so the certificates are used")
    return section


def parse_broker_url(url: str, key: str = "broker") -> Broker:
    """``mqtt://host[:port]`` or ``mqtts://host[:port]``; ConfigError with the key otherwise."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"{key}: {url!r} is not valid; expected mqtt://HOST[:PORT] or "
                          "mqtts://HOST[:PORT]")
    if parsed.username or parsed.password:
        raise ConfigError(f"{key}: put the username and password in credentials_file, "
                          "not in the URL")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ConfigError(f"{key}: {url!r} has a path or query; expected mqtt(s)://HOST[:PORT]")
    try:
        port = parsed.port
    except ValueError:
        raise ConfigError(f"{key}: {url!r} has an invalid port") from None
    if not parsed.hostname:
        raise ConfigError(f"{key}: {url!r} names no host")
    tls = parsed.scheme == "mqtts"
    return Broker(parsed.hostname, port or (8883 if tls else 1883), tls)


def read_credentials(path: Path) -> Credentials:
    """Line 1 the username, line 2 the password (UTF-8); ConfigError when unusable."""
    try:
        mode = path.stat().st_mode
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"mqtt.credentials_file: {path} does not exist") from None
    except PermissionError:
        raise ConfigError(f"mqtt.credentials_file: {path} is not readable by this user") from None
    except UnicodeDecodeError:
        raise ConfigError(f"mqtt.credentials_file: {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"mqtt.credentials_file: {path} cannot be read: {exc.strerror}") from None
    if mode & 0o077:
        # Not fatal (the admin may be mid-setup), but a readable password must be seen.
        log.warning("MQTT credentials file is readable by group or others; chmod 600 it",
                    extra={"path": str(path)})
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].strip():
        raise ConfigError(f"mqtt.credentials_file: {path} must hold the username on line 1 "
                          "and the password on line 2")
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
            raise ConfigError(f"mqtt.{name}: {path} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"mqtt.{name}: {path} cannot be read: {exc.strerror}") from None


register_section("mqtt", parse_mqtt)
