"""Recorder "firmware" in the HIL guest: a gadget recorder with a control port that, when told to,
re-enumerates as mass storage — the way two-phase recorders do on a dock.

    recorder_fw.py '<spec json>' <ready fifo>

Spec keys: name, kind ("amba": FunctionFS vendor bulk interface speaking Ambarella B1 frames;
"gat947": CDC-ACM port speaking our GA/T 947 framing, firmware side /dev/ttyGS<n>; "dv16": a
FunctionFS mass-storage interface whose Bulk-Only Transport is answered here, see
dv16_device.py), udc, vendor_id, product_id (control mode), storage_vendor_id,
storage_product_id (mass-storage mode), storage_udc (the UDC the disk comes back on: its own
unless a test moves the disk to another port), serial (USB serial and device ID), password,
battery, image (FAT32 image for the LUN), quirks (list):

* "no_ath_reply" (amba): @ATH is never answered; the recorder switches a second later anyway;
* "nul_padded" (amba): every reply is padded with NULs to 64 bytes;
* "drop_on_msdc" (dv16): SET_MSDC is never completed (no CSW): the recorder drops off the bus;
* "no_sd_card" (dv16): GET_SD_STATUS says no card, SET_MSDC is refused.

The amba and gat947 protocol logic is the simulator's (dockd.sim.recorders.AmbaResponder /
Gat947Responder), so the bytes on the emulated USB are what dockd's drivers exchange with a
simulated recorder. The dv16 logic is dv16_device.py, written from the public facts only.
Writes "READY" (or "ERROR ...") to the FIFO once the control-mode gadget is bound. SIGTERM pulls
the cable (unbind) and removes the gadget(s). Progress lines go to stdout (the spawn log).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import termios
import threading
import time
import tty
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dv16_device
import ffs_function
import gadget

from dockd.clock import SystemClock
from dockd.devices.recorders import gat947_framing as framing
from dockd.sim.recorders import (
    AmbaResponder,
    Gat947Responder,
    RecorderState,
    SimRecorderSpec,
)

_stop = threading.Event()


def main(argv: list[str]) -> int:
    """Run the recorder until SIGTERM; exit 1 (after telling the FIFO) if setup fails."""
    spec, fifo = json.loads(argv[1]), argv[2]
    signal.signal(signal.SIGTERM, lambda *_: _stop.set())
    fw = Firmware(spec)
    try:
        fw.plug_control()
    except Exception as exc:  # reported to the harness through the FIFO, then re-raised
        _report(fifo, f"ERROR {type(exc).__name__}: {exc}")
        fw.teardown()
        raise
    _report(fifo, "READY")
    server = threading.Thread(target=fw.serve, daemon=True)
    server.start()
    _stop.wait()
    fw.teardown()
    print("fw: unplugged", flush=True)
    return 0


class Firmware:
    """One recorder: its control-mode gadget, its protocol, and its mass-storage gadget."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.kind = spec["kind"]
        self.quirks = set(spec.get("quirks", ()))
        protocol = "amba-stream" if spec["kind"] == "amba" else "gat947-serial"
        state = RecorderState(
            SimRecorderSpec(serial=spec["serial"], protocol=protocol,
                            password=spec["password"].encode(),
                            battery_percent=int(spec.get("battery", 80))),
            SystemClock(),
        )
        self.amba = AmbaResponder(state)
        self.gat = Gat947Responder(state)
        base = {"serial": spec["serial"], "manufacturer": "HIL", "udc": spec["udc"]}
        self.control = {**base, "name": f"{spec['name']}_ctl", "vendor_id": spec["vendor_id"],
                        "product_id": spec["product_id"], "product": "Recorder (control)",
                        "image": None, "acm": spec["kind"] == "gat947",
                        "vendor_bulk": spec["kind"] in ("amba", "dv16")}
        self.storage = {**base, "name": f"{spec['name']}_msc",
                        "vendor_id": spec["storage_vendor_id"],
                        "product_id": spec["storage_product_id"], "product": "Recorder (disk)",
                        "udc": spec.get("storage_udc", spec["udc"]),
                        "image": spec["image"], "acm": False, "vendor_bulk": False}
        self.created: list[dict[str, Any]] = []
        self.bound: dict[str, Any] | None = None
        self.fds: list[int] = []
        self.lock = threading.Lock()

    # -- plugging -----------------------------------------------------------------------------
    def plug_control(self) -> None:
        """Create and bind the control-mode gadget (FunctionFS descriptors first for amba)."""
        self._create(self.control)
        if self.kind in ("amba", "dv16"):
            mount = gadget.FFS_ROOT / self.control["name"]
            ep0 = os.open(mount / "ep0", os.O_RDWR)
            self.fds.append(ep0)
            if self.kind == "dv16":
                os.write(ep0, ffs_function.descriptors(ffs_function.MASS_STORAGE_BOT))
                os.write(ep0, ffs_function.strings(b"DV16 control LUN"))
            else:
                os.write(ep0, ffs_function.descriptors())
                os.write(ep0, ffs_function.strings())
        self._bind(self.control)
        print(f"fw: control mode bound ({self.spec['kind']})", flush=True)

    def switch_to_storage(self) -> None:
        """What the recorder does after @ATH / SetMSDC: drop off the bus, come back as a disk."""
        with self.lock:
            if _stop.is_set():
                return
            self._unbind()
            self._close_fds()
            gadget.remove(self.control)
            self.created.remove(self.control)
            self._create(self.storage)
            self._bind(self.storage)
        print("fw: mass-storage mode bound", flush=True)

    def teardown(self) -> None:
        """Cable pulled: unbind, close everything, remove the gadgets."""
        with self.lock:
            self._unbind()
            self._close_fds()
            for spec in reversed(self.created):
                gadget.remove(spec)
            self.created.clear()

    # -- protocols ------------------------------------------------------------------------------
    def serve(self) -> None:
        """Answer the host until the switch to mass storage (or the cable pull)."""
        serve = {"amba": self._serve_amba, "gat947": self._serve_gat947,
                 "dv16": self._serve_dv16}[self.kind]
        try:
            switch = serve()
        except OSError as exc:
            print(f"fw: control port closed: {exc}", flush=True)
            return
        if switch:
            self.switch_to_storage()

    def _serve_amba(self) -> bool:
        ep0 = self.fds[0]
        mount = gadget.FFS_ROOT / self.control["name"]
        while True:
            while True:  # wait until the host (re)configures the interface
                data = os.read(ep0, ffs_function.EVENT_SIZE)
                if ffs_function.EVENT_NAMES.get(data[8]) == "ENABLE":
                    break
            out_fd = os.open(mount / "ep1", os.O_RDWR)
            in_fd = os.open(mount / "ep2", os.O_RDWR)
            try:
                while True:
                    frame = os.read(out_fd, 512)
                    reply, switch = self.amba.handle(frame)
                    if switch and "no_ath_reply" in self.quirks:
                        print(f"fw: {frame[:5]!r} -> no reply (quirk)", flush=True)
                        time.sleep(1.0)  # the host's read is still pending when we leave
                        return True
                    if "nul_padded" in self.quirks:
                        reply = reply.ljust(64, b"\0")
                    print(f"fw: {frame[:5]!r} -> {reply[:12]!r} ({len(reply)} bytes)", flush=True)
                    os.write(in_fd, reply)  # returns once the host has read the reply
                    if switch:
                        return True
            except OSError as exc:
                # ESHUTDOWN: the host sent SET_CONFIGURATION again (pyusb's set_configuration()
                # does, even on a configured device); the endpoints come back with ENABLE.
                print(f"fw: endpoints disabled ({exc}); waiting for ENABLE", flush=True)
            finally:
                os.close(out_fd)
                os.close(in_fd)

    def _serve_dv16(self) -> bool:
        """Bulk-Only Transport on the FunctionFS endpoints; class requests on ep0 in a thread."""
        ep0 = self.fds[0]
        mount = gadget.FFS_ROOT / self.control["name"]
        facts = dv16_device.RecorderFacts(serial=self.spec["serial"],
                                          battery=int(self.spec.get("battery", 80)),
                                          password=self.spec["password"].encode(),
                                          sd_card="no_sd_card" not in self.quirks)
        target = dv16_device.Dv16Target(facts, log=lambda line: print(f"fw: {line}", flush=True))
        mode = (dv16_device.SwitchMode.DROP if "drop_on_msdc" in self.quirks
                else dv16_device.SwitchMode.ACK)
        enabled = threading.Event()
        threading.Thread(target=_dv16_ep0, args=(ep0, enabled), daemon=True).start()
        while True:
            enabled.wait()
            enabled.clear()
            out_fd = os.open(mount / "ep1", os.O_RDWR)
            in_fd = os.open(mount / "ep2", os.O_RDWR)
            try:
                dv16_device.serve_bot(lambda n, fd=out_fd: os.read(fd, max(n, 512)),
                                      lambda data, fd=in_fd: _write_all(fd, data), target, mode,
                                      log=lambda line: print(f"fw: {line}", flush=True))
                print(f"fw: SET_MSDC ({mode.value}); clock sets: "
                      f"{[t.isoformat() for t in target.clock_sets]}", flush=True)
                return True
            except OSError as exc:  # DISABLE (reconfiguration or reset): wait for ENABLE
                print(f"fw: endpoints disabled ({exc}); waiting for ENABLE", flush=True)
            finally:
                os.close(out_fd)
                os.close(in_fd)

    def _serve_gat947(self) -> bool:
        port = Path(gadget.CONFIGFS / self.control["name"] / "functions" / "acm.0" / "port_num")
        fd = os.open(f"/dev/ttyGS{port.read_text().strip()}", os.O_RDWR | os.O_NOCTTY)
        self.fds.append(fd)
        tty.setraw(fd)
        splitter = framing.FrameSplitter()
        while True:
            data = os.read(fd, 4096)
            if not data:
                time.sleep(0.05)
                continue
            for frame in splitter.feed(data):
                try:
                    request = framing.decode_request(frame)
                except Exception as exc:  # a real device ignores what it cannot parse
                    print(f"fw: bad frame dropped: {exc}", flush=True)
                    continue
                reply, switch = self.gat.handle(request)
                os.write(fd, reply)
                termios.tcdrain(fd)
                print(f"fw: command {request.command} answered", flush=True)
                if switch:
                    time.sleep(0.3)  # the host reads the reply before the port vanishes
                    return True

    # -- helpers ----------------------------------------------------------------------------------
    def _create(self, spec: dict[str, Any]) -> None:
        gadget.create(spec)
        self.created.append(spec)

    def _bind(self, spec: dict[str, Any]) -> None:
        gadget.bind(spec)
        self.bound = spec

    def _unbind(self) -> None:
        if self.bound is not None:
            gadget.unbind(self.bound)
            self.bound = None

    def _close_fds(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError as exc:  # already gone with the function: nothing left to close
                print(f"fw: close: {exc}", flush=True)
        self.fds.clear()


# Mass-storage class requests (BOT 3.1, 3.2), bmRequestType class|interface
GET_MAX_LUN = (0xA1, 0xFE)
BULK_ONLY_RESET = (0x21, 0xFF)


def _dv16_ep0(ep0: int, enabled: threading.Event) -> None:
    """Answer the mass-storage class requests that FunctionFS hands to user space; tell the
    bulk loop when the host enables the interface. Ends when the function goes away."""
    try:
        while True:
            event = os.read(ep0, ffs_function.EVENT_SIZE)
            kind = ffs_function.EVENT_NAMES.get(event[8], str(event[8]))
            if kind == "ENABLE":
                enabled.set()
            elif kind == "SETUP":
                request = (event[0], event[1])
                print(f"fw: ep0 setup {event[:8].hex()}", flush=True)
                if request == GET_MAX_LUN:
                    os.write(ep0, b"\0")  # one LUN
                elif request == BULK_ONLY_RESET:
                    os.read(ep0, 0)  # status stage: acknowledged
                else:
                    _stall(ep0, event[0])
    except OSError as exc:
        print(f"fw: ep0 closed: {exc}", flush=True)


def _stall(ep0: int, request_type: int) -> None:
    """Refuse a control request: FunctionFS stalls ep0 on an I/O in the wrong direction."""
    try:
        if request_type & 0x80:
            os.read(ep0, 0)
        else:
            os.write(ep0, b"")
    except OSError as exc:
        if exc.errno != errno.EL2HLT:  # EL2HLT: the stall was done
            raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _report(fifo: str, line: str) -> None:
    with open(fifo, "w") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
