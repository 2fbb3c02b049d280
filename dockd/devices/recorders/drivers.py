"""The three driver plugins named in the ``dockd.recorders`` entry points.

Transport modules are imported inside ``open`` so that listing the drivers does not import
pyusb or pyserial on a dock that never uses them.
"""

from __future__ import annotations

import logging

from dockd.clock import Clock
from dockd.devices.recorders.base import RecorderSession, TransportSpec
from dockd.devices.recorders.wallclock import recorder_zone
from dockd.errors import ConfigError
from dockd.i18n import _

log = logging.getLogger(__name__)


class Gat947Driver:
    """GA/T 947 function set over DV16 SCSI pass-through (``sg``, the public JL layout), or over
    the simulator's test framing (``test-serial``, which no recorder speaks)."""

    name = "gat947"

    def transports(self) -> frozenset[str]:
        """``sg`` and ``test-serial``."""
        return frozenset({"sg", "test-serial"})

    def open(self, spec: TransportSpec, password: bytes | None, clock: Clock) -> RecorderSession:
        """Connect, run Init_Device and the battery read that checks the password."""
        from dockd.devices.recorders.gat947_session import Gat947Session

        zone = recorder_zone(spec.timezone)
        _check_kind(self, spec)
        if spec.kind == "test-serial":
            from dockd.devices.recorders.gat947_serial import SimFramingSession, open_serial_link

            return SimFramingSession(open_serial_link(_need_path(spec), spec.timeout_s),
                                     password, clock, zone)
        from dockd.devices.recorders.gat947_scsi import open_scsi_link

        return Gat947Session(open_scsi_link(spec.path, spec.timeout_s, spec.write_timeout_s),
                             password, clock, zone)


class AmbaDriver:
    """Ambarella 4255:0001: B1 frames over USB bulk, B2 control packets; B1 frames over the
    simulator's pseudo-terminal (``test-serial``)."""

    name = "amba"

    def transports(self) -> frozenset[str]:
        """``usb`` (B1 bulk), ``usb-a9`` (B2) and ``test-serial`` (B1 stream, simulator)."""
        return frozenset({"usb", "usb-a9", "test-serial"})

    def open(self, spec: TransportSpec, password: bytes | None, clock: Clock) -> RecorderSession:
        """Claim the device (or open the port), log in and read the device ID."""
        from dockd.devices.recorders.amba_session import AmbaSession

        zone = recorder_zone(spec.timezone)
        _check_kind(self, spec)
        if spec.kind == "test-serial":
            from dockd.devices.recorders.amba_stream import open_stream_link

            log.warning("control transport test-serial: Ambarella B1 frames over a serial "
                        "port, which no recorder is known to use; for tests and the demo only")
            return AmbaSession(open_stream_link(_need_path(spec), spec.timeout_s), password,
                               clock, zone)
        from dockd.devices.recorders import amba_usb

        device = amba_usb.find_usb_device(spec)
        timeout_ms = int(spec.timeout_s * 1000) if spec.timeout_s else amba_usb.DEFAULT_TIMEOUT_MS
        if spec.kind == "usb-a9":
            from dockd.devices.recorders.amba_a9 import A9Session

            amba_usb.usb_call(lambda: device.set_configuration(), "set_configuration")
            serial = spec.usb_serial or amba_usb.usb_call(lambda: device.serial_number,
                                                          "read serial number")
            return A9Session(device, serial, password, clock, timeout_ms)
        amba_usb.claim(device)
        return AmbaSession(amba_usb.UsbBulkAmbaLink(device, timeout_ms), password, clock, zone)


class MscDriver:
    """Plain USB mass storage: identity from the USB serial, storage from the volume."""

    name = "msc"

    def transports(self) -> frozenset[str]:
        """``volume``."""
        return frozenset({"volume"})

    def open(self, spec: TransportSpec, password: bytes | None, clock: Clock) -> RecorderSession:
        """No login: a plain disk has no password."""
        from dockd.devices.recorders.msc import MscSession

        _check_kind(self, spec)
        return MscSession(spec, clock)


def _check_kind(driver: Gat947Driver | AmbaDriver | MscDriver, spec: TransportSpec) -> None:
    if spec.kind not in driver.transports():
        raise ConfigError(_("recorder driver {name!r} cannot use transport {kind!r}; it speaks "
                            "{transports}").format(name=driver.name, kind=spec.kind,
                                                   transports=", ".join(sorted(driver.transports()))))


def _need_path(spec: TransportSpec) -> str:
    if not spec.path:
        raise ConfigError(_("transport {kind!r} needs a device path").format(kind=spec.kind))
    return spec.path
