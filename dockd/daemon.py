"""``dockd run``: the one place where the dock's parts are built and wired together.

device source (udev or simulator spool) → bays (one worker each) → store + custody log;
what the bays do → every reporter (state channel, LEDs, MQTT) through one interface
(:class:`dockd.dock.reporting.Reporter`). systemd sees READY, STATUS and WATCHDOG; SIGTERM
interrupts offloads cleanly (sessions close as interrupted, nothing partial is kept);
SIGHUP reloads the config.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from dockd import __version__
from dockd.clock import Clock, SystemClock, utc_iso
from dockd.config import Config, load_config
from dockd.devices.events import DeviceEvent
from dockd.devices.mounts import DirectoryMounter, Mounter, SystemMounter
from dockd.devices.recorders.registry import get_driver
from dockd.devices.timesync import ClockSyncState
from dockd.dock.bay import Bay, DockContext
from dockd.dock.health import HealthReport
from dockd.dock.reporting import DockInfo, RecorderChecked, Reporter
from dockd.dock.states import BayStatus
from dockd.errors import ConfigError
from dockd.report.mqtt.payloads import LED_FAULT
from dockd.report.state_channel import DockStateChannel
from dockd.store.events import DockStarted, DockStopped
from dockd.store.evidence import EvidenceStore, open_store
from dockd.store.outbox import enqueue_alert, pending_count
from dockd.sysd import notify, watchdog_interval_s

if TYPE_CHECKING:
    from dockd.report.mqtt.reporter import MqttReporter

log = logging.getLogger(__name__)
DYNAMIC_BAY_BASE = 100
DOCK_INFO_MIN_INTERVAL_S = 0.5


class EventSource(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class Daemon:
    """The running dock."""

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.settings = config.daemon
        self.bays: dict[str, Bay] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._reload = threading.Event()
        # Wakes the main loop at once for a stop or a SIGHUP (else it sleeps to its next tick).
        self._wake = threading.Event()
        self._dock_info_at = 0.0
        # The daemon's own store connection: start-up recovery, dock-level events.
        self.store: EvidenceStore = open_store(config, self.clock)
        # The daemon's own connection is shared by the main loop and the LED thread.
        self._store_lock = threading.Lock()
        self.ctx = DockContext(
            config=config, daemon=self.settings, health=config.health, clock=self.clock,
            clock_sync=ClockSyncState(self.settings.clock_sync), mounter=self._mounter(),
            driver_for=get_driver, open_store=lambda: open_store(config, self.clock, recover=False),
            offload_slots=threading.Semaphore(self.settings.max_concurrent_offloads),
            on_status=self._bay_changed, on_health=self._health_changed,
            on_record=self._records_committed, actor="dockd")
        self.source: EventSource = self._source()
        self.uplink: MqttReporter | None = self._mqtt()
        self.reporters: list[Reporter] = [DockStateChannel(self.settings.status_socket),
                                          *self._leds(), *([self.uplink] if self.uplink else []),
                                          *self._metrics()]

    # -- life cycle -----------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code."""
        self._install_signals()
        self.start()
        notify("READY=1", f"STATUS=serving {len(self.bays)} bay(s)")
        ping = watchdog_interval_s()
        try:
            while not self._stop.is_set():
                self._wake.wait(ping or 5.0)
                self._wake.clear()
                if ping:
                    notify("WATCHDOG=1")
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                self._refresh_dock_info()
        finally:
            notify("STOPPING=1")
            self.shutdown()
        return 0

    def start(self) -> None:
        self.store.custody.append(DockStarted(self.config.dock.id, __version__,
                                              tuple(b.port for b in self.settings.bays)), "dockd")
        for reporter in self.reporters:
            reporter.start()
        for bay in self.settings.bays:
            self._add_bay(bay.port, bay.number, bay.label)
        self._refresh_dock_info()
        self.source.start()
        log.info("dock running", extra={"dock": self.config.dock.id, "bays": len(self.bays),
                                        "source": self.settings.device_source})

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def shutdown(self) -> None:
        self.source.stop()
        for bay in list(self.bays.values()):
            bay.stop()
        with self._store_lock:
            self.store.custody.append(DockStopped(self.config.dock.id), "dockd", checkpoint=True)
        for reporter in reversed(self.reporters):
            reporter.stop()
        self.store.close()
        log.info("dock stopped")

    def reload(self) -> None:
        """Apply a changed config: models, bays, thresholds and records; the rest needs a restart."""
        if self.config.source is None:
            return
        try:
            new = load_config(self.config.source)
        except ConfigError as exc:
            log.error("config reload refused; keeping the running config", extra={"error": str(exc)})
            return
        old = self.config
        if new.dock != old.dock:
            log.error("config reload: [dock] changed; restart dockd to apply it")
            return
        needs_restart = {"ingest": new.ingest != old.ingest, "mqtt": new.mqtt != old.mqtt,
                         "leds": new.leds != old.leds, "archive": new.archive != old.archive}
        for section in (name for name, changed in needs_restart.items() if changed):
            log.warning("config reload: [%s] changed; restart dockd to apply it", section)
        self.config = dataclasses.replace(old, daemon=new.daemon, health=new.health,
                                          records=new.records)
        self.settings = new.daemon
        self.ctx.config, self.ctx.daemon, self.ctx.health = self.config, new.daemon, new.health
        for bay in new.daemon.bays:
            existing = self.bays.get(bay.port)
            if existing is None:
                self._add_bay(bay.port, bay.number, bay.label)
            else:
                existing.relabel(bay.label)
        log.info("config reloaded", extra={"config": str(self.config.source)})

    # -- events ------------------------------------------------------------------------------

    def dispatch(self, event: DeviceEvent) -> None:
        """Route a device event to the bay of its port (from the source's thread)."""
        with self._lock:
            bay = self._bay_for(event.port)
            if bay is None:
                if event.action != "add":
                    return
                bay = self._dynamic_bay(event.port)
        bay.submit(event)

    def _bay_for(self, port: str) -> Bay | None:
        # The configured bay port may be a hub port: a recorder behind it (1-3.2) is in bay 1-3.
        best: Bay | None = None
        for bay_port, bay in self.bays.items():
            if (port == bay_port or port.startswith(bay_port + ".")) and \
                    (best is None or len(bay_port) > len(best.port)):
                best = bay
        return best

    def _dynamic_bay(self, port: str) -> Bay:
        used = {b.number for b in self.bays.values()}
        number = next(n for n in range(DYNAMIC_BAY_BASE, DYNAMIC_BAY_BASE + 10_000) if n not in used)
        log.warning("device on a port missing from the config; using a derived bay",
                    extra={"port": port, "bay": number})
        return self._add_bay(port, number, f"port {port}")

    def _add_bay(self, port: str, number: int, label: str) -> Bay:
        bay = Bay(number, label, port, self.ctx)
        self.bays[port] = bay
        bay.start()
        return bay

    # -- status --------------------------------------------------------------------------------

    def _bay_changed(self, status: BayStatus) -> None:
        self._tell(lambda r: r.bay_changed(status))
        # The dock line (broker, outbox depth, free space) follows the bays' activity; an
        # idle dock refreshes it only on the main loop's slow tick.
        if time.monotonic() - self._dock_info_at >= DOCK_INFO_MIN_INTERVAL_S:
            self._refresh_dock_info()

    def _health_changed(self, serial: str, bay: int, report: HealthReport) -> None:
        checked = RecorderChecked(serial, bay, report, utc_iso(self.clock.now()))
        self._tell(lambda r: r.recorder_checked(checked))

    def _records_committed(self) -> None:
        self._tell(lambda r: r.records_committed())

    def _refresh_dock_info(self) -> None:
        self._dock_info_at = time.monotonic()
        usage = shutil.disk_usage(self.config.dock.store_dir)
        with self._store_lock:
            depth = pending_count(self.store.catalog)
        info = DockInfo(
            id=self.config.dock.id, site=self.config.dock.site, version=__version__,
            time=utc_iso(self.clock.now()), store_free_bytes=usage.free,
            store_total_bytes=usage.total, clock_synchronised=self.ctx.clock_sync.synchronised(),
            outbox_depth=depth, public_key=self.store.custody.signer.public_key_hex,
            broker=self.uplink.link_state() if self.uplink is not None else None)
        self._tell(lambda r: r.dock_changed(info))

    def _tell(self, message: Callable[[Reporter], None]) -> None:
        # Showing a state must never stop an offload: a failing reporter is logged, not raised.
        for reporter in self.reporters:
            try:
                message(reporter)
            except Exception:
                log.exception("a reporter failed", extra={"reporter": type(reporter).__name__})

    # -- wiring --------------------------------------------------------------------------------

    def _mounter(self) -> Mounter:
        if self.settings.mounter == "directory":
            return DirectoryMounter()
        return SystemMounter(self.settings.mount_root)

    def _source(self) -> EventSource:
        if self.settings.device_source == "spool":
            from dockd.devices.spool import SpoolSource

            return SpoolSource(self.settings.spool_dir, self.dispatch)
        from dockd.devices.udev_source import UdevSource

        return UdevSource(self.dispatch)

    def _leds(self) -> list[Reporter]:
        section = self.config.leds
        if section.driver == "none":
            return []
        from dockd.report.leds.build import build_led_driver
        from dockd.report.leds.controller import LedController

        return [LedController(build_led_driver(section, self._led_fault, clock=self.clock),
                              clock=self.clock)]

    def _led_fault(self, message: str) -> None:
        # A failing LED never stops an offload: it becomes a dock alert.
        log.error("LED fault", extra={"detail": message})
        with self._store_lock, self.store.catalog.transaction() as tx:
            enqueue_alert(tx, self.config.dock.id, utc_iso(self.clock.now()), LED_FAULT,
                          detail=message)
        self._records_committed()

    def _metrics(self) -> list[Reporter]:
        if not self.config.metrics.enabled:
            return []
        from dockd.report.metrics import MetricsReporter, store_last_verify

        section = self.config.metrics
        return [MetricsReporter(section.host, section.port,
                                store_last_verify(self.config.dock.store_dir))]

    def _mqtt(self) -> MqttReporter | None:
        if not self.config.mqtt.enabled:
            return None
        from dockd.report.mqtt.reporter import MqttReporter

        return MqttReporter(self.config, self.config.dock.store_dir, self.clock,
                            self.store.custody.signer.public_key_hex)

    def _request_reload(self) -> None:
        self._reload.set()
        self._wake.set()

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, lambda *_: self._request_reload())
