"""Making a paho-mqtt 2.x client: protocol, session, TLS, credentials, Last Will.

This is the only module that knows how paho is configured; the reporter and ``dockd watch``
both build their clients here so TLS and authentication behave the same in both.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dockd.config.mqtt import Broker, MqttSection
from dockd.report.mqtt.credentials import read_credentials

CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to open one MQTT connection."""

    broker: Broker
    client_id: str
    protocol: str = "5"
    keepalive_s: int = 30
    clean_start: bool = False
    session_expiry_s: int = 86400
    credentials_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    # MQTT 5 Receive Maximum: QoS 1 messages the broker may send us before our acks (the
    # ledger acks only after its commit, so this bounds what it holds uncommitted).
    receive_maximum: int | None = None


@dataclass(frozen=True)
class Will:
    """The Last Will: published by the broker when the connection dies uncleanly."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def settings_from_section(section: MqttSection, default_client_id: str) -> ConnectionSettings:
    """The connection of the ``[mqtt]`` section; ``default_client_id`` when none is set."""
    return ConnectionSettings(
        broker=section.broker, client_id=section.client_id or default_client_id,
        protocol=section.protocol, keepalive_s=section.keepalive_s, clean_start=False,
        session_expiry_s=section.session_expiry_s, credentials_file=section.credentials_file,
        ca_file=section.ca_file, cert_file=section.cert_file, key_file=section.key_file)


def new_client(settings: ConnectionSettings, will: Will | None = None) -> mqtt.Client:
    """A configured, not yet connected client (callbacks are the caller's)."""
    v5 = settings.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=settings.client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        # MQTT 5 takes clean_start at connect(); 3.1.1 takes clean_session here.
        clean_session=None if v5 else settings.clean_start,
    )
    client.connect_timeout = CONNECT_TIMEOUT_S
    if settings.broker.tls:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH,
            cafile=str(settings.ca_file) if settings.ca_file else None)
        if settings.cert_file and settings.key_file:
            context.load_cert_chain(str(settings.cert_file), str(settings.key_file))
        client.tls_set_context(context)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    return client


def connect(client: mqtt.Client, settings: ConnectionSettings) -> None:
    """Open the TCP/TLS connection and send CONNECT (blocking; CONNACK comes in the loop).

    Credentials are read again on every attempt so a corrected file is used without restart.
    Raises OSError (ssl.SSLError included) when the broker cannot be reached.
    """
    if settings.credentials_file is not None:
        creds = read_credentials(settings.credentials_file)
        client.username_pw_set(creds.username, creds.password)
    if settings.protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = settings.session_expiry_s
        if settings.receive_maximum is not None:
            props.ReceiveMaximum = settings.receive_maximum
        client.connect(settings.broker.host, settings.broker.port, settings.keepalive_s,
                       clean_start=settings.clean_start, properties=props)
    else:
        client.connect(settings.broker.host, settings.broker.port, settings.keepalive_s)
