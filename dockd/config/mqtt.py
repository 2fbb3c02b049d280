"""The ``[mqtt]`` section: which broker, how to authenticate, how to publish.

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
    drain_on_stop_s = 3.0                            # a clean stop publishes the outbox for up to this long
    [mqtt.homeassistant]
    enabled = false
    prefix = "homeassistant"

The password never sits in this file: the config names a file (mode 0600, owned by the
service) that holds it.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from dockd.config.reader import TableReader
from dockd.errors import ConfigError
from dockd.i18n import _

PROTOCOLS = ("5", "3.1.1")
# One topic level: no wildcards, no separators, no NUL; what MQTT and the ACL can express.
TOPIC_LEVEL_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
TOPIC_LEVEL_HINT = "one topic level: letters, digits, '_', '.', '-' (at most 64)"
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{0,128}$")
DEFAULT_BROKER = "mqtt://localhost:1883"


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
    drain_on_stop_s: float = 3.0
    homeassistant: HomeAssistantSection = field(default_factory=HomeAssistantSection)


def parse_mqtt(t: TableReader) -> MqttSection:
    """Validate ``[mqtt]``."""
    d = MqttSection
    broker = _broker(t)
    section = MqttSection(
        enabled=t.boolean("enabled", d.enabled),
        broker=broker,
        prefix=t.string("prefix", d.prefix, TOPIC_LEVEL_PATTERN, TOPIC_LEVEL_HINT),
        protocol=t.choice("protocol", d.protocol, PROTOCOLS),
        client_id=t.string("client_id", d.client_id, CLIENT_ID_PATTERN,
                           _("letters, digits, '_', '.', ':', '-' (at most 128)")),
        keepalive_s=t.integer("keepalive_s", d.keepalive_s, minimum=5, maximum=3600),
        session_expiry_s=t.integer("session_expiry_s", d.session_expiry_s, minimum=0,
                                   maximum=0xFFFFFFFF),
        credentials_file=t.path("credentials_file", None),
        ca_file=t.path("ca_file", None),
        cert_file=t.path("cert_file", None),
        key_file=t.path("key_file", None),
        inflight_window=t.integer("inflight_window", d.inflight_window, minimum=1, maximum=65535),
        outbox_alert_rows=t.integer("outbox_alert_rows", d.outbox_alert_rows, minimum=1),
        reconnect_min_s=t.number("reconnect_min_s", d.reconnect_min_s, minimum=0.05, maximum=3600),
        reconnect_max_s=t.number("reconnect_max_s", d.reconnect_max_s, minimum=0.05, maximum=3600),
        poll_interval_s=t.number("poll_interval_s", d.poll_interval_s, minimum=0.01, maximum=60),
        drain_on_stop_s=t.number("drain_on_stop_s", d.drain_on_stop_s, minimum=0, maximum=60),
        homeassistant=_homeassistant(t.table("homeassistant")),
    )
    if section.reconnect_max_s < section.reconnect_min_s:
        t.problem("reconnect_max_s", _("must not be below reconnect_min_s"))
    if (section.cert_file is None) != (section.key_file is None):
        t.problem("cert_file", _("a client certificate needs both cert_file and key_file"))
    if not broker.tls and (section.ca_file or section.cert_file):
        t.problem("broker", _("ca_file/cert_file are set but the broker URL is not mqtts://; use "
                              "mqtts:// so the certificates are used"))
    return section


def parse_broker_url(url: str, key: str = "broker") -> Broker:
    """``mqtt://host[:port]`` or ``mqtts://host[:port]``; ConfigError with the key otherwise."""
    broker = _broker_or_problem(url)
    if isinstance(broker, str):
        raise ConfigError(_("{key}: {problem}").format(key=key, problem=broker))
    return broker


def _broker_or_problem(url: str) -> Broker | str:
    # The problem without the key: the config reader adds its own.
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("mqtt", "mqtts"):
        return _("{url!r} is not valid; expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]").format(
            url=url)
    if parsed.username or parsed.password:
        return _("put the username and password in credentials_file, not in the URL")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        return _("{url!r} has a path or query; expected mqtt(s)://HOST[:PORT]").format(url=url)
    try:
        port = parsed.port
    except ValueError:
        return _("{url!r} has an invalid port").format(url=url)
    if not parsed.hostname:
        return _("{url!r} names no host").format(url=url)
    tls = parsed.scheme == "mqtts"
    return Broker(parsed.hostname, port or (8883 if tls else 1883), tls)


def _broker(t: TableReader) -> Broker:
    url = t.get("broker", str, DEFAULT_BROKER)
    broker = _broker_or_problem(url)
    if isinstance(broker, str):
        t.problem("broker", broker)
        return parse_broker_url(DEFAULT_BROKER)
    return broker


def _homeassistant(t: TableReader) -> HomeAssistantSection:
    d = HomeAssistantSection
    section = HomeAssistantSection(
        enabled=t.boolean("enabled", d.enabled),
        prefix=t.string("prefix", d.prefix, TOPIC_LEVEL_PATTERN, TOPIC_LEVEL_HINT),
    )
    t.finish()
    return section
