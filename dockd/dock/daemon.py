"""``dockd run``: the one place where the dock's parts are built and wired together.

device source (udev or simulator spool) → bays (one worker each) → store + custody log;
bay status → state channel, LEDs, MQTT. systemd sees READY, STATUS and WATCHDOG; SIGTERM
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
from typing import Any, Protocol

from dockd import __version__
from dockd.clock import Clock, SystemClock, utc_iso
from dockd.config import Config, load_config
from dockd.devices.events import DeviceEvent
from dockd.devices.mounts import DirectoryMounter, Mounter, SystemMounter
from dockd.devices.recorders.registry import get_driver
from dockd.devices.timesync import ClockSyncState
from dockd.dock.bay import Bay, DockContext
from dockd.dock.health import HealthReport
from dockd.dock.states import BayStatus
from dockd.errors import ConfigError
from dockd.report.mqtt.payloads import enqueue_alert
from dockd.report.state_channel import StateChannel
from dockd.store.events import DockStarted, DockStopped
from dockd.store.evidence import EvidenceStore, open_store
from dockd.sysd import notify, watchdog_interval_s

log = logging.getLogger(__name__)
DYNAMIC_BAY_BASE = 100
DOCK_INFO_MIN_INTERVAL_S = 0.5


class EventSource(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class StatusListener(Protocol):
    """Something that shows bay states (LEDs, MQTT)."""

    def bay_changed(self, status: BayStatus) -> None: ...


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
        self.listeners: list[Callable[[BayStatus], None]] = []
        self.dock_info: dict[str, Any] = {}
        self._dock_info_at = 0.0
        self.health_by_recorder: dict[str, dict[str, Any]] = {}
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
            on_record=self._wake_publisher, actor="dockd")
        self.channel = StateChannel(self.settings.status_socket, self.snapshot)
        self.source: EventSource = self._source()
        self.leds = self._leds()
        self.mqtt = self._mqtt()

    # -- life cycle -----------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code."""
        self._install_signals()
        self.start()
        notify("READY=1", f"STATUS=serving {len(self.bays)} bay(s)")
        ping = watchdog_interval_s()
        try:
            while not self._stop.is_set():
                self._stop.wait(ping or 5.0)
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
        for bay in self.settings.bays:
            self._add_bay(bay.port, bay.number, bay.label)
        self._refresh_dock_info()
        self.channel.start()
        if self.leds is not None:
            self.leds.start()
        if self.mqtt is not None:
            self.mqtt.start()
        self.source.start()
        log.info("dock running", extra={"dock": self.config.dock.id, "bays": len(self.bays),
                                        "source": self.settings.device_source})

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        self.source.stop()
        for bay in list(self.bays.values()):
            bay.stop()
        with self._store_lock:
            self.store.custody.append(DockStopped(self.config.dock.id), "dockd", checkpoint=True)
        if self.mqtt is not None:
            self.mqtt.stop()
        if self.leds is not None:
            self.leds.stop()
        self.channel.stop()
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
        # Showing a state must never stop an offload: a failing listener is logged, not raised.
        for listener in [*self.listeners,
                         *([self.leds.update] if self.leds is not None else []),
                         *([self.mqtt.publish_bay] if self.mqtt is not None else [])]:
            _guarded(listener, status)
        # The dock line (broker, outbox depth, free space) follows the bays' activity; an
        # idle dock refreshes it only on the main loop's slow tick.
        if time.monotonic() - self._dock_info_at >= DOCK_INFO_MIN_INTERVAL_S:
            self._refresh_dock_info()
        else:
            self.channel.changed()

    def _health_changed(self, serial: str, bay: int, report: HealthReport) -> None:
        clock = report.clock
        health = {"bay": bay, **report.to_json_dict(), "last_docked": utc_iso(self.clock.now())}
        self.health_by_recorder[serial] = health
        if self.mqtt is not None:
            from dockd.report.mqtt.payloads import RecorderHealth

            _guarded(lambda h: self.mqtt.publish_health(serial, h), RecorderHealth(
                battery_percent=report.battery_percent,
                storage_free_bytes=report.storage_free_bytes,
                storage_total_bytes=report.storage_total_bytes,
                clock_drift_s=clock.drift_after_s if clock.set_attempted else clock.drift_before_s,
                clock_corrected=clock.set_attempted, last_docked=health["last_docked"], bay=bay))

    def snapshot(self) -> dict[str, Any]:
        """The dock's state as the state channel serves it."""
        bays = sorted((b.status for b in list(self.bays.values())), key=lambda s: s.bay)
        return {"v": 1, "dock": dict(self.dock_info), "bays": [bay_status_json(s) for s in bays]}

    def _refresh_dock_info(self) -> None:
        self._dock_info_at = time.monotonic()
        usage = shutil.disk_usage(self.config.dock.store_dir)
        with self._store_lock:
            depth = self.store.catalog.query_one(
                "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
        broker = self.mqtt.state().to_json_dict() if self.mqtt is not None else {"state": "disabled"}
        synced = self.ctx.clock_sync.synchronised()
        if self.mqtt is not None:
            _guarded(lambda v: self.mqtt.publish_status(clock_synced=v), synced)
        if self.leds is not None and self.mqtt is not None:
            self.leds.set_broker_online(bool(self.mqtt.state().connected))
        self.dock_info = {
            "id": self.config.dock.id, "site": self.config.dock.site, "version": __version__,
            "time": utc_iso(self.clock.now()), "store_free_bytes": usage.free,
            "store_total_bytes": usage.total,
            "clock_synchronised": synced,
            "outbox_depth": depth[0] if depth else 0, "broker": broker,
            "public_key": self.store.custody.signer.public_key_hex,
        }
        self.channel.changed()

    # -- wiring --------------------------------------------------------------------------------

    def _mounter(self) -> Mounter:
        if self.settings.mounter == "directory":
            return DirectoryMounter()
        return SystemMounter(self.settings.mount_root)

    def _source(self) -> EventSource:
        if self.settings.device_source == "spool":
            from dockd.sim.spool import SpoolSource

            return SpoolSource(self.settings.spool_dir, self.dispatch)
        from dockd.devices.udev_source import UdevSource

        return UdevSource(self.dispatch)

    def _leds(self) -> Any:
        section = self.config.leds
        if section.driver == "none":
            return None
        from dockd.report.leds.build import build_led_driver
        from dockd.report.leds.controller import LedController

        return LedController(build_led_driver(section, self._led_fault, clock=self.clock),
                             clock=self.clock)

    def _wake_publisher(self) -> None:
        if self.mqtt is not None:
            self.mqtt.wake()

    def _led_fault(self, message: str) -> None:
        # A failing LED never stops an offload: it becomes a dock alert.
        log.error("LED fault", extra={"detail": message})
        with self._store_lock, self.store.catalog.transaction() as tx:
            enqueue_alert(tx, self.config.dock.id, utc_iso(self.clock.now()), "led_fault",
                          detail=message)
        self._wake_publisher()

    def _mqtt(self) -> Any:
        if not self.config.mqtt.enabled:
            return None
        from dockd.report.mqtt.reporter import MqttReporter

        return MqttReporter(self.config, self.config.dock.store_dir, self.clock,
                            self.store.custody.signer.public_key_hex)

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())


def _guarded(listener: Callable[[Any], None], value: Any) -> None:
    try:
        listener(value)
    except Exception:
        log.exception("a status listener failed", extra={"listener": repr(listener)})


def bay_status_json(status: BayStatus) -> dict[str, Any]:
    """A BayStatus as JSON (the state channel's and MQTT's shape)."""
    p = status.progress
    return {"bay": status.bay, "label": status.label, "state": status.state.value,
            "fault": status.fault.value if status.fault else None, "recorder": status.recorder,
            "officer": status.officer, "battery_percent": status.battery_percent,
            "storage_free_bytes": status.storage_free_bytes,
            "storage_total_bytes": status.storage_total_bytes, "clock_drift_s": status.clock_drift_s,
            "progress": {"files_done": p.files_done, "files_total": p.files_total,
                         "bytes_done": p.bytes_done, "bytes_total": p.bytes_total,
                         "rate_bytes_per_s": round(p.rate_bytes_per_s, 1),
                         "seconds_left": p.seconds_left},
            "updated_at": status.updated_at}


