"""A simulated dock: virtual recorders plugged into ports, reported to the daemon as the
udev source would report real ones (through the spool directory).

Two-phase recorders (``gat947``, ``amba``) appear first as a USB device with a serial
control port (a real pseudo-terminal served by :class:`SimRecorder`); after the daemon
switches them to mass storage they leave the bus and come back as a disk on the same
port, whose "device node" is the card's directory. Plain ``msc`` recorders come straight
as a disk. A pull-out removes everything at once and makes the card unreachable.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dockd.clock import Clock, SystemClock
from dockd.devices.events import DeviceEvent
from dockd.devices.spool import SpoolWriter
from dockd.errors import UsageError
from dockd.i18n import _
from dockd.sim.recorders import Fault, SimRecorder, SimRecorderSpec, make_sample_volume

log = logging.getLogger(__name__)

# USB ids the simulator uses; the demo config declares the same models.
SIM_IDS = {
    "gat947": ("2ca3", "0947", "2ca3", "0948"),   # control vid:pid, storage vid:pid
    "amba": ("4255", "0001", "4255", "0002"),
    "msc": ("2ca3", "0100", "2ca3", "0100"),
}
KINDS = tuple(SIM_IDS)
_sys_counter = itertools.count(1)


@dataclass(frozen=True)
class ForeignDisk:
    """A disk that appears on the port while a recorder switches to mass storage, instead of
    the recorder's own: a stick pushed into the dock's hub, or a disk dressed up as the
    recorder (its ids, serial and label are the test's to choose)."""

    vendor_id: str = "0781"
    product_id: str = "5567"
    usb_serial: str | None = "4C530001"
    label: str | None = "NONAME"
    port: str | None = None  # None: the recorder's own port
    files: Sequence[tuple[str, int]] | None = None


@dataclass
class Plugged:
    """One simulated recorder in a port."""

    port: str
    kind: str
    serial: str
    volume: Path
    recorder: SimRecorder | None = None
    events: list[DeviceEvent] = field(default_factory=list)
    storage_mode: threading.Event = field(default_factory=threading.Event)
    foreign: ForeignDisk | None = None


class SimDock:
    """Plugs and pulls simulated recorders; every event goes through the spool."""

    def __init__(self, spool_dir: Path, cards_dir: Path, clock: Clock | None = None) -> None:
        self.spool = SpoolWriter(spool_dir)
        self.cards_dir = cards_dir
        self.clock = clock or SystemClock()
        self.plugged: dict[str, Plugged] = {}
        cards_dir.mkdir(parents=True, exist_ok=True)

    def card(self, serial: str, files: Sequence[tuple[str, int]] | None = None,
             seed: int = 0) -> Path:
        """The SD card directory of ``serial``, filled with sample recordings once."""
        path = self.cards_dir / serial
        if not path.exists():
            path.mkdir(parents=True)
            make_sample_volume(path, serial, files, seed)
        return path

    def plug(self, port: str, kind: str, spec: SimRecorderSpec | None = None,
             files: Sequence[tuple[str, int]] | None = None, usb_serial: str | None = None,
             vendor_product: tuple[str, str] | None = None,
             faults: Sequence[Fault | tuple[Fault, str]] = (),
             comes_back: bool = True, foreign: ForeignDisk | None = None) -> Plugged:
        """Dock a recorder of ``kind`` (gat947, amba, msc) in ``port``; ``faults`` (a fault, or
        (fault, command)) are injected into its control port before the dock sees it. With
        ``comes_back=False`` a two-phase recorder leaves the bus on the switch and never
        re-enumerates as a disk (a firmware that fails to mount its card); with ``foreign``
        that disk appears on the port in its stead (for a plain ``msc`` recorder: at once)."""
        if kind not in SIM_IDS:
            raise UsageError(_("simulated recorder kind {kind} is not one of {kinds}").format(
                kind=repr(kind), kinds=", ".join(KINDS)))
        if port in self.plugged:
            raise UsageError(_("port {port} already holds a simulated recorder").format(
                port=port))
        spec = spec or SimRecorderSpec(serial=usb_serial or f"SIM{next(_sys_counter):04d}",
                                       protocol="amba-stream" if kind == "amba" else "gat947-serial")
        serial = usb_serial or spec.serial
        volume = self.card(serial, files)
        plugged = Plugged(port, kind, serial, volume, foreign=foreign)
        self.plugged[port] = plugged
        vid, pid, svid, spid = SIM_IDS[kind]
        if vendor_product:
            vid, pid = svid, spid = vendor_product
        if kind == "msc":
            self._usb(plugged, "add", vid, pid, serial)
            if foreign is not None:
                self._foreign_disk(plugged, foreign)
            else:
                self._disk(plugged, "add", svid, spid)
            plugged.storage_mode.set()
            return plugged
        recorder = SimRecorder(spec, self.clock, volume_dir=volume)
        for fault in faults:
            if isinstance(fault, tuple):
                recorder.inject(*fault)
            else:
                recorder.inject(fault)
        plugged.recorder = recorder
        recorder.on_mass_storage(lambda _r: self._re_enumerate(plugged, comes_back))
        self._usb(plugged, "add", vid, pid, None)
        self._post(plugged, DeviceEvent("add", "tty", port, f"{self._usb_path(port)}:1.0/tty/ttyACM",
                                        device_node=recorder.port, vendor_id=vid, product_id=pid))
        return plugged

    def unplug(self, port: str) -> None:
        """Take the recorder out normally."""
        plugged = self.plugged.pop(port, None)
        if plugged is None:
            raise UsageError(_("no simulated recorder in port {port}").format(port=port))
        self._remove_all(plugged)

    def pull_out(self, port: str, remove_delay_s: float = 0.0) -> Path:
        """Yank the recorder mid-whatever: the card becomes unreachable and remove events
        follow for everything.

        With ``remove_delay_s`` the card's files vanish but its mount point stays, and the
        remove events come that much later — as with a real disk, whose reads fail with EIO
        before udev reports the removal. Returns where the card's content went, so a test
        can put it back with :meth:`put_card_back`."""
        plugged = self.plugged.pop(port, None)
        if plugged is None:
            raise UsageError(_("no simulated recorder in port {port}").format(port=port))
        away = plugged.volume.with_name(plugged.volume.name + ".pulled")
        if remove_delay_s <= 0:
            os.rename(plugged.volume, away)  # new opens fail at once, as on a vanished disk
            self._remove_all(plugged)
            return away
        away.mkdir()
        for child in list(plugged.volume.iterdir()):
            os.rename(child, away / child.name)
        timer = threading.Timer(remove_delay_s, self._remove_all, args=(plugged,))
        timer.daemon = True
        timer.start()
        return away

    def put_card_back(self, serial: str) -> None:
        """After :meth:`pull_out`, the card returns (ready to be plugged again)."""
        away = self.cards_dir / f"{serial}.pulled"
        card = self.cards_dir / serial
        if not away.exists():
            return
        if card.exists():  # only its content had gone
            for child in list(away.iterdir()):
                os.rename(child, card / child.name)
            away.rmdir()
        else:
            os.rename(away, card)

    def stop(self) -> None:
        for port in list(self.plugged):
            self.unplug(port)

    def discard_cards(self) -> None:
        shutil.rmtree(self.cards_dir, ignore_errors=True)

    # -- events -----------------------------------------------------------------------------

    def _re_enumerate(self, plugged: Plugged, comes_back: bool = True) -> None:
        _vid, _pid, svid, spid = SIM_IDS[plugged.kind]
        port = plugged.port
        self._post(plugged, DeviceEvent("remove", "tty", port, f"{self._usb_path(port)}:1.0/tty/ttyACM"))
        self._usb(plugged, "remove", None, None, None)
        if not comes_back:
            return
        if plugged.foreign is not None:
            self._foreign_disk(plugged, plugged.foreign)
            plugged.storage_mode.set()
            return
        self._usb(plugged, "add", svid, spid, plugged.serial)
        self._disk(plugged, "add", svid, spid)
        plugged.storage_mode.set()

    def _remove_all(self, plugged: Plugged) -> None:
        if plugged.recorder is not None:
            plugged.recorder.pull_out()
        if plugged.storage_mode.is_set():
            self._disk(plugged, "remove", None, None)
        self._usb(plugged, "remove", None, None, None)
        if plugged.recorder is not None:
            plugged.recorder.stop()

    def _usb(self, plugged: Plugged, action: str, vid: str | None, pid: str | None,
             serial: str | None) -> None:
        self._post(plugged, DeviceEvent(action, "usb", plugged.port, self._usb_path(plugged.port),
                                        vendor_id=vid, product_id=pid, usb_serial=serial))

    def _disk(self, plugged: Plugged, action: str, vid: str | None, pid: str | None) -> None:
        label = plugged.serial[:11].upper() if plugged.kind == "amba" else "RECORDER"
        self._post(plugged, DeviceEvent(
            action, "block", plugged.port, f"{self._usb_path(plugged.port)}:1.0/host0/block/sdx/sdx1",
            device_node=str(plugged.volume), vendor_id=vid, product_id=pid,
            usb_serial=plugged.serial, fs_type="vfat", fs_label=label))

    def _foreign_disk(self, plugged: Plugged, disk: ForeignDisk) -> None:
        port = disk.port or plugged.port
        card = self.card(f"foreign-{disk.usb_serial or 'none'}-{port}", disk.files)
        usb_path = self._usb_path(port)
        self._post(plugged, DeviceEvent("add", "usb", port, usb_path, vendor_id=disk.vendor_id,
                                        product_id=disk.product_id, usb_serial=disk.usb_serial))
        self._post(plugged, DeviceEvent(
            "add", "block", port, f"{usb_path}:1.0/host0/block/sdy/sdy1", device_node=str(card),
            vendor_id=disk.vendor_id, product_id=disk.product_id, usb_serial=disk.usb_serial,
            fs_type="vfat", fs_label=disk.label))

    def _post(self, plugged: Plugged, event: DeviceEvent) -> None:
        plugged.events.append(event)
        self.spool.post(event)

    @staticmethod
    def _usb_path(port: str) -> str:
        return f"/sys/devices/sim/usb1/{port}"
