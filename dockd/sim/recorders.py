"""Virtual body-worn recorders on real pseudo-terminals, and their SD-card volumes.

A ``SimRecorder`` speaks ``gat947-serial`` (the test framing of the GA/T 947 function set, which
no recorder speaks: the dock's ``test-serial`` transport) or ``amba-stream`` (Ambarella B1
frames) on the slave side of ``os.openpty()`` from a thread, as a real recorder would on its
CDC-ACM port: admin password checked by the device, battery, a drifting clock, optional missing
SD card, reply delays, and injected faults (silence, garbage, short replies, pull-out).  "Switch
to storage" answers, then closes the control port and fires ``on_mass_storage`` so a device
simulator can present the volume.

Usage::

    with SimRecorder(SimRecorderSpec(serial="ZFY0001"), SystemClock()) as rec:
        session = get_driver("gat947").open(TransportSpec("test-serial", rec.port), b"123456",
                                            clock)
"""

from __future__ import annotations

import datetime as dt
import enum
import errno
import fcntl
import logging
import os
import random
import select
import struct
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dockd.clock import Clock
from dockd.devices.recorders import gat947_framing as framing
from dockd.devices.recorders import gat947_protocol as gat
from dockd.devices.recorders.base import ProtocolError
from dockd.devices.recorders.wallclock import recorder_zone, to_wall
from dockd.errors import UsageError
from dockd.i18n import _

log = logging.getLogger(__name__)

PROTOCOLS = ("gat947-serial", "amba-stream")


class Fault(enum.Enum):
    """What an injected fault does to the next matching exchange."""

    SILENT = "silent"  # read the request, never answer
    GARBAGE = "garbage"  # answer with random bytes
    SHORT = "short"  # answer with the first half of the right reply
    PULL_OUT = "pull_out"  # close the port after reading the request
    RESULT_101 = "result_101"  # gat947: leak iRet 101 instead of the real result
    RESULT_102 = "result_102"  # gat947: leak iRet 102
    # The storage switch without its reply: the recorder leaves the bus at once and comes
    # back as a disk (real ones do; public hosts ignore the reply).
    SILENT_SWITCH = "silent_switch"


@dataclass(frozen=True)
class SimRecorderSpec:
    """Everything that makes one virtual recorder.

    ``clock_start`` (naive local wall time, e.g. 1970-01-01 or 2099-12-31) overrides "dock time
    + ``clock_offset_s``"; ``drift_ppm`` makes the clock run fast (+) or slow (-).
    """

    serial: str = "ZFY0001"
    protocol: str = "gat947-serial"
    password: bytes = b"123456"
    id_code: str = "ABCDE"
    officer_id: str = "010203"
    officer_name: str = "张三"
    unit_id: str = "330100000000"
    unit_name: str = "城关派出所"
    zfy_layout: int = 94
    battery_percent: int = 80
    clock_start: dt.datetime | None = None
    clock_offset_s: float = 0.0
    drift_ppm: float = 0.0
    timezone: str = "Asia/Shanghai"
    clock_set_fails: bool = False
    has_sd: bool = True
    total_bytes: int = 64 * 1024**3
    free_bytes: int = 60 * 1024**3
    reply_delay_s: float = 0.0
    resolution: tuple[int, int] = (1920, 1080)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise UsageError(_("simulated protocol {protocol} is not one of {protocols}").format(
                protocol=repr(self.protocol), protocols=PROTOCOLS))
        if not 0 <= self.battery_percent <= 100:
            raise UsageError(_("battery {percent}% is outside 0..100").format(
                percent=self.battery_percent))


class DriftingClock:
    """A recorder's wall clock: starts somewhere, runs at (1 + drift) times the dock's rate."""

    def __init__(self, clock: Clock, start_wall: dt.datetime, drift_ppm: float) -> None:
        self._clock = clock
        self._rate = 1.0 + drift_ppm / 1e6
        self._lock = threading.Lock()
        self._mono0 = clock.monotonic()
        self._wall0 = start_wall

    def now(self) -> dt.datetime:
        """Current naive wall time, whole seconds as a recorder keeps it."""
        with self._lock:
            elapsed = (self._clock.monotonic() - self._mono0) * self._rate
            return (self._wall0 + dt.timedelta(seconds=elapsed)).replace(microsecond=0)

    def set(self, wall: dt.datetime) -> None:
        """Set the clock, as SyncDevTime does."""
        with self._lock:
            self._mono0 = self._clock.monotonic()
            self._wall0 = wall


