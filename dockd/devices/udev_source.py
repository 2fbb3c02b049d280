"""The udev edge: pyudev monitor → UdevView → DeviceEvent for the dock.

At start the devices already present are replayed as ``add`` (coldplug), so a dock that
restarts with recorders in its bays picks them up again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pyudev

from dockd.devices.events import DeviceEvent
from dockd.devices.udev_translate import UdevView, translate

SUBSYSTEMS = ("usb", "tty", "block", "scsi_generic")
log = logging.getLogger(__name__)


def view_of(device: Any, action: str) -> UdevView:
    """A UdevView of a pyudev Device (its ancestors included while they exist)."""
    parents = []
    parent = device.parent
    while parent is not None:
        parents.append(_flat_view(parent, action))
        parent = parent.parent
    return UdevView(action, device.subsystem or "", device.device_type, device.sys_path,
                    device.device_node, dict(device.properties), tuple(parents))


def _flat_view(device: Any, action: str) -> UdevView:
    return UdevView(action, device.subsystem or "", device.device_type, device.sys_path,
                    device.device_node, dict(device.properties))


class UdevSource:
    """Calls ``on_event`` for every dock-relevant udev event, from a monitor thread."""

    def __init__(self, on_event: Callable[[DeviceEvent], None], netlink: str = "udev",
                 on_raw: Callable[[UdevView], None] | None = None) -> None:
        self.on_event = on_event
        self.on_raw = on_raw
        self.context = pyudev.Context()
        self.monitor = pyudev.Monitor.from_netlink(self.context, source=netlink)
        for subsystem in SUBSYSTEMS:
            self.monitor.filter_by(subsystem)
        self.observer: Any = None

    def start(self, coldplug: bool = True) -> None:
        self.monitor.start()
        self.observer = pyudev.MonitorObserver(self.monitor, callback=self._on_device,
                                               name="udev-monitor")
        self.observer.daemon = True
        self.observer.start()
        if coldplug:
            for subsystem in SUBSYSTEMS:
                for device in self.context.list_devices(subsystem=subsystem):
                    self._handle(view_of(device, "add"))

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.send_stop()
            self.observer = None

    def _on_device(self, device: Any) -> None:
        try:
            self._handle(view_of(device, device.action or "change"))
        except Exception:  # a monitor thread that dies silently stops the whole dock
            log.exception("udev event could not be handled", extra={"sys_path": device.sys_path})

    def _handle(self, view: UdevView) -> None:
        if self.on_raw is not None:
            self.on_raw(view)
        event = translate(view)
        if event is not None:
            log.debug("device event", extra={"action": event.action, "kind": event.kind,
                                             "port": event.port, "node": event.device_node})
            self.on_event(event)
