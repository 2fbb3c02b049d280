"""The ``[metrics]`` section: an optional Prometheus text endpoint on this dock's loopback.

::

    [metrics]
    enabled = false
    host = "127.0.0.1"     # loopback only: 127.0.0.0/8, ::1 or localhost
    port = 9471

Loopback only: the bureau's network reaches the dock through MQTT; a local Prometheus (or a
node exporter's textfile collector, or an SSH tunnel) scrapes this.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dockd.config.reader import TableReader
from dockd.i18n import _


@dataclass(frozen=True)
class MetricsSection:
    """The parsed ``[metrics]`` section."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9471


def parse_metrics(t: TableReader) -> MetricsSection:
    """Validate ``[metrics]``."""
    d = MetricsSection
    host = t.get("host", str, d.host)
    if not _is_loopback(host):
        t.problem("host", _("{host!r} is not a loopback address; the metrics endpoint listens only on "
                            "127.0.0.1, ::1 or localhost").format(host=host))
        host = d.host
    return MetricsSection(enabled=t.boolean("enabled", d.enabled), host=host,
                          port=t.integer("port", d.port, minimum=1, maximum=65535))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
