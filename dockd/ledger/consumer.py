"""``dockd ledger run``: the MQTT edge of the ledger.

One thread, one paho client with ``manual_ack=True`` and a persistent MQTT 5 session:

* messages are judged as they arrive and gathered into a batch (``batch_max`` messages or
  ``batch_wait_s``), written in one PostgreSQL transaction, and only then acknowledged
  (PUBACK, in the order received). A crash before the commit loses nothing: the broker
  still holds every unacknowledged message for the session and sends it again.
* PostgreSQL down: the batch is kept, nothing is acknowledged, the connection is retried
  with back-off; the broker stops sending once ``receive_maximum`` messages await our
  ack, so memory stays bounded.
* broker down: the uncommitted batch is dropped (the broker re-sends it on reconnect);
  a committed batch whose acks were lost comes again and is counted as duplicates.
* custody, checkpoint and alert topics are subscribed as MQTT 5 shared subscriptions
  (``$share/<share_group>/…``) so several instances split the load; status, bay and health
  are retained and go to every instance (a shared subscription never gets retained
  messages), which is harmless: those writes are latest-wins upserts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from dockd.clock import Clock
from dockd.config.ledger import LedgerSection
from dockd.i18n import _
from dockd.ledger import notes
from dockd.ledger.db import BatchResult, LedgerDb
from dockd.ledger.errors import LedgerUnavailableError
from dockd.ledger.gaps import Filler, GapKeeper
from dockd.ledger.judge import Judged, RecordIn, Rejected, judge, reject
from dockd.report.mqtt.connection import ConnectionSettings, connect, new_client
from dockd.report.mqtt.state import (
    BrokerUnavailableError,
    describe_connack,
    describe_connect_error,
    describe_subscribe_refusal,
)

log = logging.getLogger(__name__)
UNSTORABLE = "unstorable"


@dataclass(frozen=True)
class Pending:
    """A judged message waiting for its batch's commit, and what acknowledging it needs."""

    judged: Judged
    mid: int
    qos: int
    generation: int


def subscriptions(prefix: str, share_group: str) -> list[str]:
    """The topic filters of one ledger instance."""
    shared = f"$share/{share_group}/" if share_group else ""
    return [f"{shared}{prefix}/+/+/custody", f"{shared}{prefix}/+/+/checkpoint",
            f"{shared}{prefix}/+/+/alert", f"{prefix}/+/+/status", f"{prefix}/+/+/bay/+/state",
            f"{prefix}/+/+/recorder/+/health"]


