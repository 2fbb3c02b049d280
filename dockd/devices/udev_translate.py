"""udev devices → DeviceEvent. Pure: works on property dicts, so it is tested with
property sets captured from a real udev, and the pyudev edge stays thin."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from dockd.devices.events import DeviceEvent

_USB_DEVICE_NAME = re.compile(r"^\d+-\d+(\.\d+)*$")
_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


@dataclass(frozen=True)
class UdevView:
    """What the translation needs of one udev device and its ancestors (nearest first)."""

    action: str
    subsystem: str
    device_type: str | None
    sys_path: str
    device_node: str | None
    properties: Mapping[str, str]
    parents: Sequence[UdevView] = ()


def translate(view: UdevView) -> DeviceEvent | None:
    """The dock event for a udev event, or None when it is not about a USB port."""
    if view.action not in ("add", "remove", "change"):
        return None
    # The device's own path always names the port of the USB device it belongs to. On
    # "remove" that USB device is usually gone from sysfs already, and the nearest USB device
    # udev still finds is a hub or the root hub: its IDs must not be taken for the recorder's.
    port = _port_of(view.sys_path)
    if port is None:
        return None
    kind = _kind(view)
    if kind is None or (kind == "usb" and _is_hub(view.properties)):
        return None
    usb_device = _usb_device(view, port)
    props = view.properties
    usb_props = usb_device.properties if usb_device else {}
    vendor = usb_props.get("ID_VENDOR_ID") or props.get("ID_VENDOR_ID") or _hex(usb_props, "PRODUCT", 0)
    product = usb_props.get("ID_MODEL_ID") or props.get("ID_MODEL_ID") or _hex(usb_props, "PRODUCT", 1)
    return DeviceEvent(
        action=view.action,
        kind=kind,
        port=port,
        sys_path=view.sys_path,
        device_node=view.device_node or props.get("DEVNAME"),
        vendor_id=vendor.lower() if vendor else None,
        product_id=product.lower() if product else None,
        usb_serial=usb_props.get("ID_SERIAL_SHORT") or props.get("ID_SERIAL_SHORT"),
        usb_bus=_int(usb_props.get("BUSNUM")),
        usb_address=_int(usb_props.get("DEVNUM")),
        fs_type=props.get("ID_FS_TYPE") or None,
        fs_label=fs_label(props),
        properties=MappingProxyType(dict(props)),
    )


def fs_label(props: Mapping[str, str]) -> str | None:
    """The volume label as the file system holds it. udev's ``ID_FS_LABEL`` has spaces and
    other unsafe characters replaced by ``_``; ``ID_FS_LABEL_ENC`` has them as ``\\xNN``
    escapes, and is decoded (a label must equal the recorder's id, docs/runtime.md). A label
    whose bytes are not UTF-8 (a FAT label in a DOS code page) keeps udev's safe form."""
    encoded = props.get("ID_FS_LABEL_ENC")
    if encoded:
        raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]),
                          encoded.encode("utf-8", "surrogateescape"))
        try:
            return raw.decode("utf-8") or None
        except UnicodeDecodeError:
            return props.get("ID_FS_LABEL") or None
    return props.get("ID_FS_LABEL") or None


def _usb_device(view: UdevView, port: str) -> UdevView | None:
    for candidate in (view, *view.parents):
        if candidate.subsystem == "usb" and candidate.device_type == "usb_device":
            return candidate if candidate.sys_path.rstrip("/").endswith("/" + port) else None
    return None


def _is_hub(props: Mapping[str, str]) -> bool:
    # TYPE=<bDeviceClass>/<subclass>/<protocol> in decimal; class 9 is a hub. A hub (the
    # dock's own, or one inside a recorder) is wiring: the devices behind it are what count.
    return props.get("TYPE", "").split("/")[0] == "9"


def _port_of(sys_path: str) -> str | None:
    """The last USB port component of a sysfs path (``…/usb1/1-1/1-1.3/1-1.3:1.0/…`` → ``1-1.3``).

    Root hubs (usb1, usb2) are not ports a recorder sits in: they give None."""
    ports = [part for part in sys_path.split("/") if _USB_DEVICE_NAME.match(part)]
    return ports[-1] if ports else None


def _kind(view: UdevView) -> str | None:
    if view.subsystem == "usb":
        return "usb" if view.device_type == "usb_device" else None
    if view.subsystem == "tty":
        return "tty"
    if view.subsystem == "block":
        return "block"
    if view.subsystem == "scsi_generic":
        return "sg"
    return None


def _hex(props: Mapping[str, str], key: str, index: int) -> str | None:
    # PRODUCT=4255/1/100 (vendor/product/bcdDevice in hex without padding)
    parts = props.get(key, "").split("/")
    if len(parts) < 2:
        return None
    try:
        return f"{int(parts[index], 16):04x}"
    except ValueError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
