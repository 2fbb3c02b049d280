"""QEMU hardware-in-the-loop harness: one Linux guest with hot-pluggable USB recorders.

A guest boots the pinned Debian kernel (tests/hil/setup.sh) under TCG with the host root shared
read-only over 9p; its init chroots into an overlay of that root and starts tests/hil/guest/agent.py
with the project venv. The host talks to the agent over a virtio-serial port (JSON lines: exit codes,
exact output, background processes, a live udev event stream) and to QEMU over QMP (USB hot-plug).

    with Guest.boot(tmp_path) as guest:
        guest.start_udevd()
        plugged = guest.plug_recorder(QemuRecorder("cam1", root_port=3, image=img, serial="CAM0001"))
        event = guest.udev_events.wait_for(is_partition_add, timeout=30)
        guest.unplug_recorder(plugged)

The exchange directory (`guest.exchange_dir`) is a read-write share mounted in the guest at the same
absolute path, so host paths under it can be handed to guest commands unchanged. Every other host
path is visible in the guest read-only (writes land in guest memory and vanish at power-off).

Everything waits on an event (agent reply, QMP event, udev event) with a timeout, and every failure
raises HilError with the tail of the guest console.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

HIL_DIR = Path(__file__).resolve().parent
REPO_ROOT = HIL_DIR.parent.parent
DEFAULT_CACHE = HIL_DIR / "cache"
AGENT_PATH = HIL_DIR / "guest" / "agent.py"
GADGET_PATH = HIL_DIR / "guest" / "gadget.py"
FFS_PATH = HIL_DIR / "guest" / "ffs_function.py"
FIRMWARE_PATH = HIL_DIR / "guest" / "recorder_fw.py"
GUEST_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
AGENT_PORT_NAME = "org.dockd.hil.agent"
QEMU_BINARY = "qemu-system-x86_64"
# Bus numbers are stable because the guest init loads xhci_pci before dummy_hcd.
QEMU_USB2_BUS = 1
GADGET_BUSES = {"dummy_udc.0": 3, "dummy_udc.1": 4}
# 9p cache mode of the read-only host root in the guest (Guest.boot's root_cache; HIL_ROOT_CACHE
# overrides it, to compare): see docs/hil.md, "How the guest is built".
ROOT_CACHE = os.environ.get("HIL_ROOT_CACHE", "loose")
# A device every guest has; a "change" on it marks a point in the udev event stream.
BARRIER_SYSPATH = "/sys/devices/virtual/mem/null"


class HilError(RuntimeError):
    """The harness or the guest failed; the message says what and shows the console tail."""


class HilTimeout(HilError):
    """Something awaited (boot, command, QMP event, udev event) did not happen in time."""


class HilSetupMissing(HilError):
    """QEMU, the kernel or the initramfs is missing: run tests/hil/setup.sh."""


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one command run in the guest."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes
    duration_s: float

    @property
    def text(self) -> str:
        """Stdout decoded as UTF-8 (undecodable bytes replaced)."""
        return self.stdout.decode(errors="replace")


@dataclass(frozen=True)
class UdevEvent:
    """One event seen by the guest's udev monitor, in the capture format of tests/data/udev/."""

    action: str
    sys_path: str
    subsystem: str
    device_type: str | None
    device_node: str | None
    properties: dict[str, str]
    parent_chain: tuple[dict[str, Any], ...]
    guest_uptime: float
    host_monotonic: float

    def to_json(self) -> dict[str, Any]:
        """The event as stored in tests/data/udev/<name>.json."""
        return {
            "action": self.action,
            "sys_path": self.sys_path,
            "subsystem": self.subsystem,
            "device_type": self.device_type,
            "device_node": self.device_node,
            "properties": self.properties,
            "parent_chain": list(self.parent_chain),
        }


@dataclass(frozen=True)
class QemuRecorder:
    """A recorder emulated with QEMU devices behind its own usb-hub on one xHCI root port.

    The hub gives both functions one parent, like a real composite recorder: mass storage on hub
    port 1 (QEMU usb-storage, fixed 46f4:0001) when `image` is set and, when `control_port`, an
    FTDI usb-serial (fixed 0403:6001) on hub port 2.
    """

    name: str
    root_port: int
    image: Path | None
    serial: str
    control_port: bool = False
    read_only: bool = False

    @property
    def storage_port_path(self) -> str:
        """Kernel USB port path of the storage device, e.g. "1-3.1"."""
        return f"{QEMU_USB2_BUS}-{self.root_port}.1"

    @property
    def serial_port_path(self) -> str:
        """Kernel USB port path of the control port, e.g. "1-3.2"."""
        return f"{QEMU_USB2_BUS}-{self.root_port}.2"


