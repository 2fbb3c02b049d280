"""Ambarella recorders on USB 4255:0001 via pyusb: B1 bulk frames and B2 ("A9") control packets."""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from typing import Any

import usb.core
import usb.util

from dockd.devices.recorders.amba_protocol import MAX_REPLY
from dockd.devices.recorders.base import (
    ProtocolError,
    RecorderError,
    RecorderGone,
    RecorderTimeout,
    TransportSpec,
)
from dockd.i18n import _

log = logging.getLogger(__name__)

VENDOR_ID = 0x4255
PRODUCT_ID = 0x0001
# What the public hosts hard-code and recorders are documented with. The driver does not rely
# on it: it reads the addresses from interface 0's descriptors (bulk_endpoints), because the
# device chooses them (a USB gadget's UDC, for one, hands out 0x02 OUT / 0x81 IN).
EP_OUT = 0x01
EP_IN = 0x81
INTERFACE = 0
DEFAULT_TIMEOUT_MS = 3000


@dataclass(frozen=True)
class BulkEndpoints:
    """The bulk endpoint addresses of the recorder's control interface."""

    out: int = EP_OUT
    in_: int = EP_IN


def find_usb_device(spec: TransportSpec) -> Any:
    """The 4255:0001 device the spec names (by serial, or by bus and address)."""
    try:
        devices = list(usb.core.find(find_all=True, idVendor=VENDOR_ID, idProduct=PRODUCT_ID))
    except usb.core.NoBackendError as exc:
        raise RecorderError(_("pyusb finds no libusb backend; install libusb-1.0")) from exc
    for device in devices:
        if spec.usb_bus is not None and (device.bus, device.address) != (spec.usb_bus,
                                                                          spec.usb_address):
            continue
        if spec.usb_serial is not None and _serial_of(device) != spec.usb_serial:
            continue
        return device
    raise RecorderGone(_("no USB device {vendor_id:04x}:{product_id:04x} matches serial={usb_serial} "
                         "bus={usb_bus} address={usb_address}").format(
                         vendor_id=VENDOR_ID, product_id=PRODUCT_ID, usb_serial=spec.usb_serial,
                         usb_bus=spec.usb_bus, usb_address=spec.usb_address))


def claim(device: Any) -> None:
    """Configure the device and claim interface 0, as the public hosts do."""
    usb_call(lambda: device.set_configuration(), "set_configuration")
    usb_call(lambda: usb.util.claim_interface(device, INTERFACE), "claim interface 0")


def bulk_endpoints(device: Any, interface: int = INTERFACE) -> BulkEndpoints:
    """The first bulk OUT and bulk IN endpoint of ``interface`` (alternate setting 0) in the
    device's active configuration. ProtocolError if the interface has no such pair."""
    config = usb_call(lambda: device.get_active_configuration(), "reading the configuration")
    intf = usb.util.find_descriptor(config, bInterfaceNumber=interface, bAlternateSetting=0)
    if intf is None:
        raise ProtocolError(_("the USB device has no interface {interface}; not an Ambarella recorder's "
                              "control interface").format(interface=interface))
    bulk = [ep.bEndpointAddress for ep in intf
            if usb.util.endpoint_type(ep.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK]
    outs = [a for a in bulk if usb.util.endpoint_direction(a) == usb.util.ENDPOINT_OUT]
    ins = [a for a in bulk if usb.util.endpoint_direction(a) == usb.util.ENDPOINT_IN]
    if not outs or not ins:
        found = ", ".join(f"0x{a:02x}" for a in bulk) or "none"
        raise ProtocolError(_("interface {interface} needs a bulk OUT and a bulk IN endpoint (bulk "
                              "endpoints found: {found}); not an Ambarella B1 recorder").format(
                              interface=interface, found=found))
    if (outs[0], ins[0]) != (EP_OUT, EP_IN):
        log.info("recorder uses bulk endpoints OUT 0x%02x / IN 0x%02x", outs[0], ins[0])
    return BulkEndpoints(outs[0], ins[0])


def usb_call(action: Any, what: str) -> Any:
    """Run one pyusb call, mapping its exceptions to recorder errors."""
    try:
        return action()
    except usb.core.USBTimeoutError as exc:
        raise RecorderTimeout(_("recorder did not answer {what} in time").format(what=what)) from exc
    except usb.core.USBError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT, errno.EIO) or exc.backend_error_code == -4:
            raise RecorderGone(_("recorder left the bus during {what}: {exc}").format(
                                 what=what, exc=exc)) from exc
        raise RecorderError(_("USB error during {what}: {exc}").format(what=what, exc=exc)) from exc


class UsbBulkAmbaLink:
    """One bulk OUT write of the frame, one bulk IN read of at most 64 bytes.

    The endpoints are read from the claimed interface's descriptors unless given."""

    def __init__(self, device: Any, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                 endpoints: BulkEndpoints | None = None) -> None:
        self._device = device
        self._timeout_ms = timeout_ms
        self._closed = False
        if endpoints is None:
            try:
                endpoints = bulk_endpoints(device)
            except RecorderError:
                self.close()  # the interface was claimed for us: give it back
                raise
        self.endpoints = endpoints

    def exchange(self, frame: bytes) -> bytes:
        """Write, then read the reply."""
        written = usb_call(lambda: self._device.write(self.endpoints.out, frame, self._timeout_ms),
                           f"write {frame[:4]!r}")
        if written != len(frame):
            raise ProtocolError(_("recorder took {written} of {frame_len} bytes").format(
                                  written=written, frame_len=len(frame)))
        data = usb_call(lambda: self._device.read(self.endpoints.in_, MAX_REPLY, self._timeout_ms),
                        f"reply to {frame[:4]!r}")
        return bytes(data)

    def close(self) -> None:
        """Release interface 0 and the libusb handle; the device may already be gone."""
        if self._closed:
            return
        self._closed = True
        try:
            usb.util.release_interface(self._device, INTERFACE)
        except usb.core.USBError as exc:
            # After @ATH or a pull-out the device no longer exists; there is nothing to release.
            log.debug("release of interface %d failed: %s", INTERFACE, exc)
        usb.util.dispose_resources(self._device)


def _serial_of(device: Any) -> str | None:
    try:
        serial: str | None = device.serial_number
    except (usb.core.USBError, ValueError):
        return None  # unreadable string descriptor: cannot be the device asked for
    return serial
