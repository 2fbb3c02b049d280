"""The ``[daemon]`` section with ``[[daemon.bays]]`` and ``[[daemon.models]]``: how the dock
runs, which USB port is which bay, and which recorder models it accepts."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from dockd.config.health import CHECKS
from dockd.config.reader import TableReader, unique
from dockd.i18n import _

RECORDER_DRIVER_GROUP = "dockd.recorders"
"""The entry-point group recorder driver plugins register in."""
#: ``test-serial`` is the simulator's pseudo-terminal (GA/T 947 test framing, or Ambarella B1
#: frames as a byte stream): no recorder is known to speak over a serial port.
CONTROL_TRANSPORTS = ("sg", "usb", "usb-a9", "test-serial", "none")
_HEX4 = re.compile(r"^[0-9a-fA-F]{4}$")
_HEX4_HINT = "four hex digits such as '4255'"
_PORT = re.compile(r"^\d+-\d+(\.\d+)*$")


@dataclass(frozen=True)
class BaySpec:
    """One physical bay: the USB port path it is wired to, its number and label."""

    port: str
    number: int
    label: str
    led: str | None = None


@dataclass(frozen=True)
class ModelSpec:
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
    #: Art. 4 checks (``battery``, ``storage``, ``clock``) the bureau requires of this model:
    #: a reading the recorder cannot give is then the fault ``check_unavailable`` instead of
    #: ``ready_unchecked``.
    require_checks: tuple[str, ...] = ()
    #: Per-command timeouts of the control protocol; None: the protocol's own (DV16: 2 s reads,
    #: 10 s writes; Ambarella B1: 3 s). ``write_timeout_s`` applies where the protocol has a
    #: separate one (DV16).
    read_timeout_s: float | None = None
    write_timeout_s: float | None = None

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
class DaemonSection:
    """How the daemon runs."""

    device_source: str = "udev"
    spool_dir: Path = Path("/run/dockd/spool")
    mount_root: Path = Path("/run/dockd/bays")
    mounter: str = "mount"
    status_socket: Path = Path("/run/dockd/status.sock")
    max_concurrent_offloads: int = 2
    clear_after_offload: bool = False
    enrolled_only: bool = False  # a recorder known only by its disk must be enrolled
    clock_sync: str = "auto"
    storage_wait_s: float = 60.0
    control_wait_s: float = 10.0
    bays: tuple[BaySpec, ...] = ()
    models: tuple[ModelSpec, ...] = ()

    def bay_for_port(self, port: str) -> BaySpec | None:
        return next((b for b in self.bays if b.port == port), None)


def installed_drivers() -> tuple[str, ...]:
    """The names of the recorder drivers installed as plugins."""
    # Imported here: importlib.metadata and the scan of every installed package cost a
    # twentieth of a second, at every start of every command, for configs without models.
    from importlib.metadata import entry_points

    return tuple(sorted(ep.name for ep in entry_points(group=RECORDER_DRIVER_GROUP)))


def parse_daemon(t: TableReader) -> DaemonSection:
    """Validate ``[daemon]``."""
    bays = t.each_table("bays", _parse_bay)
    unique(t, "bays", [b.port for b in bays], "port")
    unique(t, "bays", [str(b.number) for b in bays], "number")
    found: list[tuple[str, ...]] = []

    def drivers() -> tuple[str, ...]:
        """The installed drivers, looked up once per parse and only when a model needs them."""
        if not found:
            found.append(installed_drivers())
        return found[0]

    models = t.each_table("models", lambda m: _parse_model(m, drivers))
    unique(t, "models", [m.name for m in models], "name")
    d = DaemonSection
    return DaemonSection(
        device_source=t.choice("device_source", d.device_source, ("udev", "spool")),
        spool_dir=t.path("spool_dir", d.spool_dir) or d.spool_dir,
        mount_root=t.path("mount_root", d.mount_root) or d.mount_root,
        mounter=t.choice("mounter", d.mounter, ("mount", "directory")),
        status_socket=t.path("status_socket", d.status_socket) or d.status_socket,
        max_concurrent_offloads=t.integer("max_concurrent_offloads", d.max_concurrent_offloads,
                                          minimum=1, maximum=64),
        clear_after_offload=t.boolean("clear_after_offload", d.clear_after_offload),
        enrolled_only=t.boolean("enrolled_only", d.enrolled_only),
        clock_sync=t.choice("clock_sync", d.clock_sync, ("auto", "assume_synced", "never")),
        storage_wait_s=t.number("storage_wait_s", d.storage_wait_s, minimum=1, maximum=600),
        control_wait_s=t.number("control_wait_s", d.control_wait_s, minimum=0.5, maximum=120),
        bays=bays,
        models=models,
    )


def _parse_bay(t: TableReader) -> BaySpec | None:
    port = t.required_string("port", _PORT, _("a USB port path such as '1-1.3'"))
    if "number" not in t.data:
        t.problem("number", _("missing; every bay needs a number"))
    number = t.integer("number", 0, minimum=1, maximum=999)
    label = t.string("label", f"Bay {number}")
    led = t.optional_string("led")
    t.finish()
    if not port or not number:
        return None
    return BaySpec(port, number, label, led)


def _parse_model(t: TableReader, installed: Callable[[], tuple[str, ...]]) -> ModelSpec | None:
    name = t.required_string("name", hint=_("the model's name"))
    vendor_id = t.required_string("vendor_id", _HEX4, _HEX4_HINT).lower()
    product_id = t.required_string("product_id", _HEX4, _HEX4_HINT).lower()
    driver = t.get("driver", str, "msc")
    if driver not in (drivers := installed()):
        t.problem("driver", _("{driver!r} is not an installed recorder driver; installed: "
                              "{value}").format(driver=driver, value=", ".join(drivers)
                                                or _("none (is dockd installed?)")))
    control = _control(t)
    options = t.table("options")
    opts = {k: options.get(k, str, "") for k in list(options.data)}
    model = ModelSpec(
        name=name,
        vendor_id=vendor_id,
        product_id=product_id,
        driver=driver,
        control=control,
        storage_vendor_id=_optional_hex(t, "storage_vendor_id"),
        storage_product_id=_optional_hex(t, "storage_product_id"),
        password_file=t.path("password_file", None),
        timezone=t.optional_string("timezone"),
        brand=t.string("brand", ""),
        options=MappingProxyType(opts),
        require_checks=t.string_list("require_checks", (), CHECKS),
        read_timeout_s=_optional_seconds(t, "read_timeout_s"),
        write_timeout_s=_optional_seconds(t, "write_timeout_s"),
    )
    if driver == "msc" and control != "none":
        t.problem("control", _("the msc driver has no control port; use 'none'"))
    if driver != "msc" and control == "none" and not t.has_problem("control"):
        t.problem("control", _("the {driver} driver needs a control transport").format(driver=driver))
    if control == "none":
        for key in ("read_timeout_s", "write_timeout_s"):
            if key in t.data:
                t.problem(key, _("only a model with a control transport has command timeouts"))
    t.finish()
    if not (name and vendor_id and product_id) or t.has_problem("driver"):
        return None
    return model


def _control(t: TableReader) -> str:
    if t.data.get("control") == "serial":  # what earlier versions offered
        t.problem("control", _("no recorder is known to speak over a serial port: a GA/T 947 recorder "
                               "uses 'sg' (the DV16 SCSI path), an Ambarella one 'usb' or 'usb-a9'; "
                               "'test-serial' is the simulator's"))
        return "none"
    return t.choice("control", "none", CONTROL_TRANSPORTS)


def _optional_seconds(t: TableReader, name: str) -> float | None:
    if name not in t.data:
        return None
    return t.number(name, 0.0, minimum=0.1, maximum=120)


def _optional_hex(t: TableReader, name: str) -> str | None:
    value = t.optional_string(name, _HEX4, _("four hex digits"))
    return value.lower() if value else None
