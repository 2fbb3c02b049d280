"""FunctionFS server for a gadget recorder's vendor bulk interface (runs in the HIL guest).

    ffs_function.py <functionfs mount> <ready fifo>

Writes the interface descriptors to ep0 (one vendor-specific interface, bulk OUT 0x01 and bulk
IN 0x81 requested, full and high speed; the UDC decides the final numbers, see descriptors()),
reports "READY" (or the error) on the FIFO, then echoes every bulk OUT
transfer back on bulk IN while the host has the interface enabled. The echo is a stand-in for
recorder firmware: later tests replace it with a protocol script.
"""

from __future__ import annotations

import os
import struct
import sys
import threading

DESCRIPTORS_MAGIC_V2 = 3
STRINGS_MAGIC = 2
HAS_FS_DESC, HAS_HS_DESC = 1, 2
EP_OUT, EP_IN = 0x01, 0x81
# struct usb_functionfs_event: 8 bytes of setup request, u8 type, 3 bytes padding
EVENT_SIZE = 12
EVENT_NAMES = {0: "BIND", 1: "UNBIND", 2: "ENABLE", 3: "DISABLE", 4: "SETUP", 5: "SUSPEND", 6: "RESUME"}


def main(argv: list[str]) -> int:
    """Serve until killed; exit non-zero (after telling the FIFO why) if setup fails."""
    mount, fifo = argv[1], argv[2]
    try:
        ep0 = os.open(os.path.join(mount, "ep0"), os.O_RDWR)
        os.write(ep0, descriptors())
        os.write(ep0, strings())
    except OSError as exc:
        _report(fifo, f"ERROR {exc}")
        return 1
    _report(fifo, "READY")
    echo: threading.Thread | None = None
    while True:
        data = os.read(ep0, EVENT_SIZE * 4)
        for i in range(0, len(data), EVENT_SIZE):
            kind = EVENT_NAMES.get(data[i + 8], str(data[i + 8]))
            print(f"ffs event {kind}", flush=True)
            if kind == "ENABLE" and (echo is None or not echo.is_alive()):
                echo = threading.Thread(target=_echo, args=(mount,), daemon=True)
                echo.start()


VENDOR_CLASS = (0xFF, 0x00, 0x00)
# Mass storage, SCSI transparent command set, Bulk-Only Transport: what usb-storage binds to.
MASS_STORAGE_BOT = (0x08, 0x06, 0x50)


def descriptors(interface_class: tuple[int, int, int] = VENDOR_CLASS) -> bytes:
    """FunctionFS v2 descriptor blob: FS and HS copies of interface + two bulk endpoints
    (interface class, subclass and protocol as given; vendor-specific by default)."""

    def interface() -> bytes:
        return struct.pack("<BBBBBBBBB", 9, 4, 0, 0, 2, *interface_class, 1)

    def endpoint(address: int, max_packet: int) -> bytes:
        return struct.pack("<BBBBHB", 7, 5, address, 2, max_packet, 0)

    fs = interface() + endpoint(EP_OUT, 64) + endpoint(EP_IN, 64)
    hs = interface() + endpoint(EP_OUT, 512) + endpoint(EP_IN, 512)
    # Not FUNCTIONFS_VIRTUAL_ADDR: with dummy_hcd's fixed endpoint numbers it makes
    # config_ep_by_speed() fail with -EIO at SET_CONFIGURATION. The host therefore sees the
    # addresses the UDC hands out (dummy_hcd: IN 0x81, OUT 0x02), see docs/hil.md.
    flags = HAS_FS_DESC | HAS_HS_DESC
    body = struct.pack("<II", 3, 3) + fs + hs
    return struct.pack("<III", DESCRIPTORS_MAGIC_V2, 12 + len(body), flags) + body


def strings(name: bytes = b"Recorder bulk") -> bytes:
    """One language (en-US) with the interface name."""
    body = struct.pack("<H", 0x0409) + name + b"\0"
    return struct.pack("<IIII", STRINGS_MAGIC, 16 + len(body), 1, 1) + body


def _echo(mount: str) -> None:
    # Endpoint files are numbered in descriptor order: ep1 = OUT, ep2 = IN.
    out_fd = os.open(os.path.join(mount, "ep1"), os.O_RDWR)
    in_fd = os.open(os.path.join(mount, "ep2"), os.O_RDWR)
    try:
        while True:
            data = os.read(out_fd, 512)
            os.write(in_fd, data)
    except OSError as exc:  # the host disabled the interface (unplug): wait for the next ENABLE
        print(f"ffs echo stopped: {exc}", flush=True)
    finally:
        os.close(out_fd)
        os.close(in_fd)


def _report(fifo: str, line: str) -> None:
    with open(fifo, "w") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
