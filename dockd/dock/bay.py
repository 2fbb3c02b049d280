"""One bay and the session of the recorder docked in it.

A worker thread per bay takes the device events of its USB port, in order, and walks the
recorder through ``identifying → checking → offloading → ready`` or ``fault(reason)``:

* two-phase recorders (a control port first): log in, read identity, battery, storage and
  clock, set the clock when the dock's own is synchronised, switch to mass storage, and
  follow the re-enumeration on the same port to the disk — whether or not the recorder
  confirmed the switch: the disk that appears (or not) decides;
* plain mass-storage recorders: straight to the disk, identity from the USB serial.

The volume is mounted read-only, offloaded through the same Ingestor as ``dockd ingest``,
and unmounted. A pull-out mid-offload interrupts the session (nothing is lost; the next
dock resumes). Hardware edges come in through ``DockContext``.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockd.clock import Clock, utc_iso
from dockd.config import Config
from dockd.config.daemon import DaemonSection, ModelSpec
from dockd.config.health import HealthSection
from dockd.devices.events import DeviceEvent
from dockd.devices.mounts import Mounter, MountError
from dockd.devices.recorders.base import (
    ClockSetResult,
    LoginFailed,
    RecorderDriver,
    RecorderError,
    RecorderIdentity,
    RecorderSession,
    StorageInfo,
    SwitchOutcome,
    TransportSpec,
)
from dockd.devices.recorders.wallclock import recorder_zone
from dockd.devices.timesync import ClockSyncState
from dockd.dock.clearing import clear_recorder
from dockd.dock.faults import fault_for
from dockd.dock.health import ClockCheck, HealthReport, evaluate, needs_clock_set
from dockd.dock.states import BayState, BayStatus, FaultReason, Progress
from dockd.dock.storage_identity import disk_serial, foreign_disk
from dockd.errors import DockdError, StoreFullError
from dockd.store import registry
from dockd.store.events import (
    BayFault,
    ClockSet,
    CustodyEvent,
    RecorderDocked,
    RecorderHealthChecked,
    RecorderRemovedEarly,
    RecorderText,
    RecorderUndocked,
)
from dockd.store.evidence import EvidenceStore
from dockd.store.ingest import Ingestor, IngestReport
from dockd.store.outbox import enqueue_alert
from dockd.store.outcomes import Outcome, SessionResult, StopReason

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.5


@dataclass
class DockContext:
    """Everything a bay needs from the rest of the dock, built once by the daemon."""

    config: Config
    daemon: DaemonSection
    health: HealthSection
    clock: Clock
    clock_sync: ClockSyncState
    mounter: Mounter
    driver_for: Callable[[str], RecorderDriver]
    open_store: Callable[[], EvidenceStore]
    offload_slots: threading.Semaphore
    on_status: Callable[[BayStatus], None]
    on_health: Callable[[str, int, HealthReport], None]
    on_record: Callable[[], None] = lambda: None  # a custody record was committed
    actor: str = "dockd"


class _Removed(Exception):
    """The recorder left the bay while we waited for it."""


class _Fault(Exception):
    def __init__(self, reason: FaultReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class _Docked:
    """What is known about the recorder in the bay during one session."""

    model: ModelSpec | None
    identity: RecorderIdentity | None = None
    officer_id: str | None = None
    officer_name: str | None = None
    battery: int | None = None
    storage: StorageInfo | None = None
    clock: ClockCheck = dataclasses.field(default_factory=lambda: ClockCheck(None))
    switch: SwitchOutcome | None = None  # set once a two-phase recorder was told to switch
    health: HealthReport | None = None
    faults: list[FaultReason] = dataclasses.field(default_factory=list)


class Bay:
    """A bay's worker: feed it events with :meth:`submit`; it runs in its own thread."""

    def __init__(self, number: int, label: str, port: str, ctx: DockContext) -> None:
        self.number = number
        self.label = label
        self.port = port
        self.ctx = ctx
        self.events: queue.Queue[DeviceEvent | None] = queue.Queue()
        self.status = BayStatus(bay=number, label=label, updated_at=utc_iso(ctx.clock.now()))
        self.cancel = threading.Event()
        self._cancel_reason = StopReason.REMOVED_DURING_OFFLOAD
        self._offloading = False
        self._present = False
        self._stopping = False
        self._store: EvidenceStore | None = None
        self._docked: _Docked | None = None
        self._last_progress = 0.0
        self.thread = threading.Thread(target=self._run, name=f"bay-{number}", daemon=True)

    # -- called from other threads ------------------------------------------------------

    def start(self) -> None:
        self.ctx.on_status(self.status)
        self.thread.start()

    def submit(self, event: DeviceEvent) -> None:
        """Queue an event; a pull-out during an offload also cancels the copy at once."""
        if event.action == "remove" and event.kind in ("usb", "block") and self._offloading:
            self._cancel_reason = StopReason.REMOVED_DURING_OFFLOAD
            self.cancel.set()
        self.events.put(event)

    def relabel(self, label: str) -> None:
        """A reloaded config renamed the bay."""
        if label != self.label:
            self.label = label
            self.status = dataclasses.replace(self.status, label=label)
            self.ctx.on_status(self.status)

    def stop(self, timeout: float = 30.0) -> None:
        """Interrupt any offload cleanly and end the worker."""
        self._stopping = True
        self._cancel_reason = StopReason.DOCK_STOPPING
        self.cancel.set()
        self.events.put(None)
        self.thread.join(timeout)

    # -- worker ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                event = self.events.get()
                if event is None:
                    break
                if event.action == "add" and event.kind in ("usb", "block"):
                    # One session per plug: later interfaces of the same recorder (or of an
                    # unknown device) are ignored until it leaves.
                    if not self._present:
                        self._present = True
                        self._session(event)
                elif event.action == "remove" and event.kind == "usb":
                    self._present = False
                    self._undocked()
        except Exception:
            log.exception("bay worker failed", extra={"bay": self.number})
            self._set(BayState.FAULT, fault=FaultReason.OFFLOAD_FAILED)
        finally:
            if self._store is not None:
                self._store.close()

    def _session(self, first: DeviceEvent) -> None:
        model = self._match(first)
        if model is None:
            self._reject_unknown(first)
            return
        self.cancel.clear()
        self._docked = docked = _Docked(model)
        self._set(BayState.IDENTIFYING, fault=None, recorder=None, officer=None,
                  battery_percent=None, storage_free_bytes=None, storage_total_bytes=None,
                  clock_drift_s=None, progress=Progress(), unchecked=())
        try:
            block = first if first.kind == "block" else None
            if model.two_phase and not self._in_storage_mode(model, first):
                self._control_phase(model, first, docked)
            if block is None or not block.fs_type:
                block = self._wait_for_volume(docked)
            self._check_disk(model, first, block, docked)
            self._storage_phase(model, first, block, docked)
        except _Removed:
            self._present = False
            self._recorder_left_early(docked)
        except _Fault as fault:
            self._fault(fault.reason, fault.detail, docked)

    # -- phase 1: control port ---------------------------------------------------------------

    def _control_phase(self, model: ModelSpec, first: DeviceEvent, docked: _Docked) -> None:
        spec = self._control_spec(model, first)
        driver = self.ctx.driver_for(model.driver)
        password = _read_password(model.password_file)
        try:
            session = driver.open(spec, password, self.ctx.clock)
        except LoginFailed as exc:
            raise _Fault(FaultReason.LOGIN_FAILED, str(exc)) from None
        except RecorderError as exc:
            self._raise_if_gone(exc)
            reason = fault_for(exc, FaultReason.LOGIN_FAILED)
            raise _Fault(reason, f"recorder did not answer the login: {exc}"
                         if reason is FaultReason.LOGIN_FAILED else str(exc)) from None
        with session:
            try:
                docked.identity = session.identify()
                self._identified(docked)
                self._set(BayState.CHECKING)
                self._read_health(session, docked)
                docked.switch = session.switch_to_mass_storage()
            except RecorderError as exc:
                self._raise_if_gone(exc)
                raise _Fault(fault_for(exc, FaultReason.LOGIN_FAILED), str(exc)) from None
        # Acknowledged or not, the recorder was told to switch: the disk decides (next phase).
        log.info("recorder told to switch to mass storage", extra={
            "bay": self.number, "acknowledged": docked.switch.acknowledged,
            "detail": docked.switch.detail})

    def _control_spec(self, model: ModelSpec, first: DeviceEvent) -> TransportSpec:
        # No bay-wide timeout: each driver uses its protocol's own per-command timeouts
        # (DV16: 2 s reads, 10 s writes; Ambarella B1: 3 s) unless the model sets its own.
        timeout, write_timeout = model.read_timeout_s, model.write_timeout_s
        if model.control in ("usb", "usb-a9"):
            return TransportSpec(kind=model.control, usb_serial=first.usb_serial,
                                 usb_bus=first.usb_bus, usb_address=first.usb_address,
                                 timezone=model.timezone, timeout_s=timeout,
                                 write_timeout_s=write_timeout, options=model.options)
        kind = "tty" if model.control == "test-serial" else "sg"
        node = self._wait(lambda e: e.action == "add" and e.kind == kind and bool(e.device_node),
                          self.ctx.daemon.control_wait_s, f"the recorder's {kind} control port",
                          FaultReason.LOGIN_FAILED)
        return TransportSpec(kind=model.control, path=node.device_node, timezone=model.timezone,
                             timeout_s=timeout, write_timeout_s=write_timeout,
                             options=model.options)

    def _in_storage_mode(self, model: ModelSpec, event: DeviceEvent) -> bool:
        """A two-phase recorder already in mass-storage mode (e.g. the dock restarted)."""
        return event.kind == "block" or (
            model.storage_vendor_id is not None
            and (event.vendor_id, event.product_id) == (model.storage_vendor_id,
                                                        model.storage_product_id))

    # -- phase 2: the disk ---------------------------------------------------------------------

    def _wait_for_volume(self, docked: _Docked) -> DeviceEvent:
        def is_volume(e: DeviceEvent) -> bool:
            return e.action == "add" and e.kind == "block" and bool(e.fs_type) and bool(e.device_node)

        if docked.switch is None:
            return self._wait(is_volume, self.ctx.daemon.storage_wait_s,
                              "the recorder's disk with a file system", FaultReason.OFFLOAD_FAILED,
                              allow_usb_remove=True)
        told = ("it acknowledged the switch" if docked.switch.acknowledged
                else f"it did not acknowledge the switch ({docked.switch.detail})")
        return self._wait(is_volume, self.ctx.daemon.storage_wait_s,
                          f"the recorder's disk with a file system after the switch to mass "
                          f"storage; {told}", FaultReason.STORAGE_SWITCH_FAILED,
                          allow_usb_remove=True)

    def _check_disk(self, model: ModelSpec, first: DeviceEvent, block: DeviceEvent,
                    docked: _Docked) -> None:
        """The storage-switch identity rule (docs/runtime.md): a disk that is not the docked
        recorder's own, or a recorder known only by its disk that is not enrolled when
        ``enrolled_only`` is on, is unknown_device and never mounted."""
        why = foreign_disk(model, first, block, docked.identity)
        if why is None and docked.identity is None and self.ctx.daemon.enrolled_only:
            why = self._not_enrolled(disk_serial(first, block))
        if why is not None:
            when = " after the switch to mass storage" if docked.switch is not None else ""
            raise _Fault(FaultReason.UNKNOWN_DEVICE,
                         f"the disk {block.device_node} on port {block.port}{when} is not the "
                         f"recorder's: {why}; never mounted")

    def _not_enrolled(self, serial: str | None) -> str | None:
        entry = registry.lookup(self._open_store().catalog, serial) if serial else None
        if entry is None:
            return (f"its serial {serial!r} is not enrolled (enrolled_only = true; "
                    "see 'dockd recorders add')")
        return f"recorder {serial} is retired" if entry.state == "retired" else None

    def _storage_phase(self, model: ModelSpec, first: DeviceEvent, block: DeviceEvent,
                       docked: _Docked) -> None:
        assert block.device_node is not None
        try:
            mount = self.ctx.mounter.mount(block.device_node, f"bay{self.number}", block.fs_type)
        except MountError as exc:
            raise _Fault(FaultReason.OFFLOAD_FAILED, str(exc)) from None
        pulled = False
        try:
            if docked.identity is None:
                docked.identity = self._identify_volume(model, first, block, mount)
                self._identified(docked)
                self._set(BayState.CHECKING)
                self._check_volume_health(model, first, mount, docked)
            if docked.health is None:
                self._volume_storage(mount, docked)
                self._evaluate_health(docked)
            report = self._offload(mount, docked)
            stopped = report.reason if report.result is SessionResult.INTERRUPTED else None
            pulled = stopped is not None and stopped.recorder_pulled
            if pulled:
                raise _Fault(FaultReason.REMOVED_DURING_OFFLOAD,
                             f"pulled out after {report.count(Outcome.STORED)} new file(s); "
                             "dock it again to finish")
            if stopped is StopReason.STORE_FULL:
                raise _Fault(FaultReason.STORE_FULL, "the dock's evidence store is full")
            if stopped is not None:
                raise _Fault(FaultReason.OFFLOAD_FAILED, f"offload interrupted: {stopped}")
            if report.result is not SessionResult.COMPLETED:
                raise _Fault(FaultReason.OFFLOAD_FAILED,
                             f"{report.count(Outcome.FAILED)} file(s) could not be read")
            if self.ctx.daemon.clear_after_offload:
                self._clear(mount, docked)
            self._finish(docked)
        finally:
            try:
                self.ctx.mounter.unmount(mount, lazy=pulled)
            except MountError as exc:
                log.error("unmount failed", extra={"bay": self.number, "error": str(exc)})

    def _identify_volume(self, model: ModelSpec, first: DeviceEvent, block: DeviceEvent,
                         mount: Path) -> RecorderIdentity:
        spec = TransportSpec(kind="volume", mount_path=str(mount),
                             usb_serial=disk_serial(first, block), timezone=model.timezone,
                             options=model.options)
        try:
            with self.ctx.driver_for("msc").open(spec, None, self.ctx.clock) as session:
                return session.identify()
        except DockdError as exc:
            raise _Fault(FaultReason.UNKNOWN_DEVICE, f"no usable identity: {exc}") from None

    def _check_volume_health(self, model: ModelSpec, first: DeviceEvent, mount: Path,
                             docked: _Docked) -> None:
        assert docked.identity is not None
        spec = TransportSpec(kind="volume", mount_path=str(mount), usb_serial=docked.identity.serial,
                             timezone=model.timezone, options=model.options)
        with self.ctx.driver_for("msc").open(spec, None, self.ctx.clock) as session:
            # A volume that cannot be written (one mounted without journal recovery) keeps its
            # clock: the set fails and is recorded as such.
            writable = session.capabilities.set_clock and self._remount_writable(
                mount, "the recorder's clock file not written")
            try:
                self._read_health(session, docked)
            finally:
                if writable:
                    self.ctx.mounter.remount(mount, writable=False)
        self._evaluate_health(docked)

    def _volume_storage(self, mount: Path, docked: _Docked) -> None:
        """Free space of the card from the mounted disk, for recorders whose protocol has no
        storage query (art. 4: free space is checked at every dock)."""
        if docked.storage is not None:
            return
        try:
            st = os.statvfs(mount)
        except OSError as exc:
            log.warning("free space of the recorder's disk unknown",
                        extra={"bay": self.number, "error": str(exc)})
            return
        docked.storage = StorageInfo(total_bytes=st.f_blocks * st.f_frsize,
                                     free_bytes=st.f_bavail * st.f_frsize)

    def _offload(self, mount: Path, docked: _Docked) -> IngestReport:
        assert docked.identity is not None
        store = self._open_store()
        self._set(BayState.OFFLOADING)
        with self.ctx.offload_slots:
            self._offloading = True
            try:
                if self._stopping:
                    raise _Fault(FaultReason.OFFLOAD_FAILED, "the dock is stopping")
                self.cancel.clear()
                info = {"bay": self.number, "port": self.port,
                        "officer_id": docked.officer_id, "officer_name": docked.officer_name}
                return Ingestor(store, self.ctx.actor).ingest(
                    mount, docked.identity.serial, cancel=self.cancel,
                    cancel_reason=lambda: self._cancel_reason, on_progress=self._progress,
                    session_info=info, list_files=False)
            except StoreFullError as exc:
                raise _Fault(FaultReason.STORE_FULL, str(exc)) from None
            except DockdError as exc:
                raise _Fault(FaultReason.OFFLOAD_FAILED, str(exc)) from None
            finally:
                self._offloading = False

    def _clear(self, mount: Path, docked: _Docked) -> None:
        assert docked.identity is not None
        require_archived = self.ctx.config.archive is not None
        if not self._remount_writable(mount, "recorder not cleared"):
            return
        try:
            result = clear_recorder(self._open_store(), mount, docked.identity.serial,
                                    self.ctx.actor, require_archived)
            log.info("recorder cleared", extra={"bay": self.number, "deleted": len(result.deleted),
                                                "kept": len(result.kept)})
        finally:
            self.ctx.mounter.remount(mount, writable=False)

    def _remount_writable(self, mount: Path, consequence: str) -> bool:
        """Remount the recorder's volume read-write; False (logged) when it cannot be."""
        try:
            self.ctx.mounter.remount(mount, writable=True)
        except MountError as exc:
            log.error(f"{consequence}: cannot remount read-write",
                      extra={"bay": self.number, "error": str(exc)})
            return False
        return True

    # -- health ----------------------------------------------------------------------------------

    def _read_health(self, session: RecorderSession, docked: _Docked) -> None:
        """Battery, storage and clock while the session is open; the clock is set here."""
        caps = session.capabilities
        docked.battery = session.battery_percent() if caps.battery else None
        docked.storage = session.storage() if caps.storage else None
        docked.clock = clock = self._check_clock(session, docked)
        storage = docked.storage
        self._set(BayState.CHECKING, battery_percent=docked.battery,
                  storage_free_bytes=storage.free_bytes if storage else None,
                  storage_total_bytes=storage.total_bytes if storage else None,
                  clock_drift_s=clock.drift_after_s if clock.set_attempted else clock.drift_before_s)

    def _evaluate_health(self, docked: _Docked) -> None:
        """The art. 4 decision on every reading gathered, once they are all in."""
        storage = docked.storage
        report = evaluate(self.ctx.health, docked.battery,
                          storage.total_bytes if storage else None,
                          storage.free_bytes if storage else None, docked.clock,
                          docked.model.require_checks if docked.model else ())
        docked.health = report
        docked.faults = list(report.faults)
        self._set(BayState.CHECKING, storage_free_bytes=storage.free_bytes if storage else None,
                  storage_total_bytes=storage.total_bytes if storage else None)
        serial = docked.identity.serial if docked.identity else "?"
        self._record(RecorderHealthChecked(self.number, serial, report.to_json_dict()))
        self.ctx.on_health(serial, self.number, report)

    def _check_clock(self, session: RecorderSession, docked: _Docked) -> ClockCheck:
        """Read the clock where possible; set it whenever the recorder can be set and the dock's
        own clock is synchronised, unless a reading shows it within bounds."""
        caps = session.capabilities
        synced = self.ctx.clock_sync.synchronised()
        before = session.read_clock() if caps.read_clock else None
        drift = before.drift_s if before is not None else None
        if not needs_clock_set(self.ctx.health, drift, synced, caps.set_clock):
            return ClockCheck(drift, None, False, synced, settable=caps.set_clock)
        serial = docked.identity.serial if docked.identity else "?"
        target = self.ctx.clock.now()
        sent: ClockSetResult | None = None
        drift_after: float | None = None
        error = None
        try:
            sent = session.set_clock(target)
            if caps.read_clock:
                drift_after = session.read_clock().drift_s
        except RecorderError as exc:
            self._raise_if_gone(exc)
            error = str(exc)
        model = docked.model
        self._record(ClockSet(
            self.number, serial, utc_iso(target),
            utc_iso(before.recorder_time) if before is not None and before.recorder_time else None,
            drift, drift_after, error, sent=sent.wire if sent else None,
            sent_wall_time=sent.wall_time.isoformat() if sent else None,
            recorder_zone=_zone_name(model.timezone if model else None),
            verified=drift_after is not None))
        return ClockCheck(drift, drift_after, True, synced, settable=True,
                          set_accepted=sent is not None)

    # -- endings ----------------------------------------------------------------------------------

    def _identified(self, docked: _Docked) -> None:
        assert docked.identity is not None
        serial = docked.identity.serial
        store = self._open_store()
        entry = registry.lookup(store.catalog, serial)
        docked.officer_id = entry.officer_id if entry else docked.identity.officer_id
        docked.officer_name = entry.officer_name if entry else docked.identity.officer_name
        self._set(BayState.IDENTIFYING, recorder=serial, officer=docked.officer_name)
        identity = docked.identity
        self._record(RecorderDocked(
            self.number, self.port, serial, identity.driver, identity.id_code,
            docked.officer_id, docked.officer_name, entry is not None,
            entry.state if entry else None, identity.officer_id,
            # What the recorder said, as it said it: each text field's bytes (base64) beside
            # the decoded text, and what decoding had to tolerate.
            recorder_text={name: RecorderText(getattr(identity, name),
                                              base64.b64encode(raw).decode("ascii"))
                           for name, raw in identity.text_raw.items()},
            decode_warnings=identity.warnings))

    def _finish(self, docked: _Docked) -> None:
        """``ready`` only when every art. 4 check passed; ``ready_unchecked`` (naming the
        checks) when some could not be done and the model does not require them."""
        report = docked.health
        if docked.faults:
            reason = docked.faults[0]
            detail = ", ".join(f.value for f in docked.faults)
            if report is not None and report.missing_required:
                model = docked.model.name if docked.model else "?"
                detail += (f"; not reported by the recorder: {', '.join(report.missing_required)}"
                           f" (required by model {model!r}: require_checks)")
            self._fault(reason, detail, docked)
        elif report is not None and report.unchecked:
            log.info("recorder ready, not every check done", extra={
                "bay": self.number, "unchecked": ", ".join(report.unchecked)})
            self._set(BayState.READY_UNCHECKED, fault=None, unchecked=report.unchecked)
        else:
            self._set(BayState.READY, fault=None, unchecked=())

    def _fault(self, reason: FaultReason, detail: str, docked: _Docked | None) -> None:
        serial = docked.identity.serial if docked and docked.identity else None
        log.warning("bay fault", extra={"bay": self.number, "reason": reason.value,
                                        "detail": detail, "recorder": serial or ""})
        self._set(BayState.FAULT, fault=reason, unchecked=())
        self._record(BayFault(self.number, self.label, self.port, reason.value, detail, serial,
                              reason.is_dock_problem))

    def _reject_unknown(self, event: DeviceEvent) -> None:
        detail = (f"USB device {event.vendor_id}:{event.product_id} serial {event.usb_serial!r} "
                  "is not a configured recorder model nor an enrolled recorder; never mounted")
        self._docked = _Docked(None)
        self._fault(FaultReason.UNKNOWN_DEVICE, detail, None)

    def _recorder_left_early(self, docked: _Docked) -> None:
        serial = docked.identity.serial if docked.identity else None
        self._record(RecorderRemovedEarly(self.number, serial, self.status.state.value))
        self._undocked()

    def _undocked(self) -> None:
        docked, self._docked = self._docked, None
        if docked is not None and docked.identity is not None:
            self._record(RecorderUndocked(
                self.number, docked.identity.serial, docked.officer_id, docked.officer_name,
                self.status.state.value, self.status.fault.value if self.status.fault else None))
        # A pull-out mid-offload stays red until the next dock: the officer must see it.
        if self.status.fault == FaultReason.REMOVED_DURING_OFFLOAD:
            return
        self._set(BayState.EMPTY, fault=None, recorder=None, officer=None, battery_percent=None,
                  storage_free_bytes=None, storage_total_bytes=None, clock_drift_s=None,
                  progress=Progress(), unchecked=())

    # -- helpers ------------------------------------------------------------------------------------

    def _match(self, event: DeviceEvent) -> ModelSpec | None:
        for model in self.ctx.daemon.models:
            if model.matches(event.vendor_id, event.product_id):
                return model
        if event.usb_serial:
            entry = registry.lookup(self._open_store().catalog, event.usb_serial)
            if entry is not None and entry.state != "retired":
                return ModelSpec(name="enrolled-msc", vendor_id=event.vendor_id or "0000",
                                 product_id=event.product_id or "0000", driver="msc")
        return None

    def _wait(self, predicate: Callable[[DeviceEvent], bool], timeout: float, what: str,
              on_timeout: FaultReason, allow_usb_remove: bool = False) -> DeviceEvent:
        """The next event of this port that satisfies ``predicate``; ``on_timeout`` is the
        fault when none comes, _Removed when the recorder leaves first."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Fault(on_timeout, f"timed out after {timeout:.0f} s waiting for {what}; "
                                         f"seen on the port: {', '.join(seen) or 'nothing'}")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                self._stopping = True
                raise _Removed()
            if event.kind == "usb" and event.action in ("add", "remove"):
                # Re-enumeration: the recorder leaves the bus and comes back. Track it, so that
                # a recorder that never comes back leaves the bay free for the next plug.
                self._present = event.action == "add"
            if predicate(event):
                return event
            seen.append(_describe(event))
            if event.action == "remove" and event.kind == "usb" and not allow_usb_remove:
                raise _Removed()

    def _raise_if_gone(self, exc: RecorderError) -> None:
        """_Removed if the recorder's USB remove arrives within half a second of a failed
        exchange (its interfaces' removes come first and are dropped with it); otherwise
        the events seen are put back and the caller reports the failure."""
        seen: list[DeviceEvent | None] = []
        deadline = time.monotonic() + 0.5
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event is not None and event.action == "remove" and event.kind == "usb":
                raise _Removed() from exc
            seen.append(event)
        for event in seen:
            self.events.put(event)

    def _progress(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_INTERVAL_S or \
                progress.files_done == progress.files_total:
            self._last_progress = now
            self._set(BayState.OFFLOADING, progress=progress)

    def _set(self, state: BayState, **changes: Any) -> None:
        self.status = dataclasses.replace(self.status, state=state,
                                          updated_at=utc_iso(self.ctx.clock.now()), **changes)
        self.ctx.on_status(self.status)

    def _open_store(self) -> EvidenceStore:
        if self._store is None:
            self._store = self.ctx.open_store()
        return self._store

    def _record(self, event: CustodyEvent) -> None:
        """A custody record; a fault is also an alert (rule art. 5(6)) in the same
        transaction, so a fault is never logged without being reported, or reported unlogged."""
        store = self._open_store()
        with store.catalog.transaction() as tx:
            record = store.custody.record(tx, event, self.ctx.actor)
            if isinstance(event, BayFault):
                enqueue_alert(tx, self.ctx.config.dock.id, record.time, event.reason,
                              bay=self.number, recorder=event.recorder,
                              detail=f"{event.detail} (custody seq {record.seq})")
        self.ctx.on_record()


def _read_password(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise _Fault(FaultReason.LOGIN_FAILED,
                     f"the admin password file {path} cannot be read: {exc.strerror}") from None


def _describe(event: DeviceEvent) -> str:
    """An event in a few words, for a fault's detail ("add block /dev/sda (no file system)")."""
    words = [event.action, event.kind]
    if event.device_node:
        words.append(event.device_node)
    if event.kind == "usb" and event.vendor_id:
        words.append(f"{event.vendor_id}:{event.product_id}")
    if event.kind == "block" and event.action == "add":
        words.append(f"({event.fs_type})" if event.fs_type else "(no file system)")
    return " ".join(words)


def _zone_name(timezone: str | None) -> str:
    if timezone is not None:
        return timezone
    local = recorder_zone(None)
    return local.tzname(None) or str(local)