class RecorderState:
    """The device's state, shared by every protocol face of one recorder."""

    def __init__(self, spec: SimRecorderSpec, clock: Clock) -> None:
        self.spec = spec
        zone = recorder_zone(spec.timezone)
        start = spec.clock_start or (to_wall(clock.now(), zone)
                                     + dt.timedelta(seconds=spec.clock_offset_s))
        self.clock = DriftingClock(clock, start, spec.drift_ppm)
        self.battery_percent = spec.battery_percent
        self.has_sd = spec.has_sd
        self.info = gat.ZfyInfo(spec.serial, spec.officer_id, spec.officer_name, spec.unit_id,
                                spec.unit_name)
        self.clock_sets: list[dt.datetime] = []

    def password_ok(self, field: bytes) -> bool:
        """The device compares the password it was sent with its own."""
        return field == gat.encode_password(self.spec.password)


class Gat947Responder:
    """Answers the GA/T 947 test framing from a ``RecorderState``."""

    _NEEDS_PASSWORD = frozenset({*gat.Command, *framing.ExtraCommand}) - {
        gat.Command.INIT, gat.Command.GET_ID_CODE}

    def __init__(self, state: RecorderState) -> None:
        self._state = state

    def handle(self, request: framing.Request) -> tuple[bytes, bool]:
        """Return (reply frame, switch to mass storage after sending it)."""
        command: gat.Command | framing.ExtraCommand
        try:
            command = (framing.ExtraCommand(request.command)
                       if request.command in framing.ExtraCommand._value2member_map_
                       else gat.Command(request.command))
        except ValueError:
            return framing.encode_response(request.command, gat.ResultCode.FAILED), False
        if command in self._NEEDS_PASSWORD and not self._state.password_ok(request.password):
            return framing.encode_response(command, gat.ResultCode.CHECK_PWD_FAILED), False
        code, payload, switch = self._run(command, request.payload)
        return framing.encode_response(command, code, payload), switch

    def _run(self, command: gat.Command | framing.ExtraCommand,
             payload: bytes) -> tuple[int, bytes, bool]:
        state, ok = self._state, gat.ResultCode.CONNECT_SUCCESS
        if command in (gat.Command.INIT, gat.Command.GET_ID_CODE):
            return ok, state.spec.id_code.encode("ascii").ljust(gat.ID_CODE_WIRE_LEN, b"\0"), False
        if command is gat.Command.GET_ZFY_INFO:
            return ok, gat.encode_zfy_info(state.info, gat.ZfyLayout(state.spec.zfy_layout)), False
        if command is gat.Command.WRITE_ZFY_INFO:
            try:
                state.info = gat.decode_zfy_info(payload).to_info()
            except ProtocolError:
                return gat.ResultCode.FAILED, b"", False
            return ok, b"", False
        if command is gat.Command.READ_BATTERY:
            return ok, gat.encode_battery(state.battery_percent), False
        if command is gat.Command.READ_RESOLUTION:
            return ok, gat.encode_resolution(gat.Resolution(*state.spec.resolution)), False
        if command is framing.ExtraCommand.GET_DEV_TIME:
            return ok, framing.encode_time14(state.clock.now()), False
        if command is framing.ExtraCommand.GET_STORAGE:
            spec = state.spec
            return ok, framing.encode_storage(state.has_sd,
                                              spec.total_bytes if state.has_sd else 0,
                                              spec.free_bytes if state.has_sd else 0), False
        if command is gat.Command.SYNC_DEV_TIME:
            return self._sync_time(payload), b"", False
        # SET_MSDC: like USBJL, the SD status decides.
        if not state.has_sd:
            return gat.ResultCode.MSDC_FAILED, b"", False
        return gat.ResultCode.MSDC_SUCCESS, b"", True

    def _sync_time(self, payload: bytes) -> int:
        try:
            wall = gat.decode_time7(payload)
        except ProtocolError:
            return gat.ResultCode.SET_SYSTEMTIME_FAILED
        if self._state.spec.clock_set_fails:
            return gat.ResultCode.SET_SYSTEMTIME_FAILED
        self._state.clock.set(wall)
        self._state.clock_sets.append(wall)
        return gat.ResultCode.SET_SYSTEMTIME_SUCCESS


