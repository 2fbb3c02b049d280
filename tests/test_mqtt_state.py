"""The broker error texts an administrator reads, and the BrokerState snapshot."""

from __future__ import annotations

import socket
import ssl

from dockd.dock.reporting import BrokerState
from dockd.report.mqtt.state import (
    describe_connack,
    describe_connect_error,
    describe_early_close,
    describe_publish_refusal,
    describe_subscribe_refusal,
)

URL = "mqtts://broker:8883"


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, message)
    exc.verify_code, exc.verify_message = code, message
    return exc


def test_tls_verification_failures_name_the_cause() -> None:
    wrong = describe_connect_error(verify_error(20, "unable to get local issuer certificate"),
                                   URL, "/etc/dockd/ca.pem")
    assert wrong.startswith("TLS: wrong CA") and "/etc/dockd/ca.pem" in wrong
    assert "does not name this host" in describe_connect_error(
        verify_error(62, "Hostname mismatch"), URL)
    assert "has expired" in describe_connect_error(verify_error(10, "expired"), URL)


def test_network_failures_name_the_cause() -> None:
    assert "refused the connection" in describe_connect_error(ConnectionRefusedError(), URL)
    assert "cannot be resolved" in describe_connect_error(
        socket.gaierror(-2, "Name or service not known"), URL)
    assert "did not answer in time" in describe_connect_error(TimeoutError(), URL)
    assert "closed the connection during the handshake" in describe_connect_error(
        ConnectionResetError(), URL)
    assert "Network is unreachable" in describe_connect_error(
        OSError(101, "Network is unreachable"), URL)


def test_refusals_by_the_broker() -> None:
    text = describe_connack("Not authorized", URL, "/etc/dockd/creds")
    assert text.startswith("not authorised") and "/etc/dockd/creds" in text
    assert "no credentials_file" in describe_connack("Bad user name or password", URL)
    assert "client id" in describe_connack("Client identifier not valid", URL)
    assert describe_publish_refusal("Not authorized", "a/b").startswith("ACL denied")
    assert "quota" in describe_publish_refusal("Quota exceeded", "a/b")
    assert describe_subscribe_refusal("Not authorized", "a/#").startswith("ACL denied")
    assert describe_early_close(URL, "failed to receive on socket: [SSL: TLSV13_ALERT_CERTIFICATE_"
                                "REQUIRED] tlsv13 alert certificate required").startswith("TLS:")
    assert "no reason given" in describe_early_close(URL, None)


def test_broker_state_json() -> None:
    state = BrokerState(broker=URL, connected=False, error="TLS: wrong CA: x", outbox_pending=3)
    assert state.to_json_dict()["error"] == "TLS: wrong CA: x"
    assert state.to_json_dict()["outbox_pending"] == 3
