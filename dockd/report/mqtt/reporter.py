"""The MQTT reporter: drains the durable outbox and keeps the retained state topics current.

One thread owns the paho client, the outbox connection and the socket loop, so nothing of
paho is touched from two threads. The daemon's threads only hand over the latest bay,
health and status values (latest wins) and call :meth:`MqttReporter.wake`; nothing they do
ever waits for the broker.

Delivery of outbox rows: rows go out in id order at QoS 1 with at most ``window`` awaiting
PUBACK; a row is marked sent only when its PUBACK arrives with a success code. Rows paho
holds when the link drops are re-sent by paho (same order) after the reconnect; rows the
process never handed over are read again from the table after a restart. So a row can
arrive twice (same event id), never zero times.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import random
import select
import shutil
import socket
import ssl
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from dockd import __version__
from dockd.clock import Clock, utc_iso
from dockd.config import Config
from dockd.config.mqtt import MqttSection
from dockd.dock.reporting import BrokerState, DockInfo, RecorderChecked
from dockd.dock.states import BayStatus
from dockd.report.mqtt import discovery, payloads
from dockd.report.mqtt.connection import ConnectionSettings, Will, connect, new_client, settings_from_section
from dockd.report.mqtt.credentials import check_tls_files, read_credentials
from dockd.report.mqtt.payloads import DockStatus, RecorderHealth
from dockd.report.mqtt.state import (
    describe_connack,
    describe_connect_error,
    describe_early_close,
    describe_publish_refusal,
)
from dockd.report.mqtt.topics import Topics
from dockd.store.outbox import Outbox, OutboxRow, alert_payload

log = logging.getLogger(__name__)

ACK_FLUSH_S = 0.05          # how long PUBACKs may wait before their sent_at is committed
ACK_FLUSH_ROWS = 1000       # ... or how many
COUNT_INTERVAL_S = 1.0      # how often the pending rows are counted (backlog alert)
FETCH_ROWS = 512            # rows read from the outbox at a time (bounds memory)
STOP_GRACE_S = 2.0          # how long stop() waits for the offline status to be acknowledged
BACKLOG_CLEAR_RATIO = 0.9   # the backlog alert clears below 90 % of the limit (no flapping)


class MqttReporter:
    """Publishes a dock's outbox and state to the broker of the ``[mqtt]`` section."""

    def __init__(self, config: Config, store_dir: Path, clock: Clock, dock_public_key: str,
                 *, version: str = __version__, rng: random.Random | None = None) -> None:
        self.section: MqttSection = config.mqtt
        self.topics = Topics(self.section.prefix, config.dock.site, config.dock.id)
        self.dock, self.site = config.dock.id, config.dock.site
        self.store_dir = store_dir
        self.clock = clock
        self.rng = rng or random.Random()
        self.settings: ConnectionSettings = settings_from_section(
            self.section, f"dockd-{config.dock.site}-{config.dock.id}")
        self.shared = _Shared(DockStatus(version=version, public_key=dock_public_key),
                              self.section.broker.url)
        self._thread: threading.Thread | None = None
        self._link: _Link | None = None

    # -- the daemon's interface -------------------------------------------------------

    def start(self) -> None:
        """Check the TLS and credentials files, then connect in the background.

        Raises ConfigError for a missing/unreadable file; never waits for the broker.
        """
        check_tls_files(self.section)
        if self.section.credentials_file is not None:
            read_credentials(self.section.credentials_file)
        outbox = Outbox(self.store_dir)
        self._link = _Link(self, outbox)
        self._thread = threading.Thread(target=self._link.run, name="dockd-mqtt", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Publish ``offline``, flush acknowledgements, disconnect and end the thread."""
        self.shared.stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("MQTT thread did not stop in time", extra={"timeout_s": timeout})
        self.shared.close()

    def bay_changed(self, bay: BayStatus) -> None:
        """Retained ``bay/<n>/state`` (latest value wins while the broker is away)."""
        self.shared.set_retained(self.topics.bay(bay.bay), payloads.bay_payload(self.dock, bay),
                                 bay=bay.bay)

    def publish_health(self, serial: str, health: RecorderHealth) -> None:
        """Retained ``recorder/<serial>/health``."""
        self.shared.set_retained(self.topics.health(serial),
                                 payloads.health_payload(self.dock, serial, health))

    def recorder_checked(self, checked: RecorderChecked) -> None:
        """Retained ``recorder/<serial>/health`` from a dock's art. 4 checks."""
        report, clock = checked.report, checked.report.clock
        self.publish_health(checked.serial, RecorderHealth(
            battery_percent=report.battery_percent, storage_free_bytes=report.storage_free_bytes,
            storage_total_bytes=report.storage_total_bytes,
            clock_drift_s=clock.drift_after_s if clock.set_attempted else clock.drift_before_s,
            clock_corrected=clock.set_attempted, last_docked=checked.docked_at, bay=checked.bay))

    def dock_changed(self, info: DockInfo) -> None:
        """The dock line changed: the status topic carries the dock clock's sync state."""
        self.publish_status(clock_synced=info.clock_synchronised)

    def records_committed(self) -> None:
        """New outbox rows: publish them now rather than at the next poll."""
        self.wake()

    def publish_status(self, *, clock_synced: bool | None) -> None:
        """Re-publish the online status with the dock clock's sync state (and fresh figures)."""
        self.shared.set_status(clock_synced, self.topics.status)

    def wake(self) -> None:
        """The outbox has new rows (or state changed): look now rather than at the next poll."""
        self.shared.wake()

    def link_state(self) -> BrokerState:
        """The link to the broker as of now (the dock line, ``dockd status``)."""
        return self.shared.link_state()

    def status_payload(self, online: bool) -> bytes:
        """The ``status`` message: online (birth) or offline (Will, clean stop)."""
        status = self.shared.status_snapshot()
        free = total = None
        try:
            usage = shutil.disk_usage(self.store_dir)
            free, total = usage.free, usage.total
        except OSError as exc:
            log.warning("cannot read the store's free space", extra={"error": str(exc)})
        status = replace(status, store_free_bytes=free, store_total_bytes=total,
                         outbox_pending=self.link_state().outbox_pending)
        time = utc_iso(self.clock.now()) if online else None
        return payloads.encode(payloads.status_payload(self.dock, self.site, online, status, time))


class _Shared:
    """What the daemon's threads hand to the link thread, and the link's state, under one lock.

    The daemon's side sets the latest retained values and wakes the link; the link takes
    what changed, publishes it and reports its state back.
    """

    def __init__(self, status: DockStatus, broker_url: str) -> None:
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._status = status
        self._link = BrokerState(broker=broker_url)
        self._retained: dict[str, bytes] = {}
        self._dirty: set[str] = set()
        self._bays: set[int] = set()
        self.wake_fd, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def set_retained(self, topic: str, payload: dict[str, Any], bay: int | None = None) -> None:
        with self._lock:
            self._retained[topic] = payloads.encode(payload)
            self._dirty.add(topic)
            if bay is not None:
                self._bays.add(bay)
        self.wake()

    def set_status(self, clock_synced: bool | None, status_topic: str) -> None:
        with self._lock:
            self._status = replace(self._status, clock_synced=clock_synced)
            self._dirty.add(status_topic)
        self.wake()

    def status_snapshot(self) -> DockStatus:
        with self._lock:
            return self._status

    def mark_dirty(self, topic: str) -> None:
        """Send ``topic`` again (the broker refused it)."""
        with self._lock:
            self._dirty.add(topic)

    def bays(self) -> list[int]:
        """Every bay whose state was handed over."""
        with self._lock:
            return sorted(self._bays)

    def take_changes(self, birth: bool, status_topic: str, discovered: set[int]
                     ) -> tuple[list[str], dict[str, bytes | None], list[int]]:
        """The retained topics to publish now (all of them at birth, status first), their
        values, and the bays not yet announced to Home Assistant."""
        with self._lock:
            topics = [status_topic, *self._retained] if birth else \
                sorted(self._dirty, key=lambda t: t != status_topic)
            self._dirty.clear()
            bays = sorted(self._bays - discovered)
            return topics, {t: self._retained.get(t) for t in topics}, bays

    def link_state(self) -> BrokerState:
        with self._lock:
            return self._link

    def update_link(self, **changes: Any) -> None:
        with self._lock:
            self._link = replace(self._link, **changes)

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.read(self.wake_fd, 4096)

    def close(self) -> None:
        for fd in (self.wake_fd, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


class _Link:
    """The thread's side: connect with backoff, run the socket loop, pump the outbox."""

    def __init__(self, reporter: MqttReporter, outbox: Outbox) -> None:
        self.r = reporter
        self.shared = reporter.shared
        self.outbox = outbox
        self.client = new_client(reporter.settings,
                                 Will(reporter.topics.status, reporter.status_payload(False)))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_log = self._on_log
        self.socket_error: str | None = None              # paho's last socket error text
        # paho queues anything past this locally (it cannot change once connected).
        self.client.max_inflight_messages_set(reporter.section.inflight_window)
        self.connected = False
        self.refused: str | None = None
        self.window = reporter.section.inflight_window
        self.cursor = 0                                   # highest row id handed to paho
        self.buffer: collections.deque[OutboxRow] = collections.deque()
        self.inflight: dict[int, OutboxRow] = {}          # paho mid -> outbox row
        self.direct: dict[int, str] = {}                  # paho mid -> topic (not outbox)
        self.acked: list[int] = []
        self.last_flush = 0.0
        self.db_dirty = True
        self.last_poll = 0.0
        self.last_count = -COUNT_INTERVAL_S
        self.rewind_at: float | None = None
        self.need_birth = False
        self.over_limit = False
        self.alert_due = False
        self.stuck_row: int | None = None
        self.discovered: set[int] = set()                 # bays announced to Home Assistant

    def run(self) -> None:
        """Connect, serve, back off, repeat until stopped; then go offline cleanly."""
        delay = self.r.section.reconnect_min_s
        while not self.shared.stopping.is_set():
            try:
                served = self._attempt()
            except Exception as exc:  # a bug or a broken database: say so, then keep trying
                log.exception("MQTT link failed")
                self._error(f"internal error in the MQTT link: {exc!r}")
                served = False
            if self.shared.stopping.is_set():
                break
            delay = self.r.section.reconnect_min_s if served else \
                min(delay * 2, self.r.section.reconnect_max_s)
            # Jitter: a bureau's docks coming back after a broker outage must not stampede.
            self.shared.stopping.wait(delay * (0.5 + self.r.rng.random() / 2))
        self._shutdown()

    # -- one connection -------------------------------------------------------------

    def _attempt(self) -> bool:
        """One connection attempt; True when a session was established."""
        self.refused = None
        self._count_pending(force=True)
        try:
            connect(self.client, self.r.settings)
        except OSError as exc:
            self._error(describe_connect_error(exc, self.r.section.broker.url,
                                               self.r.section.ca_file))
            return False
        established = False
        self.socket_error = None
        deadline = self.r.clock.monotonic() + self.client.connect_timeout
        while not self.shared.stopping.is_set():
            if not self.connected and self.r.clock.monotonic() > deadline and not established:
                self._error(f"broker {self.r.section.broker.url} sent no CONNACK in time")
                break
            established = established or self.connected
            if not self._step():
                if not established and self.refused is None and not self.shared.stopping.is_set():
                    self._error(describe_early_close(self.r.section.broker.url,
                                                     self.socket_error))
                break
        self._flush_acks(force=True)
        if self.connected and self.shared.stopping.is_set():
            return True
        if self.connected:  # the loop saw the socket fail before paho reported it
            self.connected = False
            self.shared.update_link(connected=False, since=utc_iso(self.r.clock.now()))
        if self.client.socket() is not None:
            self._close_socket()
        return established

    def _step(self) -> bool:
        """One turn of the loop; False when the connection is gone."""
        if self.refused is not None:
            return False
        now = self.r.clock.monotonic()
        if now - self.last_poll >= self.r.section.poll_interval_s:
            self.last_poll = now
            if self.outbox.changed():
                self.db_dirty = True
        self._count_pending()
        if self.connected:
            self._publish_birth_and_state()
            self._pump(now)
        self._flush_acks()
        sock = self.client.socket()
        if not isinstance(sock, socket.socket):  # ssl.SSLSocket is a socket.socket too
            return False
        fd = sock.fileno()
        # TLS may hold decrypted bytes select() cannot see; read those without waiting.
        buffered = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        timeout = 0.0 if buffered else \
            min(self.r.section.poll_interval_s, 1.0, ACK_FLUSH_S if self.acked else 1.0)
        wlist = [fd] if self.client.want_write() else []
        try:
            readable, writable, _ = select.select([fd, self.shared.wake_fd], wlist, [], timeout)
        except (OSError, ValueError):
            return False
        if self.shared.wake_fd in readable:
            self.shared.drain_wake()
            self.db_dirty = True
        if (fd in readable or buffered) and self.client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
            return False
        if fd in writable and self.client.loop_write() != mqtt.MQTT_ERR_SUCCESS:
            return False
        return self.client.loop_misc() == mqtt.MQTT_ERR_SUCCESS

    def _close_socket(self) -> None:
        with contextlib.suppress(Exception):
            self.client._sock_close()  # drop a half-open socket before the next attempt

    # -- paho callbacks (run in this thread) -------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Any) -> None:
        if reason.is_failure:
            self.refused = describe_connack(str(reason), self.r.section.broker.url,
                                            self.r.section.credentials_file)
            self._error(self.refused)
            return
        receive_max = getattr(properties, "ReceiveMaximum", None) if properties else None
        # The broker's Receive Maximum caps what may await PUBACK at once (MQTT 5 §3.3.4).
        self.window = min(self.r.section.inflight_window, receive_max or 65535)
        self.connected = True
        self.need_birth = True
        self.db_dirty = True
        log.info("connected to MQTT broker",
                 extra={"broker": self.r.section.broker.url, "window": self.window,
                        "session_present": bool(getattr(flags, "session_present", False))})
        # A refusal by the broker's ACL is not cured by reconnecting: keep showing it until
        # a publish is accepted again.
        previous = self.shared.link_state().error or ""
        self.shared.update_link(connected=True,
                             error=previous if previous.startswith("ACL denied") else None,
                             since=utc_iso(self.r.clock.now()))

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, text: str) -> None:
        # paho reports socket errors (a TLS alert from the broker, say) only through its log.
        if level == mqtt.MQTT_LOG_ERR:
            self.socket_error = text

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                       properties: Any) -> None:
        was_connected = self.connected
        self.connected = False
        if was_connected and not self.shared.stopping.is_set():
            text = f"lost connection to {self.r.section.broker.url}: {reason}"
            log.warning("MQTT connection lost", extra={"reason": str(reason),
                                                       "in_flight": len(self.inflight)})
            # An ACL refusal is what the administrator must fix; a disconnect that follows it
            # (brokers may drop a client they refuse) must not hide it.
            previous = self.shared.link_state().error or ""
            self.shared.update_link(connected=False,
                                 error=previous if previous.startswith("ACL denied") else text,
                                 since=utc_iso(self.r.clock.now()))

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Any) -> None:
        row = self.inflight.pop(mid, None)
        topic = self.direct.pop(mid, None)
        if reason.is_failure:
            target = self.r.topics.outbox(row.topic) if row else (topic or "?")
            text = describe_publish_refusal(str(reason), target)
            self._error(text)
            if row is not None:
                # Not marked sent: read again from the table after a pause, in order.
                self.rewind_at = self.r.clock.monotonic() + self.r.section.reconnect_min_s
            elif topic is not None:
                self.shared.mark_dirty(topic)
                self.rewind_at = self.rewind_at or \
                    self.r.clock.monotonic() + self.r.section.reconnect_min_s
            return
        if row is not None:
            self.acked.append(row.id)
            if (self.shared.link_state().error or "").startswith("ACL denied"):
                self.shared.update_link(error=None)

    # -- what is sent ---------------------------------------------------------------

    def _publish_birth_and_state(self) -> None:
        if self.rewind_at is not None:
            return  # the broker refused something; do not hammer it until the pause ends
        r = self.r
        birth, self.need_birth = self.need_birth, False
        if birth:
            self.discovered.clear()
        topics, values, bays = self.shared.take_changes(birth, r.topics.status, self.discovered)
        for topic in topics:
            payload = r.status_payload(True) if topic == r.topics.status else values[topic]
            if payload is not None:
                self._direct(topic, payload, retain=True)
        if r.section.homeassistant.enabled and (birth or bays):
            self._discovery(birth, bays)
        if self.alert_due:
            self.alert_due = False
            self._send_backlog_alert()

    def _discovery(self, birth: bool, bays: list[int]) -> None:
        """The dock's one device discovery message, again whenever a new bay shows up."""
        self.discovered.update(bays)
        for topic, payload in discovery.device_messages(self.r.section.homeassistant.prefix,
                                                        self.r.topics, self.discovered):
            self._direct(topic, payload, retain=True)

    def _direct(self, topic: str, payload: bytes, retain: bool) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        self.direct[info.mid] = topic

    def _send_backlog_alert(self) -> None:
        count = self.shared.link_state().outbox_pending
        payload = alert_payload(
            self.r.dock, utc_iso(self.r.clock.now()), payloads.OUTBOX_BACKLOG,
            detail=f"{count} outbox rows wait for the broker (limit "
                   f"{self.r.section.outbox_alert_rows}); nothing is discarded")
        # Straight out, not through the outbox: it is about the outbox, and must not wait
        # behind the backlog it reports.
        self._direct(self.r.topics.alert, payloads.encode(payload), retain=False)

    def _pump(self, now: float) -> None:
        """Hand rows to paho in id order while the in-flight window has room."""
        if self.rewind_at is not None:
            if self.inflight or now < self.rewind_at:
                return
            self.rewind_at = None
            self.cursor = 0
            self.buffer.clear()
            self.db_dirty = True
        room = self.window - len(self.inflight) - len(self.direct)
        while room > 0:
            if not self.buffer:
                if not self.db_dirty:
                    return
                rows = self.outbox.pending(self.cursor, FETCH_ROWS)
                self.db_dirty = len(rows) == FETCH_ROWS
                if not rows:
                    return
                self.buffer.extend(rows)
            row = self.buffer[0]
            try:
                topic = self.r.topics.outbox(row.topic)
            except ValueError as exc:
                # Never skipped (that would drop evidence): the queue stops here, loudly.
                if self.stuck_row != row.id:
                    self.stuck_row = row.id
                    log.error("outbox row cannot be published", extra={"row": row.id,
                                                                       "error": str(exc)})
                self._error(f"outbox row {row.id} cannot be published: {exc}")
                return
            self.buffer.popleft()
            info = self.client.publish(topic, row.payload, qos=row.qos or 1, retain=row.retain)
            self.inflight[info.mid] = row
            self.cursor = row.id
            room -= 1
        self.shared.update_link(in_flight=len(self.inflight))

    def _flush_acks(self, force: bool = False) -> None:
        if not self.acked:
            return
        now = self.r.clock.monotonic()
        if not force and len(self.acked) < ACK_FLUSH_ROWS and now - self.last_flush < ACK_FLUSH_S:
            return
        ids, self.acked = self.acked, []
        self.outbox.mark_sent(ids, utc_iso(self.r.clock.now()))
        self.last_flush = now
        pending = max(0, self.shared.link_state().outbox_pending - len(ids))
        self.shared.update_link(last_sent_id=max(ids), in_flight=len(self.inflight),
                             outbox_pending=pending)

    def _count_pending(self, force: bool = False) -> None:
        now = self.r.clock.monotonic()
        if not force and now - self.last_count < COUNT_INTERVAL_S:
            return
        self.last_count = now
        count = self.outbox.pending_count()
        limit = self.r.section.outbox_alert_rows
        if count > limit and not self.over_limit:
            self.over_limit = True
            self.alert_due = True
            log.warning("MQTT outbox backlog over the limit; nothing is discarded",
                        extra={"pending": count, "limit": limit})
        elif self.over_limit and count < limit * BACKLOG_CLEAR_RATIO:
            self.over_limit = False
            log.info("MQTT outbox backlog back under the limit", extra={"pending": count})
        self.shared.update_link(outbox_pending=count, outbox_over_limit=self.over_limit)

    def _error(self, text: str) -> None:
        previous = self.shared.link_state().error
        if text != previous:
            log.error("MQTT: %s", text, extra={"broker": self.r.section.broker.url})
        self.shared.update_link(connected=self.connected, error=text,
                             since=utc_iso(self.r.clock.now()))

    # -- stopping -----------------------------------------------------------------

    def _drain(self) -> None:
        """Serve the link until every outbox row is acknowledged, or ``drain_on_stop_s`` ends."""
        deadline = self.r.clock.monotonic() + self.r.section.drain_on_stop_s
        self.db_dirty = True
        while self.connected and self.r.clock.monotonic() < deadline:
            if not (self.db_dirty or self.buffer or self.inflight or self.direct):
                break
            if not self._step():
                return
        self._flush_acks(force=True)
        left = self.outbox.pending_count()
        if left:
            log.warning("MQTT: stopped with outbox rows unsent; they go out at the next start "
                        "(or with dockd publish)",
                        extra={"pending": left, "drain_on_stop_s": self.r.section.drain_on_stop_s})

    def _shutdown(self) -> None:
        """A clean stop: publish what the outbox holds (the daemon's ``dock.stopped`` among it)
        for up to ``drain_on_stop_s``, clear the retained bay states (a stopped dock vouches
        for no bay), say ``offline`` ourselves (a clean disconnect suppresses the Will), close."""
        try:
            if self.connected:
                self._drain()
            if self.connected:
                farewell = [(self.r.topics.bay(bay), b"") for bay in self.shared.bays()]
                farewell.append((self.r.topics.status, self.r.status_payload(False)))
                sent = [self.client.publish(topic, payload, qos=1, retain=True)
                        for topic, payload in farewell]
                deadline = self.r.clock.monotonic() + STOP_GRACE_S
                while not all(info.is_published() for info in sent) and \
                        self.r.clock.monotonic() < deadline:
                    if self.client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                        break
                self._flush_acks(force=True)
                self.client.disconnect()
                self.client.loop(0.05)
            self._flush_acks(force=True)
        except Exception:
            log.exception("MQTT shutdown failed; the broker will publish the Last Will")
        finally:
            self.connected = False
            self.shared.update_link(connected=False, since=utc_iso(self.r.clock.now()))
            self.outbox.close()
