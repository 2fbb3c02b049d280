"""The dock runtime's config: ``[daemon]`` (with ``[[daemon.bays]]`` and
``[[daemon.models]]``) and ``[health]``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dockd.config import Config, TableReader, register_section
from dockd.errors import ConfigError

_HEX4 = re.compile(r"^[0-9a-fA-F]{4}$")
_PORT = re.compile(r"^\d+-\d+(\.\d+)*$")
DRIVERS = ("gat947", "amba", "msc")
CONTROL_TRANSPORTS = ("serial", "sg", "usb", "usb-a9", "none")


@dataclass(frozen=True)
class BaySettings:
    """One physical bay: the USB port path it is wired to, its number and label."""

    port: str
    number: int
    label: str
    led: str | None = None


@dataclass(frozen=True)
class ModelSettings:
    """A recorder model the dock accepts, and how to talk to it."""

    name: str
    vendor_id: str
    product_id: str
    driver: str
    control: str = "none"
    storage_vendor_id: str | None = None
    storage_product_id: str | None = None
    password_file: Path | None = None
    timezone: str | None = None
    brand: str = ""
    options: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def matches(self, vendor_id: str | None, product_id: str | None) -> bool:
        ids = {(self.vendor_id, self.product_id)}
        if self.storage_vendor_id and self.storage_product_id:
            ids.add((self.storage_vendor_id, self.storage_product_id))
        return (str(vendor_id).lower(), str(product_id).lower()) in ids

    @property
    def two_phase(self) -> bool:
        """Docks first in control mode, then re-enumerates as mass storage."""
        return self.control != "none"


@dataclass(frozen=True)
class DaemonSettings:
    """How the daemon runs."""

    device_source: str = "udev"
    spool_dir: Path = Path("/run/dockd/spool")
    mount_root: Path = Path("/run/dockd/bays")
    mounter: str = "mount"
    status_socket: Path = Path("/run/dockd/status.sock")
    max_concurrent_offloads: int = 2
    clear_after_offload: bool = False
    clock_sync: str = "auto"
    storage_wait_s: float = 60.0
    control_wait_s: float = 10.0
    bays: tuple[BaySettings, ...] = ()
    models: tuple[ModelSettings, ...] = ()

    def bay_for_port(self, port: str) -> BaySettings | None:
        return next((b for b in self.bays if b.port == port), None)


@dataclass(frozen=True)
class HealthSettings:
    """Thresholds of the checks made at every dock (rules art. 4)."""

    battery_min_percent: int = 30
    storage_min_free_percent: float = 10.0
    max_clock_drift_s: float = 2.0
    set_clock: bool = True


def daemon_settings(config: Config) -> DaemonSettings:
    value = config.extra_sections.get("daemon")
    return value if isinstance(value, DaemonSettings) else DaemonSettings()


def health_settings(config: Config) -> HealthSettings:
    value = config.extra_sections.get("health")
    return value if isinstance(value, HealthSettings) else HealthSettings()


def _parse_daemon(t: TableReader) -> DaemonSettings:
    bays = tuple(_parse_bay(b) for b in t.tables("bays"))
    _unique(t.key("bays"), [b.port for b in bays], "port")
    _unique(t.key("bays"), [str(b.number) for b in bays], "number")
    models = tuple(_parse_model(m) for m in t.tables("models"))
    _unique(t.key("models"), [m.name for m in models], "name")
    d = DaemonSettings
    return DaemonSettings(
        device_source=t.choice("device_source", d.device_source, ("udev", "spool")),
        spool_dir=t.path("spool_dir", d.spool_dir) or d.spool_dir,
        mount_root=t.path("mount_root", d.mount_root) or d.mount_root,
        mounter=t.choice("mounter", d.mounter, ("mount", "directory")),
        status_socket=t.path("status_socket", d.status_socket) or d.status_socket,
        max_concurrent_offloads=t.integer("max_concurrent_offloads", 2, minimum=1, maximum=64),
        clear_after_offload=t.boolean("clear_after_offload", False),
        clock_sync=t.choice("clock_sync", "auto", ("auto", "assume_synced", "never")),
        storage_wait_s=t.number("storage_wait_s", 60.0, minimum=1, maximum=600),
        control_wait_s=t.number("control_wait_s", 10.0, minimum=0.5, maximum=120),
        bays=bays,
        models=models,
    )


def _parse_bay(t: TableReader) -> BaySettings:
    port = t.string("port", "", _PORT, "a USB port path such as '1-1.3'")
    number = t.integer("number", 0, minimum=1, maximum=999)
    if not port or not number:
        raise ConfigError(f"{t.prefix}: needs both 'port' and 'number'")
    bay = BaySettings(port, number, t.string("label", f"Bay {number}"),
                      t.get("led", (str, type(None)), None))
    t.finish()
    return bay


def _parse_model(t: TableReader) -> ModelSettings:
    hint = "four hex digits such as '4255'"
    name = t.string("name", "")
    if not name:
        raise ConfigError(f"{t.key('name')}: every model needs a name")
    options = t.table("options")
    opts = {k: options.get(k, str, "") for k in list(options.data)}
    model = ModelSettings(
        name=name,
        vendor_id=t.string("vendor_id", "", _HEX4, hint).lower(),
        product_id=t.string("product_id", "", _HEX4, hint).lower(),
        driver=t.choice("driver", "msc", DRIVERS),
        control=t.choice("control", "none", CONTROL_TRANSPORTS),
        storage_vendor_id=_opt_hex(t, "storage_vendor_id"),
        storage_product_id=_opt_hex(t, "storage_product_id"),
        password_file=t.path("password_file", None),
        timezone=t.get("timezone", (str, type(None)), None),
        brand=t.string("brand", ""),
        options=MappingProxyType(opts),
    )
    if model.driver == "msc" and model.control != "none":
        raise ConfigError(f"{t.key('control')}: the msc driver has no control port; use 'none'")
    if model.driver != "msc" and model.control == "none":
        raise ConfigError(f"{t.key('control')}: the {model.driver} driver needs a control transport")
    t.finish()
    return model


def _opt_hex(t: TableReader, name: str) -> str | None:
    value: Any = t.get(name, (str, type(None)), None)
    if value is not None and not _HEX4.match(value):
        raise ConfigError(f"{t.key(name)}: {value!r} is not valid; expected four hex digits")
    return value.lower() if value else None


def _unique(key: str, values: list[str], what: str) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"{key}: {what} {v!r} appears twice")
        seen.add(v)


def _parse_health(t: TableReader) -> HealthSettings:
    return HealthSettings(
        battery_min_percent=t.integer("battery_min_percent", 30, minimum=0, maximum=100),
        storage_min_free_percent=t.number("storage_min_free_percent", 10.0, minimum=0, maximum=100),
        max_clock_drift_s=t.number("max_clock_drift_s", 2.0, minimum=0, maximum=86400),
        set_clock=t.boolean("set_clock", True),
    )


register_section("daemon", _parse_daemon)
register_section("health", _parse_health)