@dataclass(frozen=True)
class GadgetRecorder:
    """A composite recorder presented by the guest's own USB gadget stack (dummy_hcd + configfs).

    Any VID:PID and strings; functions: mass storage with `image` as its LUN (the image must live
    in the exchange directory, the guest kernel opens it), CDC-ACM (`acm`, the "firmware" side is
    /dev/ttyGS<n> in the guest) and a vendor bulk interface via FunctionFS (`vendor_bulk`,
    endpoints 0x01 OUT / 0x81 IN, served by tests/hil/guest/ffs_function.py as an echo).
    """

    name: str
    vendor_id: int
    product_id: int
    serial: str
    manufacturer: str = "HIL"
    product: str = "Gadget Recorder"
    image: Path | None = None
    acm: bool = False
    vendor_bulk: bool = False
    udc: str = "dummy_udc.0"

    @property
    def port_path(self) -> str:
        """Kernel USB port path of the gadget on its dummy_hcd bus, e.g. "3-1"."""
        return f"{GADGET_BUSES[self.udc]}-1"


@dataclass(frozen=True)
class FirmwareRecorder:
    """A two-phase recorder run by tests/hil/guest/recorder_fw.py on a guest UDC.

    Control mode: `kind` "amba" is a vendor bulk interface (FunctionFS) speaking Ambarella B1
    frames, "gat947" a CDC-ACM port speaking our GA/T 947 framing (firmware side /dev/ttyGS<n>),
    "dv16" a mass-storage interface (FunctionFS, Bulk-Only Transport answered by
    guest/dv16_device.py) that the guest's usb-storage, sd and sg drivers bind to. After @ATH /
    SetMSDC it drops off the bus and re-enumerates as mass storage with
    storage_vendor_id:storage_product_id and `image` (in the exchange dir) as its disk.
    `quirks` change how it behaves (guest/recorder_fw.py lists them). `storage_udc`: the UDC
    its disk comes back on (None: its own), i.e. its disk appears on another port.
    """

    name: str
    kind: str
    vendor_id: int
    product_id: int
    storage_vendor_id: int
    storage_product_id: int
    serial: str
    password: str
    image: Path
    battery: int = 80
    udc: str = "dummy_udc.0"
    quirks: tuple[str, ...] = ()
    storage_udc: str | None = None

    @property
    def port_path(self) -> str:
        """Kernel USB port path on the UDC's dummy_hcd bus, e.g. "3-1"."""
        return f"{GADGET_BUSES[self.udc]}-1"


@dataclass(frozen=True)
class PluggedQemuRecorder:
    """Handles of a plugged QemuRecorder (QMP ids and the host end of its serial line)."""

    spec: QemuRecorder
    hub_id: str
    storage_id: str | None
    node_name: str | None
    serial_id: str | None
    serial_link: socket.socket | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PluggedGadget:
    """A created gadget; `bound` tells whether it is currently attached to its UDC."""

    spec: GadgetRecorder
    ffs_process: GuestProcess | None