class AmbaResponder:
    """Answers Ambarella B1 frames: ``@Ver``, ``@Gdv``, ``@Sdt``, ``@Stm``, ``@ATH``."""

    def __init__(self, state: RecorderState) -> None:
        self._state = state
        self._logged_in = False

    def handle(self, frame: bytes) -> tuple[bytes, bool]:
        """Return (reply, switch to mass storage after sending it)."""
        text = frame.decode("ascii", "replace").strip()
        parts = text[1:].rstrip("#").split(";") if text.startswith("@") else []
        command = parts[0] if parts else ""
        payload = parts[2] if len(parts) > 2 else ""
        if command == "Ver":
            self._logged_in = True
            return b"@Ver;OK;#", False
        if not self._logged_in or command not in ("Gdv", "Sdt", "Stm", "ATH"):
            return self._error(command), False
        if command in ("Gdv", "ATH") and payload.encode("ascii", "replace") != \
                self._state.spec.password:
            return self._error(command), False
        if command == "Gdv":
            label = self._state.spec.serial
            return f"@Gdv;{len(label)};{label};#".encode("ascii"), False
        if command == "ATH":
            if not self._state.has_sd:
                return self._error(command), False
            return b"@ATH;OK;#", True
        return self._set_clock(command, payload), False

    def _set_clock(self, command: str, payload: str) -> bytes:
        now = self._state.clock.now()
        try:
            if command == "Sdt":
                wall = dt.datetime.strptime(payload, "%Y%m%d").replace(
                    hour=now.hour, minute=now.minute, second=now.second)
            else:  # Stm: HHmmss00 with LEN 6, accepted as real devices must
                clock = dt.datetime.strptime(payload[:6], "%H%M%S")
                wall = now.replace(hour=clock.hour, minute=clock.minute, second=clock.second)
        except ValueError:
            return self._error(command)
        if self._state.spec.clock_set_fails:
            return self._error(command)
        self._state.clock.set(wall)
        self._state.clock_sets.append(wall)
        return f"@{command};OK;#".encode("ascii")

    @staticmethod
    def _error(command: str) -> bytes:
        # Echo only a well-formed command name: a hostile frame must not shape the reply.
        name = command if len(command) == 3 and command.isascii() and command.isalpha() else "Err"
        return f"@{name};ERROR;#".encode("ascii")


MassStorageCallback = Callable[["SimRecorder"], None]


