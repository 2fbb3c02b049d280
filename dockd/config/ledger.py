"""The ``[ledger]`` config section of the bureau's central ledger (not of a dock).

::

    [ledger]
    database = "postgresql://dockd_ledger@db.bureau.example/dockd_ledger"
    database_password_file = "/etc/dockd/ledger-db.password"  # optional; line 1 = password
    share_group = "ledger"        # MQTT 5 shared subscription group; "" = none
    batch_max = 500               # messages per PostgreSQL transaction at most
    batch_wait_s = 0.05           # how long a batch may wait to fill
    receive_maximum = 2000        # QoS 1 messages the broker may have awaiting our ack
    max_payload_bytes = 262144    # larger messages are rejected (kept: first 4 KiB + hash)
    gap_grace_s = 30              # a hole older than this is an open gap alert
    verify_interval_s = 5         # how often holes and the verified-to mark are worked out
    archive_retry_s = 300         # how often an open gap is looked for again in the archive
    replay_after_s = 3600         # a kept record published afresh this much later: replayed
    reconnect_min_s = 1.0         # PostgreSQL reconnect back-off
    reconnect_max_s = 60.0
    undocked_alert_hours = 48     # bureau reports: "not docked since"
    timezone = "Asia/Shanghai"    # reports' local days and weeks
    [ledger.mqtt]                 # the broker: same keys as a dock's [mqtt]
    broker = "mqtts://broker.bureau.example:8883"
    client_id = "dockd-ledger-1"  # one per instance; keeps the persistent session
    [ledger.archive]              # optional: the WORM bucket gaps are filled from (read only)
    endpoint_url = "https://s3.archive.bureau.example"
    bucket = "dockd-evidence"
    credentials_file = "/etc/dockd/ledger-archive-credentials.toml"
    [ledger.web]
    listen = "127.0.0.1:8480"
    auth = "basic"                # "basic" (users_file, TLS required) or "proxy"
    users_file = "/etc/dockd/ledger-users.toml"
    tls_cert_file = "/etc/dockd/ledger.crt"
    tls_key_file = "/etc/dockd/ledger.key"
    proxy_user_header = "X-Remote-User"
    proxy_trusted = ["127.0.0.1"] # only these peers may set the header

Parsed with the rest of the file into ``Config.ledger`` (None on a dock); every bad value
is a problem under its dotted key like everywhere.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from dockd.config.archive import ArchiveSection, parse_archive
from dockd.config.mqtt import MqttSection, parse_mqtt
from dockd.config.reader import TableReader
from dockd.i18n import _

_SHARE_GROUP = re.compile(r"^[A-Za-z0-9_-]{0,64}$")
_DATABASE = re.compile(r"^postgres(ql)?://\S+$")
_LISTEN = re.compile(r"^(?P<host>[A-Za-z0-9.:\[\]-]+):(?P<port>\d{1,5})$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
AUTH_MODES = ("basic", "proxy")


@dataclass(frozen=True)
class WebSection:
    """``[ledger.web]``: where the supervision page listens and who may read it."""

    host: str = "127.0.0.1"
    port: int = 8480
    auth: str = "basic"
    users_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    proxy_user_header: str = "X-Remote-User"
    proxy_trusted: tuple[str, ...] = ("127.0.0.1", "::1")
    allow_plain_http: bool = False  # basic auth without TLS: tests and loopback only


@dataclass(frozen=True)
class LedgerSection:
    """The parsed ``[ledger]`` section."""

    database: str = ""
    database_password_file: Path | None = None
    share_group: str = "ledger"
    batch_max: int = 500
    batch_wait_s: float = 0.05
    receive_maximum: int = 2000
    max_payload_bytes: int = 256 << 10
    gap_grace_s: float = 30.0
    verify_interval_s: float = 5.0
    archive_retry_s: float = 300.0
    replay_after_s: float = 3600.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    undocked_alert_hours: int = 48
    timezone: str = "Asia/Shanghai"
    mqtt: MqttSection = field(default_factory=MqttSection)
    archive: ArchiveSection | None = None
    web: WebSection | None = None  # None: no [ledger.web], `dockd ledger serve` refuses

    @property
    def tz(self) -> dt.tzinfo:
        return zoneinfo.ZoneInfo(self.timezone)


def parse_ledger(t: TableReader) -> LedgerSection | None:
    """Validate ``[ledger]``; None when the section is absent (a dock's config)."""
    if not t.data:
        return None
    d = LedgerSection
    mqtt_table = t.table("mqtt")
    mqtt = parse_mqtt(mqtt_table)
    mqtt_table.finish()
    archive_table = t.table("archive")
    archive = parse_archive(archive_table)
    archive_table.finish()
    web_table = t.table("web")
    web = _parse_web(web_table)
    web_table.finish()
    timezone = t.get("timezone", str, d.timezone)
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        t.problem("timezone", _("{timezone!r} is not a time zone (e.g. Asia/Shanghai)").format(
                                timezone=timezone))
        timezone = d.timezone
    database = t.required_string("database", _DATABASE, _("a postgresql:// URL (the password goes in "
                                                          "database_password_file)"))
    if "@" in database and ":" in database.split("://", 1)[-1].split("@", 1)[0]:
        t.problem("database", _("put the password in database_password_file, not in the URL"))
        database = ""
    section = LedgerSection(
        database=database,
        database_password_file=t.path("database_password_file", None),
        share_group=t.string("share_group", d.share_group, _SHARE_GROUP,
                             _("letters, digits, '_' or '-' (empty: no shared subscription)")),
        batch_max=t.integer("batch_max", d.batch_max, minimum=1, maximum=100_000),
        batch_wait_s=t.number("batch_wait_s", d.batch_wait_s, minimum=0.0, maximum=10),
        receive_maximum=t.integer("receive_maximum", d.receive_maximum, minimum=1,
                                  maximum=65535),
        max_payload_bytes=t.integer("max_payload_bytes", d.max_payload_bytes, minimum=1024,
                                    maximum=256 << 20),
        gap_grace_s=t.number("gap_grace_s", d.gap_grace_s, minimum=0.0, maximum=86400),
        verify_interval_s=t.number("verify_interval_s", d.verify_interval_s, minimum=0.05,
                                   maximum=3600),
        archive_retry_s=t.number("archive_retry_s", d.archive_retry_s, minimum=0.0,
                                 maximum=86400),
        replay_after_s=t.number("replay_after_s", d.replay_after_s, minimum=1.0,
                                maximum=365 * 86400),
        reconnect_min_s=t.number("reconnect_min_s", d.reconnect_min_s, minimum=0.01,
                                 maximum=3600),
        reconnect_max_s=t.number("reconnect_max_s", d.reconnect_max_s, minimum=0.01,
                                 maximum=3600),
        undocked_alert_hours=t.integer("undocked_alert_hours", d.undocked_alert_hours,
                                       minimum=1, maximum=8760),
        timezone=timezone, mqtt=mqtt, archive=archive, web=web)
    if section.batch_max > section.receive_maximum:
        t.problem("batch_max", _("must not exceed receive_maximum ({receive_maximum}); a batch could "
                                 "never fill").format(receive_maximum=section.receive_maximum))
    if section.reconnect_max_s < section.reconnect_min_s:
        t.problem("reconnect_max_s", _("must not be below reconnect_min_s"))
    return section


def parse_listen(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[v6]:PORT`` too); None when it is not one."""
    match = _LISTEN.match(text)
    if not match or not 0 < int(match["port"]) < 65536:
        return None
    return match["host"].strip("[]"), int(match["port"])


def _parse_web(t: TableReader) -> WebSection | None:
    if not t.data:
        return None
    d = WebSection
    listen = t.get("listen", str, f"{d.host}:{d.port}")
    host_port = parse_listen(listen)
    if host_port is None:
        t.problem("listen", _("{listen!r} is not HOST:PORT").format(listen=listen))
        host_port = (d.host, d.port)
    trusted = t.string_list("proxy_trusted", d.proxy_trusted)
    for net in trusted:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            t.problem("proxy_trusted", _("{net!r} is not an address or network").format(net=net))
    section = WebSection(
        host=host_port[0], port=host_port[1],
        auth=t.choice("auth", d.auth, AUTH_MODES),
        users_file=t.path("users_file", None),
        tls_cert_file=t.path("tls_cert_file", None),
        tls_key_file=t.path("tls_key_file", None),
        proxy_user_header=t.string("proxy_user_header", d.proxy_user_header, _HEADER,
                                   _("an HTTP header name")),
        proxy_trusted=trusted,
        allow_plain_http=t.boolean("allow_plain_http", d.allow_plain_http))
    if (section.tls_cert_file is None) != (section.tls_key_file is None):
        t.problem("tls_cert_file", _("TLS needs both tls_cert_file and tls_key_file"))
    if section.auth == "basic":
        if section.users_file is None:
            t.problem("users_file", _('auth = "basic" needs a users_file'))
        elif section.tls_cert_file is None and not section.allow_plain_http:
            t.problem("tls_cert_file", _("HTTP basic auth sends the password with every request; set "
                                         'tls_cert_file/tls_key_file (or auth = "proxy" behind the '
                                         "bureau's TLS proxy)"))
    return section
