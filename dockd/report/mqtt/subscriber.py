"""A subscribing MQTT client that keeps its subscription through reconnects.

What a central consumer (``dockd watch``) needs from paho: connect, subscribe at QoS 1, hand
every message to a callback, reconnect after a drop, and turn a refusal the broker will not
change its mind about (bad credentials, an ACL that forbids the topic) into one
:class:`BrokerUnavailableError` instead of retrying for ever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from dockd.i18n import _
from dockd.report.mqtt.connection import ConnectionSettings, connect, new_client
from dockd.report.mqtt.state import (
    BrokerUnavailableError,
    describe_connack,
    describe_connect_error,
    describe_subscribe_refusal,
)

log = logging.getLogger(__name__)
RECONNECT_S = 1.0


class Subscriber:
    """Subscribes ``topic`` and calls ``on_message(topic, payload)`` for every message."""

    def __init__(self, settings: ConnectionSettings, topic: str,
                 on_message: Callable[[str, bytes], None]) -> None:
        self.settings = settings
        self.topic = topic
        self.on_message = on_message
        self.client = new_client(settings)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_paho_message
        self.fatal: str | None = None
        self.connected = False
        self.last_message = time.monotonic()

    def run(self, done: Callable[[], bool]) -> None:
        """Serve until ``done()``; BrokerUnavailableError when the broker cannot be used."""
        try:
            self._open(first=True)
            while not done():
                if self.client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                    self.connected = False
                    if done():
                        break
                    time.sleep(RECONNECT_S)
                    self._open(first=False)
                if self.fatal:
                    raise BrokerUnavailableError(self.fatal)
        finally:
            if self.connected:
                self.client.disconnect()

    def idle_s(self) -> float:
        """Seconds since the last message (or since start)."""
        return time.monotonic() - self.last_message

    def _open(self, first: bool) -> None:
        url = self.settings.broker.url
        try:
            connect(self.client, self.settings)
        except OSError as exc:
            text = describe_connect_error(exc, url, self.settings.ca_file)
            if first:
                raise BrokerUnavailableError(text) from None
            log.warning("reconnect failed: %s", text)
            return
        # The CONNACK decides: a refusal is fatal, there is nothing a retry would change.
        deadline = time.monotonic() + self.client.connect_timeout
        while not self.connected and not self.fatal and time.monotonic() < deadline:
            if self.client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                break
        if self.fatal:
            raise BrokerUnavailableError(self.fatal)
        if not self.connected and first:
            raise BrokerUnavailableError(_("broker {url} did not accept the connection in time").format(
                                           url=url))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Any) -> None:
        if reason.is_failure:
            self.fatal = describe_connack(str(reason), self.settings.broker.url,
                                          self.settings.credentials_file)
            return
        self.connected = True
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reasons: list[ReasonCode], properties: Any) -> None:
        for reason in reasons:
            if reason.is_failure:
                self.fatal = describe_subscribe_refusal(str(reason), self.topic)

    def _on_paho_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.last_message = time.monotonic()
        self.on_message(msg.topic, bytes(msg.payload))
