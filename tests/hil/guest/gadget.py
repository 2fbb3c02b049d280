"""Composite USB gadget recorders in the HIL guest (configfs + libcomposite + dummy_hcd).

    gadget.py create|bind|unbind|remove '<spec json>'

Run inside the guest by tests/hil/harness.py. `create` builds the gadget (strings, mass storage LUN,
CDC-ACM, FunctionFS instance mounted at /run/hil-ffs/<name>); the harness then starts the FunctionFS
server (ffs_function.py) before `bind`, because a FunctionFS function can only be bound once its
descriptors are written. `unbind` is a cable pull; `bind` again is a replug.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

CONFIGFS = Path("/sys/kernel/config/usb_gadget")
FFS_ROOT = Path("/run/hil-ffs")


def main(argv: list[str]) -> int:
    """Entry point; raises on any failure so the harness sees a non-zero exit and the reason."""
    action, spec = argv[1], json.loads(argv[2])
    {"create": create, "bind": bind, "unbind": unbind, "remove": remove}[action](spec)
    return 0


def create(spec: dict[str, Any]) -> None:
    """Build the gadget tree in configfs (not yet attached to a UDC)."""
    g = CONFIGFS / spec["name"]
    g.mkdir()
    _w(g / "idVendor", f"0x{spec['vendor_id']:04x}")
    _w(g / "idProduct", f"0x{spec['product_id']:04x}")
    _w(g / "bcdDevice", "0x0100")
    _w(g / "bcdUSB", "0x0200")
    # Miscellaneous class + IAD: what composite devices with CDC-ACM announce.
    _w(g / "bDeviceClass", "0xEF")
    _w(g / "bDeviceSubClass", "0x02")
    _w(g / "bDeviceProtocol", "0x01")
    strings = g / "strings" / "0x409"
    strings.mkdir(parents=True)
    _w(strings / "serialnumber", spec["serial"])
    _w(strings / "manufacturer", spec["manufacturer"])
    _w(strings / "product", spec["product"])
    config = g / "configs" / "c.1"
    (config / "strings" / "0x409").mkdir(parents=True)
    _w(config / "strings" / "0x409" / "configuration", "recorder")
    _w(config / "MaxPower", "250")
    # FunctionFS first: it then gets the first interface and the first bulk endpoints.
    for function in _functions(spec):
        (g / "functions" / function).mkdir()
    if spec["vendor_bulk"]:
        mount = FFS_ROOT / spec["name"]
        mount.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "functionfs", _ffs_instance(spec), str(mount)], check=True)
    if spec["image"] is not None:
        lun = g / "functions" / "mass_storage.0" / "lun.0"
        _w(lun / "removable", "1")
        _w(lun / "file", spec["image"])
    for function in _functions(spec):
        (config / function).symlink_to(g / "functions" / function)


def bind(spec: dict[str, Any]) -> None:
    """Attach the gadget to its UDC: the host side sees a plug."""
    _w(CONFIGFS / spec["name"] / "UDC", spec["udc"])


def unbind(spec: dict[str, Any]) -> None:
    """Detach from the UDC: the host side sees the cable pulled."""
    udc = CONFIGFS / spec["name"] / "UDC"
    if udc.read_text().strip():
        _w(udc, "")


def remove(spec: dict[str, Any]) -> None:
    """Tear the configfs tree down in reverse order (configfs demands it)."""
    g = CONFIGFS / spec["name"]
    config = g / "configs" / "c.1"
    for function in _functions(spec):
        (config / function).unlink()
    (config / "strings" / "0x409").rmdir()
    config.rmdir()
    if spec["vendor_bulk"]:
        # lazy: a firmware thread may still sit in a read on an endpoint file of this mount
        subprocess.run(["umount", "-l", str(FFS_ROOT / spec["name"])], check=True)
    for function in _functions(spec):
        (g / "functions" / function).rmdir()
    (g / "strings" / "0x409").rmdir()
    g.rmdir()


def _functions(spec: dict[str, Any]) -> list[str]:
    functions = []
    if spec["vendor_bulk"]:
        functions.append(f"ffs.{_ffs_instance(spec)}")
    if spec["image"] is not None:
        functions.append("mass_storage.0")
    if spec["acm"]:
        functions.append("acm.0")
    return functions


def _ffs_instance(spec: dict[str, Any]) -> str:
    return str(spec["name"]).replace("-", "_")


def _w(path: Path, value: str) -> None:
    path.write_text(value + "\n" if value else "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