class UdevEventLog:
    """Thread-safe list of udev events streamed from the guest, with blocking waits."""

    def __init__(self) -> None:
        self._events: list[UdevEvent] = []
        self._cond = threading.Condition()
        self._failure: str | None = None

    def mark(self) -> int:
        """A cursor: pass it as `after` to wait only for events that arrive later."""
        with self._cond:
            return len(self._events)

    def events(self, after: int = 0) -> list[UdevEvent]:
        """A copy of the events received so far (from cursor `after`)."""
        with self._cond:
            return list(self._events[after:])

    def wait_for(self, predicate: Callable[[UdevEvent], bool], timeout: float, after: int = 0) -> UdevEvent:
        """The first event from `after` on that satisfies `predicate`; HilTimeout otherwise."""
        index = self.wait_index(predicate, timeout, after)
        with self._cond:
            return self._events[index]

    def wait_index(self, predicate: Callable[[UdevEvent], bool], timeout: float, after: int = 0) -> int:
        """Like wait_for, but returns the event's position (a cursor)."""
        deadline = time.monotonic() + timeout
        index = after
        with self._cond:
            while True:
                while index < len(self._events):
                    if predicate(self._events[index]):
                        return index
                    index += 1
                if self._failure is not None:
                    raise HilError(f"udev event stream ended: {self._failure}")
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [f"{e.action} {e.sys_path}" for e in self._events[after:]]
                    raise HilTimeout(f"no matching udev event within {timeout}s; seen: {seen}")
                self._cond.wait(left)

    def _append(self, event: UdevEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def _fail(self, reason: str) -> None:
        with self._cond:
            self._failure = reason
            self._cond.notify_all()


class GuestProcess:
    """A background process started in the guest with Guest.spawn (its own session)."""

    def __init__(self, guest: Guest, pid: int, argv: Sequence[str], log: Path) -> None:
        self.guest = guest
        self.pid = pid
        self.argv = tuple(argv)
        self.log = log

    def signal(self, sig: int) -> None:
        """Send `sig` to the process group."""
        self.guest._request({"op": "signal", "pid": self.pid, "sig": sig}, timeout=10)

    def wait(self, timeout: float) -> int:
        """Exit code; HilTimeout if still running after `timeout` seconds."""
        reply = self.guest._request({"op": "wait", "pid": self.pid, "timeout": timeout}, timeout=timeout + 10)
        if reply["returncode"] is None:
            raise HilTimeout(f"guest process {self.argv} still running after {timeout}s")
        return int(reply["returncode"])

    def terminate(self, timeout: float = 10) -> int:
        """SIGTERM, then wait; SIGKILL if it does not exit in time. Returns the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except HilTimeout:
            self.signal(signal.SIGKILL)
            return self.wait(10)


class Guest:
    """One running QEMU guest. Create with Guest.boot(); use as a context manager."""

    def __init__(
        self,
        work_dir: Path,
        cache_dir: Path,
        memory_mb: int,
        smp: int,
        disks: Sequence[Path] = (),
        root_cache: str = ROOT_CACHE,
    ) -> None:
        self.work_dir = work_dir
        self.disks = tuple(disks)
        self.exchange_dir = work_dir / "xchg"
        self.console_log = work_dir / "console.log"
        self.qemu_log = work_dir / "qemu.log"
        self.cache_dir = cache_dir
        self.udev_events = UdevEventLog()
        self.boot_seconds = 0.0
        self._sock_dir = Path(tempfile.mkdtemp(prefix="hil-"))  # short: AF_UNIX paths <= 107
        self._memory_mb = memory_mb
        self._smp = smp
        self._proc: subprocess.Popen[bytes] | None = None
        self._agent: _Channel | None = None
        self._qmp: _Qmp | None = None
        self._serial_links: list[socket.socket] = []
        self._udevd_running = False
        self._root_cache = root_cache

    # ----------------------------------------------------------------- life cycle
    @classmethod
    def boot(
        cls,
        work_dir: Path,
        *,
        cache_dir: Path = DEFAULT_CACHE,
        memory_mb: int = 1024,
        smp: int = 2,
        timeout: float = 300.0,
        disks: Sequence[Path] = (),
        root_cache: str = ROOT_CACHE,
    ) -> Guest:
        """Start QEMU and wait until the guest agent says hello. Raises HilSetupMissing if the
        host is not prepared (tests/hil/setup.sh), HilTimeout if the guest does not come up.

        `disks` are raw image files attached as virtio disks (/dev/vda, /dev/vdb, ... in that
        order): storage that survives a guest restart or power cut, unlike the guest's memory.
        `root_cache` is the 9p cache mode of the read-only host root ("none": every lookup
        asks the host again; "loose": the guest keeps what it read, so host files changed
        while the guest runs may look unchanged there — the exchange share is always "none")."""
        work_dir.mkdir(parents=True, exist_ok=True)
        guest = cls(work_dir, cache_dir, memory_mb, smp, disks, root_cache)
        try:
            guest._start(timeout)
        except BaseException:
            guest.power_cut()
            raise
        return guest

    def __enter__(self) -> Guest:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.shutdown()
        else:
            self.power_cut()

    @property
    def running(self) -> bool:
        """True while the QEMU process lives."""
        return self._proc is not None and self._proc.poll() is None

    def shutdown(self, timeout: float = 30.0) -> None:
        """Clean power-off: stop spawned processes, sync, power off; wait for QEMU to exit."""
        if not self.running:
            self._cleanup()
            return
        assert self._proc is not None
        try:
            self._request({"op": "poweroff", "grace": 10}, timeout=timeout)
            self._proc.wait(timeout)
        except (HilError, subprocess.TimeoutExpired) as exc:
            tail = self.console_tail()
            self.power_cut()
            raise HilError(f"guest did not power off cleanly: {exc}\n{tail}") from exc
        self._cleanup()

    def power_cut(self) -> None:
        """Kill QEMU at once: the guest loses whatever it had not written out (a power cut)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(30)
        self._cleanup()

    def cpu_seconds(self) -> float:
        """CPU time QEMU has used so far (every vCPU and I/O thread: the guest's cost on the
        host), from /proc; 0.0 once QEMU has exited."""
        if self._proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return 0.0
        # fields after "(comm)": utime and stime are the 12th and 13th (stat(5) fields 14, 15)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def console_tail(self, lines: int = 40) -> str:
        """Last lines of the guest serial console, for error messages."""
        try:
            text = self.console_log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no console output)"
        return "--- guest console (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    # ----------------------------------------------------------------- commands
    def run(
        self,
        command: Sequence[str] | str,
        *,
        timeout: float = 60.0,
        check: bool = True,
        env: dict[str, str] | None = None,
        stdin: bytes = b"",
        cwd: str | None = None,
    ) -> CommandResult:
        """Run a command in the guest chroot and wait for it. A string runs under /bin/sh -c.

        With `check`, a non-zero exit raises HilError carrying stdout and stderr. A command still
        running after `timeout` is killed (its whole session) and HilTimeout is raised."""
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        request: dict[str, Any] = {"op": "run", "argv": argv, "timeout": timeout}
        if env:
            request["env"] = env
        if stdin:
            request["stdin_b64"] = base64.b64encode(stdin).decode()
        if cwd:
            request["cwd"] = cwd
        reply = self._request(request, timeout=timeout + 15)
        result = CommandResult(
            argv=tuple(argv),
            returncode=int(reply["returncode"]),
            stdout=base64.b64decode(reply["stdout_b64"]),
            stderr=base64.b64decode(reply["stderr_b64"]),
            duration_s=float(reply["duration"]),
        )
        if reply["timed_out"]:
            raise HilTimeout(f"guest command timed out after {timeout}s: {argv}\n{_io(result)}")
        if check and result.returncode != 0:
            raise HilError(f"guest command failed rc={result.returncode}: {argv}\n{_io(result)}")
        return result

    def spawn(self, argv: Sequence[str], log: Path, *, env: dict[str, str] | None = None) -> GuestProcess:
        """Start a background process in the guest; stdout+stderr go to `log` (a guest path;
        put it in the exchange directory to read it from the host)."""
        request: dict[str, Any] = {"op": "spawn", "argv": list(argv), "log": str(log)}
        if env:
            request["env"] = env
        reply = self._request(request, timeout=30)
        return GuestProcess(self, int(reply["pid"]), argv, log)

    def write_file(self, guest_path: str, data: bytes, mode: int = 0o644) -> None:
        """Create or replace a file in the guest (e.g. a config under /etc)."""
        self.run(
            f"mkdir -p {shlex.quote(os.path.dirname(guest_path))} && "
            f"cat > {shlex.quote(guest_path)} && chmod {mode:o} {shlex.quote(guest_path)}",
            stdin=data,
        )

    def state_wait(
        self,
        socket_path: str,
        *,
        bay: int | None = None,
        states: Sequence[str] = (),
        skip: dict[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """The first snapshot dockd's state channel at `socket_path` (a guest path) sends that
        differs from `skip` and, with `bay`, shows that bay in one of `states`.

        The agent reads the channel inside the guest, every line of it, so a wait costs no
        process start there (a `dockd status` is a Python start: seconds under emulation) and
        a short-lived state is not missed. It connects again while the socket is missing or
        dockd restarts. HilTimeout (with the last snapshot seen) after `timeout` seconds."""
        request: dict[str, Any] = {
            "op": "state_wait",
            "socket": socket_path,
            "bay": bay,
            "states": list(states),
            "skip": skip,
            "timeout": timeout,
        }
        reply = self._request(request, timeout=timeout + 15)
        if not reply["matched"]:
            raise HilTimeout(
                f"state channel {socket_path}: bay {bay} not in {list(states)} within "
                f"{timeout}s; last snapshot {reply['snapshot']}"
            )
        snapshot: dict[str, Any] = reply["snapshot"]
        return snapshot

    # ----------------------------------------------------------------- udev
    def start_udevd(self, *, monitor: bool = True, timeout: float = 60.0) -> float:
        """Start systemd-udevd, coldplug (trigger + settle) and, with `monitor`, stream udev
        events into `udev_events`. Returns the seconds it took."""
        started = time.monotonic()
        self.run(["/lib/systemd/systemd-udevd", "--daemon"], timeout=timeout)
        self._udevd_running = True
        self.run(["udevadm", "trigger", "--action=add", "--type=subsystems"], timeout=timeout)
        self.run(["udevadm", "trigger", "--action=add", "--type=devices"], timeout=timeout)
        self.settle(timeout)
        if monitor:
            self._request({"op": "monitor", "subsystems": []}, timeout=timeout)
        return time.monotonic() - started

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until udevd has processed every queued event."""
        self.run(["udevadm", "settle", f"--timeout={int(timeout)}"], timeout=timeout + 5)

    def udev_barrier(self, timeout: float = 30.0) -> int:
        """Settle, then fire a "change" on /sys/devices/virtual/mem/null and wait for it.

        Netlink keeps order, so once the barrier arrives every earlier event has reached
        `udev_events`. Returns the barrier's index: events before it are complete."""
        self.settle(timeout)
        mark = self.udev_events.mark()
        self.run(["udevadm", "trigger", "--action=change", BARRIER_SYSPATH], timeout=timeout)
        return self.udev_events.wait_index(
            lambda e: e.action == "change" and e.sys_path == BARRIER_SYSPATH, timeout, mark
        )

    def install_udev_rules(self, rule_files: Iterable[Path]) -> None:
        """Copy host rule files into the guest's /etc/udev/rules.d and reload udevd."""
        for rule in rule_files:
            self.write_file(f"/etc/udev/rules.d/{rule.name}", rule.read_bytes())
        if self._udevd_running:
            self.run(["udevadm", "control", "--reload"])

    def udev_properties(self, device: str) -> dict[str, str]:
        """`udevadm info --query=property` of a device node or /sys path, as a dict."""
        flag = "--path" if device.startswith("/sys/") else "--name"
        out = self.run(["udevadm", "info", "--query=property", f"{flag}={device}"]).text
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    # ----------------------------------------------------------------- QEMU USB devices
    def plug_recorder(self, spec: QemuRecorder) -> PluggedQemuRecorder:
        """Hot-plug a hub on `spec.root_port`, then mass storage (and the FTDI control port)."""
        hub_id = f"{spec.name}-hub"
        self._qmp_cmd("device_add", driver="usb-hub", id=hub_id, bus="xhci.0", port=str(spec.root_port))
        storage_id = node = None
        if spec.image is not None:
            storage_id, node = self._add_storage(
                spec.name, spec.image, f"{spec.root_port}.1", spec.serial, spec.read_only
            )
        serial_id = None
        link = None
        if spec.control_port:
            serial_id, link = self._add_serial(spec.name, f"{spec.root_port}.2", spec.serial)
        return PluggedQemuRecorder(spec, hub_id, storage_id, node, serial_id, link)

    def unplug_recorder(self, plugged: PluggedQemuRecorder, timeout: float = 30.0) -> None:
        """Pull the recorder: remove its functions, then the hub; wait for QEMU to confirm each."""
        if plugged.serial_id is not None:
            self._device_del(plugged.serial_id, timeout)
            self._qmp_cmd("chardev-remove", id=f"{plugged.spec.name}-tty")
        if plugged.storage_id is not None:
            self._device_del(plugged.storage_id, timeout)
            self._qmp_cmd("blockdev-del", **{"node-name": plugged.node_name})
        self._device_del(plugged.hub_id, timeout)
        if plugged.serial_link is not None:
            plugged.serial_link.close()

    def plug_usb_stick(
        self, name: str, root_port: int, image: Path, serial: str | None = None
    ) -> tuple[str, str]:
        """Hot-plug a bare usb-storage device straight into a root port (an "unknown stick").
        Returns (device id, block node name) for unplug_usb_stick."""
        return self._add_storage(name, image, str(root_port), serial, read_only=False)

    def unplug_usb_stick(self, ids: tuple[str, str], timeout: float = 30.0) -> None:
        """Remove a device added by plug_usb_stick."""
        self._device_del(ids[0], timeout)
        self._qmp_cmd("blockdev-del", **{"node-name": ids[1]})

    # ----------------------------------------------------------------- gadget recorders
    def plug_gadget(self, spec: GadgetRecorder, timeout: float = 30.0) -> PluggedGadget:
        """Create the gadget in configfs (and its FunctionFS server) and bind it to its UDC."""
        if spec.image is not None and not spec.image.is_relative_to(self.exchange_dir):
            raise HilError(f"gadget image {spec.image} must be inside {self.exchange_dir}")
        self._gadget("create", spec)
        ffs = None
        if spec.vendor_bulk:
            ffs = self._start_ffs(spec, timeout)
        self._gadget("bind", spec)
        return PluggedGadget(spec, ffs)

    def unplug_gadget(self, plugged: PluggedGadget) -> None:
        """Detach from the UDC (a cable pull); the gadget stays configured for replug_gadget."""
        self._gadget("unbind", plugged.spec)

    def replug_gadget(self, plugged: PluggedGadget) -> None:
        """Attach a previously unplugged gadget again."""
        self._gadget("bind", plugged.spec)

    def remove_gadget(self, plugged: PluggedGadget) -> None:
        """Detach and tear the gadget down completely (stops its FunctionFS server)."""
        self._gadget("unbind", plugged.spec)
        if plugged.ffs_process is not None:
            plugged.ffs_process.terminate()
        self._gadget("remove", plugged.spec)

    # ----------------------------------------------------------------- firmware recorders
    def plug_firmware_recorder(self, spec: FirmwareRecorder, timeout: float = 60.0) -> GuestProcess:
        """Start the recorder's firmware: its control-mode gadget is bound when this returns.
        `terminate()` the returned process to pull the cable (it removes its gadgets)."""
        if not spec.image.is_relative_to(self.exchange_dir):
            raise HilError(f"recorder image {spec.image} must be inside {self.exchange_dir}")
        fifo = f"/run/hil-fw-{spec.name}.ready"
        log = self.exchange_dir / f"fw-{spec.name}.log"
        payload = {
            "name": spec.name.replace("-", "_"),
            "kind": spec.kind,
            "udc": spec.udc,
            "storage_udc": spec.storage_udc or spec.udc,
            "vendor_id": spec.vendor_id,
            "product_id": spec.product_id,
            "storage_vendor_id": spec.storage_vendor_id,
            "storage_product_id": spec.storage_product_id,
            "serial": spec.serial,
            "password": spec.password,
            "battery": spec.battery,
            "image": str(spec.image),
            "quirks": list(spec.quirks),
        }
        self.run(["rm", "-f", fifo])
        self.run(["mkfifo", fifo])
        proc = self.spawn([str(GUEST_PYTHON), str(FIRMWARE_PATH), json.dumps(payload), fifo], log)
        try:
            ready = self.run(["head", "-n1", fifo], timeout=timeout).text.strip()
        except HilTimeout as exc:
            raise HilError(f"recorder firmware did not come up; its log:\n{_tail(log)}") from exc
        if ready != "READY":
            raise HilError(f"recorder firmware failed: {ready!r}\n{_tail(log)}")
        return proc

    # ----------------------------------------------------------------- internals
    def _start(self, timeout: float) -> None:
        kernel, initrd = self.cache_dir / "vmlinuz", self.cache_dir / "initrd.gz"
        missing = [str(p) for p in (kernel, initrd, GUEST_PYTHON) if not p.exists()]
        if shutil.which(QEMU_BINARY) is None:
            missing.append(QEMU_BINARY)
        if missing:
            raise HilSetupMissing(
                f"HIL host not prepared, missing: {', '.join(missing)}; run tests/hil/setup.sh"
            )
        self.exchange_dir.mkdir(parents=True, exist_ok=True)
        agent_sock = self._sock_dir / "agent.sock"
        qmp_sock = self._sock_dir / "qmp.sock"
        argv = [
            QEMU_BINARY,
            *_accel_args(),
            "-machine",
            "q35",
            "-m",
            str(self._memory_mb),
            "-smp",
            str(self._smp),
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-kernel",
            str(kernel),
            "-initrd",
            str(initrd),
            "-append",
            " ".join(
                [
                    "console=ttyS0",
                    "panic=-1",
                    "quiet",
                    f"hil.xchg={self.exchange_dir}",
                    f"hil.python={GUEST_PYTHON}",
                    f"hil.agent={AGENT_PATH}",
                    f"hil.rootcache={self._root_cache}",
                ]
            ),
            "-chardev",
            f"file,id=con0,path={self.console_log}",
            "-serial",
            "chardev:con0",
            "-qmp",
            f"unix:{qmp_sock},server=on,wait=off",
            "-device",
            "virtio-serial-pci",
            # wait=on: QEMU does not start the guest before we are connected, so no byte is lost
            "-chardev",
            f"socket,id=agent,path={agent_sock},server=on,wait=on",
            "-device",
            f"virtserialport,chardev=agent,name={AGENT_PORT_NAME}",
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs",
            f"local,path={self.exchange_dir},mount_tag=xchg,security_model=none",
            # 15 USB2 + 15 USB3 root ports (the default p2=4 leaves ports 5-8 USB3-only)
            "-device",
            "qemu-xhci,id=xhci,p2=15,p3=15",
        ]
        for n, disk in enumerate(self.disks):
            if not disk.is_file():
                raise HilError(f"disk image {disk} does not exist")
            # cache=writeback: what the guest wrote reaches the host file even if QEMU is
            # killed (power_cut); what the guest kept in its own page cache is lost, as on a dock.
            argv += [
                "-drive",
                f"file={disk},if=none,id=disk{n},format=raw,cache=writeback",
                "-device",
                f"virtio-blk-pci,drive=disk{n},serial=hil-disk{n}",
            ]
        started = time.monotonic()
        with self.qemu_log.open("wb") as qemu_out:
            self._proc = subprocess.Popen(
                argv, stdout=qemu_out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = started + timeout
        agent = _connect_unix(agent_sock, deadline, self._proc, self.qemu_log)
        self._qmp = _Qmp(_connect_unix(qmp_sock, deadline, self._proc, self.qemu_log))
        self._agent = _Channel(agent, self.udev_events, self._why_dead)
        self._agent.wait_hello(max(0.0, deadline - time.monotonic()))
        self.boot_seconds = time.monotonic() - started

    def _request(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self._agent is None or not self.running:
            raise HilError(f"guest is not running; {self._why_dead()}")
        return self._agent.request(request, timeout)

    def _why_dead(self) -> str:
        rc = None if self._proc is None else self._proc.poll()
        state = "QEMU running" if rc is None else f"QEMU exited rc={rc}"
        qemu_out = self.qemu_log.read_text(errors="replace")[-2000:] if self.qemu_log.exists() else ""
        return f"{state}\n--- qemu output ---\n{qemu_out}\n{self.console_tail()}"

    def _qmp_cmd(self, command: str, **arguments: Any) -> Any:
        if self._qmp is None:
            raise HilError("guest is not running")
        try:
            return self._qmp.command(command, arguments, timeout=30)
        except HilError as exc:
            raise HilError(f"{exc}\n{self._why_dead()}") from exc

    def _add_storage(
        self, name: str, image: Path, port: str, serial: str | None, read_only: bool
    ) -> tuple[str, str]:
        if not image.is_file():
            raise HilError(f"disk image {image} does not exist")
        node, dev_id = f"{name}-disk", f"{name}-msd"
        self._qmp_cmd(
            "blockdev-add",
            driver="raw",
            **{"node-name": node, "read-only": read_only},
            file={"driver": "file", "filename": str(image), "read-only": read_only},
        )
        args: dict[str, Any] = {
            "driver": "usb-storage",
            "id": dev_id,
            "bus": "xhci.0",
            "port": port,
            "drive": node,
            "removable": True,
        }
        if serial is not None:
            args["serial"] = serial
        self._qmp_cmd("device_add", **args)
        return dev_id, node

    def _add_serial(self, name: str, port: str, serial: str) -> tuple[str, socket.socket]:
        chardev, dev_id = f"{name}-tty", f"{name}-ser"
        path = self._sock_dir / f"{chardev}.sock"
        self._qmp_cmd(
            "chardev-add",
            id=chardev,
            backend={
                "type": "socket",
                "data": {
                    "addr": {"type": "unix", "data": {"path": str(path)}},
                    "server": True,
                    "wait": False,
                },
            },
        )
        link = _connect_unix(path, time.monotonic() + 10, self._proc, self.qemu_log)
        self._serial_links.append(link)
        # always-plugged: otherwise the port detaches whenever the host end disconnects
        self._qmp_cmd(
            "device_add",
            driver="usb-serial",
            id=dev_id,
            bus="xhci.0",
            port=port,
            chardev=chardev,
            serial=serial,
            **{"always-plugged": True},
        )
        return dev_id, link

    def _device_del(self, dev_id: str, timeout: float) -> None:
        assert self._qmp is not None
        mark = self._qmp.event_mark()
        self._qmp_cmd("device_del", id=dev_id)
        # blockdev-del right after device_del fails with "Node in use" until QEMU confirms
        self._qmp.wait_event("DEVICE_DELETED", {"device": dev_id}, timeout, after=mark)

    def _gadget(self, action: str, spec: GadgetRecorder) -> None:
        # run by the agent itself (guest/gadget.py imported there): no Python start per action
        fields = (
            {
                "name": spec.name,
                "vendor_id": spec.vendor_id,
                "product_id": spec.product_id,
                "serial": spec.serial,
                "manufacturer": spec.manufacturer,
                "product": spec.product,
                "image": None if spec.image is None else str(spec.image),
                "acm": spec.acm,
                "vendor_bulk": spec.vendor_bulk,
                "udc": spec.udc,
            }
        )
        self._request({"op": "gadget", "action": action, "spec": fields}, timeout=30)

    def _start_ffs(self, spec: GadgetRecorder, timeout: float) -> GuestProcess:
        mount = f"/run/hil-ffs/{spec.name}"
        fifo = f"/run/hil-ffs/{spec.name}.ready"
        log = self.exchange_dir / f"ffs-{spec.name}.log"
        self.run(["mkfifo", fifo])
        proc = self.spawn([str(GUEST_PYTHON), str(FFS_PATH), mount, fifo], log)
        # the server writes one line into the FIFO once its descriptors are accepted
        try:
            ready = self.run(["head", "-n1", fifo], timeout=timeout).text.strip()
        except HilTimeout as exc:
            raise HilError(
                f"FunctionFS server did not come up; its log:\n{log.read_text(errors='replace')}"
            ) from exc
        if ready != "READY":
            raise HilError(f"FunctionFS server failed: {ready!r}\n{log.read_text(errors='replace')}")
        return proc

    def _cleanup(self) -> None:
        for channel in (self._agent, self._qmp):
            if channel is not None:
                channel.close()
        for link in self._serial_links:
            link.close()
        self._serial_links.clear()
        shutil.rmtree(self._sock_dir, ignore_errors=True)


class _Channel:
    """The agent's JSON-line channel: replies matched to requests by id; udev events to a log."""

    def __init__(self, sock: socket.socket, events: UdevEventLog, why_dead: Callable[[], str]) -> None:
        self._sock = sock
        self._events = events
        self._why_dead = why_dead
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._next_id = 0
        self._hello: dict[str, Any] | None = None
        self._closed: str | None = None
        self._reader = threading.Thread(target=self._read_loop, name="hil-agent", daemon=True)
        self._reader.start()

    def wait_hello(self, timeout: float) -> dict[str, Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: self._hello is not None or self._closed, timeout):
                raise HilTimeout(f"guest agent did not start within {timeout:.0f}s\n{self._why_dead()}")
            if self._hello is None:
                raise HilError(f"guest agent channel closed before hello: {self._closed}\n{self._why_dead()}")
            return self._hello

    def request(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        with self._cond:
            self._next_id += 1
            rid = self._next_id
        # not under _cond: the reader thread must be able to deliver replies meanwhile
        with self._send_lock:
            self._sock.sendall(json.dumps({**request, "id": rid}).encode() + b"\n")
        with self._cond:
            done = self._cond.wait_for(lambda: rid in self._replies or self._closed, timeout)
            if rid not in self._replies:
                what = "closed: " + str(self._closed) if done else f"no reply within {timeout}s"
                error = HilError if done else HilTimeout
                raise error(
                    f"guest agent {what} to {request.get('op')} {request.get('argv', '')}\n{self._why_dead()}"
                )
            reply = self._replies.pop(rid)
        if not reply["ok"]:
            raise HilError(f"guest agent: {request.get('op')} failed: {reply['error']}")
        return reply

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already disconnected: nothing to shut down
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def _read_loop(self) -> None:
        reason = "EOF"
        try:
            for line in _lines(self._sock):
                self._dispatch(json.loads(line))
        except (OSError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._closed = reason
            self._cond.notify_all()
        self._events._fail(reason)

    def _dispatch(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "udev":
            d = message["device"]
            self._events._append(
                UdevEvent(
                    action=d["action"],
                    sys_path=d["sys_path"],
                    subsystem=d["subsystem"],
                    device_type=d["device_type"],
                    device_node=d["device_node"],
                    properties=d["properties"],
                    parent_chain=tuple(d["parent_chain"]),
                    guest_uptime=message["uptime"],
                    host_monotonic=time.monotonic(),
                )
            )
            return
        with self._cond:
            if event == "hello":
                self._hello = message
            else:
                self._replies[int(message["id"])] = message
            self._cond.notify_all()


class _Qmp:
    """Minimal QMP client: serialized commands, events kept for wait_event."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._cond = threading.Condition()
        self._events: list[dict[str, Any]] = []
        self._returns: list[dict[str, Any]] = []
        self._cmd_lock = threading.Lock()
        self._closed: str | None = None
        self._reader = threading.Thread(target=self._read_loop, name="hil-qmp", daemon=True)
        self._greeted = threading.Event()
        self._reader.start()
        if not self._greeted.wait(30):
            raise HilTimeout("no QMP greeting within 30s")
        self.command("qmp_capabilities", {}, timeout=30)

    def command(self, name: str, arguments: dict[str, Any], timeout: float) -> Any:
        message: dict[str, Any] = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        with self._cmd_lock, self._cond:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
            if not self._cond.wait_for(lambda: self._returns or self._closed, timeout):
                raise HilTimeout(f"QMP {name}: no reply within {timeout}s")
            if not self._returns:
                raise HilError(f"QMP {name}: connection closed ({self._closed})")
            reply = self._returns.pop(0)
        if "error" in reply:
            raise HilError(f"QMP {name} {arguments}: {reply['error'].get('desc', reply)}")
        return reply["return"]

    def event_mark(self) -> int:
        with self._cond:
            return len(self._events)

    def wait_event(self, name: str, data: dict[str, Any], timeout: float, after: int) -> None:
        def seen() -> bool:
            return any(
                e["event"] == name and all(e.get("data", {}).get(k) == v for k, v in data.items())
                for e in self._events[after:]
            )

        with self._cond:
            if not self._cond.wait_for(lambda: seen() or self._closed, timeout) or not seen():
                raise HilTimeout(
                    f"QMP event {name} {data} not seen within {timeout}s (closed={self._closed})"
                )

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already disconnected: nothing to shut down
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def _read_loop(self) -> None:
        reason = "EOF"
        try:
            for line in _lines(self._sock):
                message = json.loads(line)
                with self._cond:
                    if "QMP" in message:
                        self._greeted.set()
                    elif "event" in message:
                        self._events.append(message)
                    else:
                        self._returns.append(message)
                    self._cond.notify_all()
        except (OSError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._closed = reason
            self._cond.notify_all()


def _lines(sock: socket.socket) -> Iterator[bytes]:
    buf = b""
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line


def _connect_unix(
    path: Path, deadline: float, proc: subprocess.Popen[bytes] | None, qemu_log: Path
) -> socket.socket:
    """Connect to a socket QEMU is about to create. Polling is the only option here: QEMU gives
    no notification before the socket exists; we stop at once if QEMU exits."""
    while True:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.connect(str(path))
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
        if proc is not None and proc.poll() is not None:
            raise HilError(
                f"QEMU exited rc={proc.returncode} before {path.name} appeared:\n"
                f"{qemu_log.read_text(errors='replace')[-2000:]}"
            )
        if time.monotonic() > deadline:
            raise HilTimeout(f"QEMU socket {path} did not appear")
        time.sleep(0.02)


def _accel_args() -> list[str]:
    """KVM when it really works (the CPU has vmx/svm), otherwise multi-threaded TCG."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
        kvm_ok = os.access("/dev/kvm", os.R_OK | os.W_OK) and (" vmx" in flags or " svm" in flags)
    except OSError:
        kvm_ok = False
    if kvm_ok and os.environ.get("HIL_ACCEL", "auto") != "tcg":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi"]


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return f"({path} does not exist)"


def _io(result: CommandResult) -> str:
    return (
        f"--- stdout ---\n{result.stdout.decode(errors='replace')[-3000:]}\n"
        f"--- stderr ---\n{result.stderr.decode(errors='replace')[-3000:]}"
    )


@contextmanager
def booted(work_dir: Path, **kwargs: Any) -> Iterator[Guest]:
    """`with booted(tmp_path) as guest:` — boot, yield, then shut down (power cut on error)."""
    with Guest.boot(work_dir, **kwargs) as guest:
        yield guest


if __name__ == "__main__":  # manual poke: python -m tests.hil.harness
    with booted(Path(tempfile.mkdtemp(prefix="hil-manual-"))) as g:
        print(f"booted in {g.boot_seconds:.2f}s", file=sys.stderr)
        print(g.run("uname -a; cat /proc/uptime").text)
