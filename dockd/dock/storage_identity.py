"""Whether the disk that appeared in a bay is the docked recorder's own.

A two-phase recorder leaves the bus when it is told to switch to mass storage, and a disk
appears on the port a moment later. Whatever appears there in that moment — a stick pushed
into a hub, a disk made to look like a recorder — must not be offloaded as that recorder's
recordings. The disk must carry the model's storage USB ids, sit on the same USB port, and
carry the identity the recorder gave where its protocol gives one (the Ambarella device ID is
its volume label; a plain mass-storage recorder's disk has its USB serial). Anything else is
``unknown_device`` and is never mounted. Pure: works on events and the model.
"""

from __future__ import annotations

from dockd.config.daemon import ModelSpec
from dockd.devices.events import DeviceEvent
from dockd.devices.recorders.base import RecorderIdentity


def storage_ids(model: ModelSpec) -> tuple[str, str]:
    """The USB ids of the model's disk: its storage ids, or its own when it names none."""
    if model.storage_vendor_id and model.storage_product_id:
        return model.storage_vendor_id, model.storage_product_id
    return model.vendor_id, model.product_id


def foreign_disk(model: ModelSpec, first: DeviceEvent, disk: DeviceEvent,
                 identity: RecorderIdentity | None) -> str | None:
    """Why ``disk`` is not the recorder's (the end of a sentence), or None when it is.

    ``first`` is the event the session began with (the recorder's USB device, or its disk);
    ``identity`` what the recorder said in its control session (None without one)."""
    if disk.port != first.port:
        return f"it is on port {disk.port}, not on the recorder's port {first.port}"
    ids = (_lower(disk.vendor_id), _lower(disk.product_id))
    if ids != storage_ids(model):
        return (f"its USB ids {ids[0]}:{ids[1]} are not the storage ids "
                f"{':'.join(storage_ids(model))} of model {model.name}")
    if identity is not None and identity.device_label:
        if not disk.fs_label:
            return f"it has no volume label, and the recorder's is its id {identity.device_label!r}"
        if not labels_agree(identity.device_label, disk.fs_label):
            return (f"its volume label {disk.fs_label!r} is not the recorder's id "
                    f"{identity.device_label!r}")
    if identity is None and first.usb_serial and disk.usb_serial != first.usb_serial:
        return (f"its USB serial {disk.usb_serial!r} is not the recorder's "
                f"{first.usb_serial!r}")
    return None


def disk_serial(first: DeviceEvent, disk: DeviceEvent) -> str | None:
    """The serial a recorder without a control session is known by: its USB serial, else its
    volume label."""
    return first.usb_serial or disk.usb_serial or disk.fs_label


def labels_agree(device_id: str, label: str) -> bool:
    """A volume label is the recorder's id (FAT labels hold 11 upper-case characters: what
    fits is compared)."""
    a, b = device_id.strip().upper(), label.strip().upper()
    return a == b or (len(b) == 11 and a.startswith(b))


def _lower(text: str | None) -> str | None:
    return text.lower() if text is not None else None