class SimRecorder:
    """One virtual recorder serving its control protocol on a pty from a thread.

    ``port`` is the path the host opens (e.g. ``/dev/pts/7``).  ``volume_dir`` is its SD card;
    ``mass_storage`` is set (and ``on_mass_storage`` callbacks run) after a successful switch.
    """

    def __init__(self, spec: SimRecorderSpec, clock: Clock, volume_dir: Path | None = None,
                 on_mass_storage: Iterable[MassStorageCallback] = ()) -> None:
        self.spec = spec
        self.state = RecorderState(spec, clock)
        self.volume_dir = volume_dir
        self.mass_storage = threading.Event()
        self.closed = threading.Event()
        self._callbacks = list(on_mass_storage)
        self._faults: list[tuple[Fault, str | None]] = []
        self._lock = threading.Lock()
        self._rng = random.Random(spec.seed)
        self._gat = Gat947Responder(self.state)
        self._amba = AmbaResponder(self.state)
        self._master, self._slave = os.openpty()
        # Raw from the start: no echo or line editing before the host configures the port.
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=f"sim-{spec.serial}",
                                        daemon=True)
        self._thread.start()

    def inject(self, fault: Fault, command: str | None = None) -> None:
        """Apply ``fault`` once, to the next request for ``command`` (any command if None).

        ``command`` is a GA/T 947 ``Command`` name (``READ_BATTERY``) or an Ambarella command
        (``Gdv``).
        """
        with self._lock:
            self._faults.append((fault, command))

    def on_mass_storage(self, callback: MassStorageCallback) -> None:
        """Run ``callback(self)`` after the recorder switches to storage."""
        self._callbacks.append(callback)

    def pull_out(self) -> None:
        """Yank the recorder: the control port disappears at once."""
        self._close_pty()

    def stop(self) -> None:
        """Stop serving and release the pty."""
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> SimRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the device's side of the wire ---------------------------------------------------

    def _serve(self) -> None:
        splitter = framing.FrameSplitter()
        pending = bytearray()
        while not self.closed.is_set():
            try:
                ready, _w, _x = select.select([self._master, self._wake_r], [], [], 0.5)
            except (OSError, ValueError):
                return  # the pty was closed under us (pull-out)
            if self._wake_r in ready:
                return
            if self._master not in ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            if self.spec.protocol == "gat947-serial":
                for frame in splitter.feed(data):
                    self._answer_gat947(frame)
            else:
                pending += data
                while b"#" in pending:
                    end = pending.index(b"#") + 1
                    frame = bytes(pending[:end])
                    del pending[:end]
                    self._answer_amba(frame)

    def _answer_gat947(self, frame: bytes) -> None:
        try:
            request = framing.decode_request(frame)
        except ProtocolError as exc:
            log.debug("sim %s drops a bad frame: %s", self.spec.serial, exc)
            return  # a real device ignores what it cannot parse; the host times out
        fault = self._take_fault(_command_name(request.command))
        reply, switch = self._gat.handle(request)
        if fault in (Fault.RESULT_101, Fault.RESULT_102):
            code = 101 if fault is Fault.RESULT_101 else 102
            reply, switch = framing.encode_response(request.command, code), False
            fault = None
        self._send(reply, switch, fault)

    def _answer_amba(self, frame: bytes) -> None:
        text = frame.decode("ascii", "replace").lstrip()
        fault = self._take_fault(text[1:4] if text.startswith("@") else None)
        reply, switch = self._amba.handle(frame)
        self._send(reply, switch, fault)

    def _take_fault(self, command: str | None) -> Fault | None:
        with self._lock:
            for index, (fault, target) in enumerate(self._faults):
                if target is None or target == command:
                    del self._faults[index]
                    return fault
        return None

    def _send(self, reply: bytes, switch: bool, fault: Fault | None) -> None:
        if fault is Fault.SILENT_SWITCH and switch:
            self._close_pty()
            self.mass_storage.set()
            for callback in self._callbacks:
                callback(self)
            return
        if fault is Fault.SILENT:
            return
        if fault is Fault.PULL_OUT:
            self._close_pty()
            return
        if fault is Fault.GARBAGE:
            reply = bytes(self._rng.randrange(256) for _ in range(len(reply)))
        elif fault is Fault.SHORT:
            reply = reply[:len(reply) // 2]
        if self.spec.reply_delay_s:
            time.sleep(self.spec.reply_delay_s)
        try:
            os.write(self._master, reply)
        except OSError:
            return
        if switch:
            self._switch_to_storage()

    def _switch_to_storage(self) -> None:
        # Let the host read the reply before the port vanishes, as the real device answers
        # before it drops off the bus.
        # A pty hands written bytes to the reader through a kernel work queue: right after the
        # write they may not be visible yet, so wait to see them arrive and then be read (or,
        # if never seen, give the host a moment: it may have read them already).
        started = time.monotonic()
        seen = False
        while time.monotonic() - started < 2.0:
            if _unread_bytes(self._slave):
                seen = True
            elif seen or time.monotonic() - started > 0.3:
                break
            time.sleep(0.005)
        self._close_pty()
        self.mass_storage.set()
        for callback in self._callbacks:
            callback(self)

    def _close_pty(self) -> None:
        with self._lock:
            self.closed.set()
            for name in ("_master", "_slave"):
                fd = getattr(self, name)
                if fd >= 0:
                    setattr(self, name, -1)
                    os.close(fd)


def _command_name(number: int) -> str:
    for kind in (gat.Command, framing.ExtraCommand):
        if number in kind._value2member_map_:
            return kind(number).name
    return str(number)


def _unread_bytes(fd: int) -> int:
    if fd < 0:
        return 0
    try:
        raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    except OSError as exc:
        if exc.errno == errno.EBADF:
            return 0
        raise
    return int(struct.unpack("i", raw)[0])


# --- SD-card content -----------------------------------------------------------------------

@dataclass(frozen=True)
class SampleFile:
    """One generated recording: where it is, how big, and the seed-derived content's identity."""

    relpath: str
    size: int
    path: Path = field(compare=False)


_MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def make_sample_volume(directory: Path, serial: str,
                       files: Sequence[tuple[str, int]] | None = None,
                       seed: int = 0) -> list[SampleFile]:
    """Fill ``directory`` like a recorder's card: deterministic pseudo-video files.

    ``files`` are (relative path, size in bytes); by default three ``DCIM/<yymmdd>/`` MP4s named
    after ``serial``.  The same (serial, relpath, size, seed) always gives the same bytes.
    Paths must stay inside ``directory``.
    """
    if files is None:
        files = [(f"DCIM/240315/{serial}_20240315_0800{n:02d}_0001.MP4", 256 * 1024 + n)
                 for n in range(3)]
    made: list[SampleFile] = []
    for relpath, size in files:
        pure = PurePosixPath(relpath)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts or size < 0:
            raise UsageError(_("sample file {path} ({size} bytes) must be a relative path "
                               "inside the volume with a size >= 0").format(
                                   path=repr(relpath), size=size))
        target = directory.joinpath(*pure.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        rng = random.Random(f"{seed}:{serial}:{relpath}:{size}")
        with open(target, "wb") as handle:
            head = _MP4_HEAD[:size]
            handle.write(head)
            remaining = size - len(head)
            while remaining > 0:
                chunk = min(remaining, 1 << 20)
                handle.write(rng.randbytes(chunk))
                remaining -= chunk
        made.append(SampleFile(relpath, size, target))
    return made