class LedgerConsumer:
    """The subscriber loop of one ledger instance."""

    def __init__(self, section: LedgerSection, settings: ConnectionSettings,
                 open_db: Callable[[], LedgerDb], clock: Clock,
                 on_batch: Callable[[BatchResult], None] | None = None,
                 filler: Filler | None = None) -> None:
        self.section = section
        self.settings = settings
        self.open_db = open_db
        self.clock = clock
        self.on_batch = on_batch
        self.filler = filler
        self.prefix = section.mqtt.prefix
        self.client = new_client(settings)
        self.client.manual_ack_set(True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.generation = 0
        self.connected = False
        self.fatal: str | None = None
        self.pending: list[Pending] = []
        self.batch_started = 0.0
        self.db: LedgerDb | None = None
        self.db_retry_at = 0.0
        self.db_delay = section.reconnect_min_s
        self.mqtt_delay = section.mqtt.reconnect_min_s
        self.next_verify = 0.0
        self.stop = False
        self.committed = 0

    # -- the loop ---------------------------------------------------------------------

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Consume until SIGTERM/SIGINT (or ``until()`` is true)."""
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self._open_db()
            self._open_mqtt(first=True)
            while not self.stop and not (until and until()):
                rc = self.client.loop(0.02)
                if rc == mqtt.MQTT_ERR_SUCCESS:
                    self._drain()
                if self.fatal:
                    raise BrokerUnavailableError(self.fatal)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    self._lost_broker()
                    self._sleep_backoff("mqtt")
                    self._open_mqtt(first=False)
                    continue
                if self._batch_due():
                    self._commit_batch()
                self._verify_due()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            if self.pending and self.db is not None:
                self._commit_batch()  # a clean stop commits and acks what it holds
            if self.connected:
                self.client.disconnect()
            if self.db is not None:
                self.db.close()
            log.info("ledger stopped", extra={"committed": self.committed})

    def _drain(self) -> None:
        """Read what the socket already holds: paho's loop() handles one packet per call,
        and a select() per message is what a backlog of a million costs otherwise."""
        for _read in range(self.section.batch_max):
            before = len(self.pending)
            if self.client.loop_read() != mqtt.MQTT_ERR_SUCCESS or len(self.pending) == before:
                return
            if len(self.pending) >= self.section.batch_max:
                return

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.stop = True

    # -- MQTT ---------------------------------------------------------------------------

    def _open_mqtt(self, first: bool) -> None:
        url = self.settings.broker.url
        try:
            connect(self.client, self.settings)
        except OSError as exc:
            text = describe_connect_error(exc, url, self.settings.ca_file)
            if first:
                raise BrokerUnavailableError(text) from None
            log.warning("broker reconnect failed: %s", text)
            return
        deadline = time.monotonic() + self.client.connect_timeout
        while not self.connected and not self.fatal and time.monotonic() < deadline:
            if self.client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                break
        if self.fatal:
            raise BrokerUnavailableError(self.fatal)
        if not self.connected and first:
            raise BrokerUnavailableError(
                _("broker {url} did not accept the connection in time").format(url=url))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Any) -> None:
        if reason.is_failure:
            self.fatal = describe_connack(str(reason), self.settings.broker.url,
                                          self.settings.credentials_file)
            return
        self.connected = True
        self.generation += 1
        self.mqtt_delay = self.section.mqtt.reconnect_min_s
        topics = subscriptions(self.prefix, self.section.share_group)
        client.subscribe([(t, SubscribeOptions(qos=1)) for t in topics])
        log.info("connected to the broker", extra={"broker": self.settings.broker.url,
                                                   "session_present": flags.session_present})

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason: ReasonCode, properties: Any) -> None:
        self._lost_broker()

    def _lost_broker(self) -> None:
        if self.connected:
            log.warning("lost the broker; %d uncommitted message(s) will come again",
                        sum(1 for p in self.pending if p.generation == self.generation))
        self.connected = False
        # Acks of this connection cannot be sent on the next one: keep only what is
        # committed-to-be (nothing) and let the broker re-send the rest.
        self.pending = [p for p in self.pending if p.generation != self.generation]

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reasons: list[ReasonCode], properties: Any) -> None:
        for reason in reasons:
            if reason.is_failure:
                self.fatal = describe_subscribe_refusal(str(reason), self.prefix + "/…")
                return
        log.info("subscribed", extra={"topics": len(reasons),
                                      "share_group": self.section.share_group or None})

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # msg.topic would raise on a topic that is not UTF-8; judge the bytes instead.
        topic = bytes(msg._topic).decode("utf-8", "replace")
        payload = bytes(msg.payload)
        try:
            judged = judge(self.prefix, topic, payload, self.section.max_payload_bytes)
            if msg.dup and isinstance(judged, RecordIn):
                judged = dataclasses.replace(judged, redelivered=True)
        except Exception as exc:  # a bug must not stop the ledger: keep the message as evidence
            log.exception("judging a message failed")
            judged = reject(UNSTORABLE, notes.UNJUDGED(error=f"{type(exc).__name__}: "
                                                             f"{str(exc)[:200]}"),
                            topic, None, None, payload)
        if not self.pending:
            self.batch_started = time.monotonic()
        self.pending.append(Pending(judged, msg.mid, msg.qos, self.generation))

    # -- PostgreSQL -----------------------------------------------------------------------

    def _batch_due(self) -> bool:
        if not self.pending or time.monotonic() < self.db_retry_at:
            return False
        return (len(self.pending) >= self.section.batch_max
                or time.monotonic() - self.batch_started >= self.section.batch_wait_s)

    def _commit_batch(self) -> None:
        if self.db is None and not self._open_db():
            return
        assert self.db is not None
        batch = self.pending[:self.section.batch_max]
        now = self.clock.now()
        try:
            try:
                result = self.db.apply_batch([p.judged for p in batch], now)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                # Not the server's absence but this batch's content: store each message on
                # its own so one poison message cannot stop the ledger.
                log.error("batch refused by PostgreSQL, writing one by one: %s", exc)
                result = self._one_by_one(batch, now)
        except psycopg.OperationalError as exc:
            self._lost_db(exc)
            return
        for p in batch:
            if p.generation == self.generation and self.connected and p.qos > 0:
                self.client.ack(p.mid, p.qos)
        self.pending = self.pending[len(batch):]
        if self.pending:
            self.batch_started = time.monotonic()
        self.committed += len(batch)
        self.db_delay = self.section.reconnect_min_s
        if self.on_batch is not None:
            self.on_batch(result)

    def _one_by_one(self, batch: list[Pending], now: dt.datetime) -> BatchResult:
        assert self.db is not None
        total = BatchResult()
        for p in batch:
            try:
                r = self.db.apply_batch([p.judged], now)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                j = p.judged
                raw = j.payload if isinstance(j, Rejected) else j.raw
                refused = notes.REFUSED_BY_DATABASE(error=str(exc).splitlines()[0][:300])
                r = self.db.apply_batch([reject(UNSTORABLE, refused, j.topic, j.dock, None, raw)],
                                        now)
            total.kept += r.kept
            total.duplicates += r.duplicates
            total.rejected += r.rejected
            total.forks += r.forks
        return total

    def _open_db(self) -> bool:
        try:
            self.db = self.open_db()
        except (LedgerUnavailableError, psycopg.OperationalError) as exc:
            # Includes a deadlock or serialization failure while migrating next to another
            # instance: transient, retried like an absent server.
            self._lost_db(exc)
            return False
        return True

    def _lost_db(self, exc: BaseException) -> None:
        log.warning("PostgreSQL unavailable, %d message(s) held unacknowledged: %s",
                    len(self.pending), str(exc).strip().splitlines()[0] if str(exc) else exc)
        if self.db is not None:
            with contextlib.suppress(psycopg.Error):
                self.db.close()
        self.db = None
        self.db_retry_at = time.monotonic() + self.db_delay * random.uniform(0.5, 1.0)
        self.db_delay = min(self.db_delay * 2, self.section.reconnect_max_s)

    def _verify_due(self) -> None:
        if time.monotonic() < self.next_verify or self.db is None:
            return
        self.next_verify = time.monotonic() + self.section.verify_interval_s
        try:
            GapKeeper(self.db, self.section.gap_grace_s, self.filler,
                      self.section.archive_retry_s).run(self.clock.now())
        except psycopg.OperationalError as exc:
            self._lost_db(exc)

    def _sleep_backoff(self, which: str) -> None:
        delay = self.mqtt_delay
        self.mqtt_delay = min(self.mqtt_delay * 2, self.section.mqtt.reconnect_max_s)
        deadline = time.monotonic() + delay * random.uniform(0.5, 1.0)
        while time.monotonic() < deadline and not self.stop:
            time.sleep(0.05)
