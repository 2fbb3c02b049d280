"""Device events: the one shape in which hardware news reaches the dock.

Both the udev source and the simulator's spool source produce these, so the dock's
policy code never sees pyudev. ``port`` is the USB port path of the physical recorder
(e.g. ``1-1.3``), which names the bay it sits in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from dockd.i18n import _

ACTIONS = ("add", "remove", "change")
# usb: the USB device itself; tty: a serial control port; block: a disk or partition
# with a file system; sg: a SCSI generic node of a recorder's disk.
KINDS = ("usb", "tty", "block", "sg")


@dataclass(frozen=True)
class DeviceEvent:
    """Something was plugged, unplugged or changed on a dock port."""

    action: str
    kind: str
    port: str
    sys_path: str
    device_node: str | None = None
    vendor_id: str | None = None
    product_id: str | None = None
    usb_serial: str | None = None
    usb_bus: int | None = None
    usb_address: int | None = None
    fs_type: str | None = None
    fs_label: str | None = None
    properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_json_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "properties"}
        out["properties"] = dict(self.properties)
        return out


class EventError(ValueError):
    """A description of a device event is malformed."""


def event_from_json_dict(data: Any) -> DeviceEvent:
    """Parse an event written by the simulator; EventError on anything malformed."""
    if not isinstance(data, dict):
        raise EventError(_("event is not a JSON object"))
    action, kind, port, sys_path = (data.get(k) for k in ("action", "kind", "port", "sys_path"))
    if action not in ACTIONS:
        raise EventError(_("action {action!r} is not one of {actions}").format(
                           action=action, actions=ACTIONS))
    if kind not in KINDS:
        raise EventError(_("kind {kind!r} is not one of {kinds}").format(kind=kind, kinds=KINDS))
    if not isinstance(port, str) or not port or not isinstance(sys_path, str):
        raise EventError(_("port and sys_path must be non-empty strings"))
    text = {k: _opt_str(data, k) for k in ("device_node", "vendor_id", "product_id", "usb_serial",
                                           "fs_type", "fs_label")}
    numbers = {k: _opt_int(data, k) for k in ("usb_bus", "usb_address")}
    props = data.get("properties") or {}
    if not isinstance(props, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in props.items()):
        raise EventError(_("properties must map strings to strings"))
    return DeviceEvent(action, kind, port, sys_path, **text, **numbers,  # type: ignore[arg-type]
                       properties=MappingProxyType(dict(props)))


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise EventError(_("{key} must be a string").format(key=key))
    return value


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise EventError(_("{key} must be an integer").format(key=key))
    return value
