"""Broker state for ``dockd status``, and the words for what went wrong with the broker.

An administrator reads these texts on the console and in the journal, so each names the
cause in their terms ("TLS: wrong CA", "not authorised", "ACL denied") and what to check.
"""

from __future__ import annotations

import errno
import socket
import ssl

from dockd.errors import UnavailableError


class BrokerUnavailableError(UnavailableError):
    """The MQTT broker cannot be reached or refuses us."""


# X509 verify codes (OpenSSL x509_vfy.h) that mean "this certificate is not from our CA".
_WRONG_CA_CODES = {2, 18, 19, 20, 21}
_HOSTNAME_MISMATCH = 62
_EXPIRED = 10


def describe_connect_error(exc: BaseException, url: str, ca_file: object = None) -> str:
    """One line saying why connecting to ``url`` failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in _WRONG_CA_CODES:
            return (f"TLS: wrong CA: the certificate of {url} is not signed by the CA in "
                    f"{ca_file or 'the system store'} ({exc.verify_message})")
        if code == _HOSTNAME_MISMATCH:
            return f"TLS: the certificate of {url} does not name this host ({exc.verify_message})"
        if code == _EXPIRED:
            return f"TLS: the certificate of {url} has expired"
        return f"TLS: certificate of {url} rejected: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if "CERTIFICATE" in str(reason).upper() or "ALERT" in str(reason).upper():
            return (f"TLS: {url} refused the handshake ({reason}); check cert_file/key_file "
                    "against the broker's CA")
        return f"TLS: handshake with {url} failed ({reason}); is the port a TLS listener?"
    if isinstance(exc, ConnectionRefusedError):
        return f"broker {url} refused the connection (is it running, is the port right?)"
    if isinstance(exc, socket.gaierror):
        return f"broker host of {url} cannot be resolved ({exc.strerror})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"broker {url} did not answer in time"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return (f"broker {url} closed the connection during the handshake (TLS port used "
                "without mqtts://, or a client certificate is required?)")
    if isinstance(exc, OSError):
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)
        return f"cannot reach broker {url}: {reason}"
    return f"cannot connect to broker {url}: {exc}"


def describe_early_close(url: str, socket_error: str | None) -> str:
    """One line for a connection the broker closed before its CONNACK."""
    text = socket_error or "no reason given"
    if "alert" in text.lower() or "certificate" in text.lower() or "ssl" in text.lower():
        return (f"TLS: {url} refused the handshake ({text}); check cert_file/key_file "
                "against the broker's CA")
    return f"broker {url} closed the connection before accepting it ({text})"


# MQTT v5 reason codes (and the v3.1.1 CONNACK codes paho maps onto them) by meaning.
_NOT_AUTHORISED = {"Bad user name or password", "Not authorized"}


def describe_connack(reason: str, url: str, credentials_file: object = None) -> str:
    """One line for a refused CONNACK (``reason`` is paho's ReasonCode text)."""
    if reason in _NOT_AUTHORISED:
        where = f" in {credentials_file}" if credentials_file else " (no credentials_file set)"
        return f"not authorised: {url} refused the username/password{where} ({reason})"
    if reason == "Client identifier not valid":
        return f"broker {url} refused the client id ({reason}); set mqtt.client_id"
    if reason in ("Server unavailable", "Server busy", "Server shutting down"):
        return f"broker {url} is unavailable ({reason})"
    return f"broker {url} refused the connection: {reason}"


def describe_publish_refusal(reason: str, topic: str) -> str:
    """One line for a PUBACK carrying a failure reason code."""
    if reason == "Not authorized":
        return (f"ACL denied: the broker refused publishing to {topic}; the broker's ACL must "
                "let this dock write its own subtree")
    if reason == "Quota exceeded":
        return f"broker quota exceeded publishing to {topic}"
    return f"broker refused a publish to {topic}: {reason}"


def describe_subscribe_refusal(reason: str, topic: str) -> str:
    """One line for a SUBACK carrying a failure reason code."""
    if reason == "Not authorized":
        return f"ACL denied: the broker refused a subscription to {topic}"
    return f"broker refused a subscription to {topic}: {reason}"
