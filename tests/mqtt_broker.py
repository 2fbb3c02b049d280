"""A real Mosquitto broker for tests: free loopback port, own config and persistence dir.

``MosquittoBroker`` can be SIGKILLed and restarted on the same port with the same
persistence, so tests can break the broker the way a power cut does. ``make_tls_material``
creates a test CA (and a second, wrong CA) with ``cryptography``.

Import the fixtures into a test module: ``from tests.mqtt_broker import broker, tls_material``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsMaterial:
    """PEM files of a test PKI: CA, broker and client certificates, and an unrelated CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    wrong_ca: Path


def make_tls_material(directory: Path) -> TlsMaterial:
    """Create a CA, a broker cert for 127.0.0.1/localhost, a client cert and a wrong CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("dockd test CA")
    _, wrong_cert = _ca("some other CA")
    server_key, server_cert = _leaf(ca_key, ca_cert, "localhost", server=True)
    client_key, client_cert = _leaf(ca_key, ca_cert, "dock-01", server=False)
    paths = TlsMaterial(directory / "ca.pem", directory / "server.pem", directory / "server.key",
                        directory / "client.pem", directory / "client.key",
                        directory / "wrong-ca.pem")
    _write_cert(paths.ca, ca_cert)
    _write_cert(paths.wrong_ca, wrong_cert)
    _write_cert(paths.server_cert, server_cert)
    _write_cert(paths.client_cert, client_cert)
    _write_key(paths.server_key, server_key)
    _write_key(paths.client_key, client_key)
    return paths


class MosquittoBroker:
    """One mosquitto process; survives kill()/restart() with its port and persistence."""

    def __init__(self, workdir: Path, *, tls: TlsMaterial | None = None,
                 require_client_cert: bool = False, passwords: dict[str, str] | None = None,
                 acl: str | None = None, persistence: bool = True) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls = tls
        self.require_client_cert = require_client_cert
        self.passwords = passwords
        self.acl = acl
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self._write_config()

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start and wait until the port accepts connections."""
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: "
                                   f"{self.log_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not open its port within 10 s")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no final persistence save (like a power cut)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _write_config(self) -> None:
        lines = ["per_listener_settings false", "user root",
                 f"listener {self.port} 127.0.0.1",
                 f"log_dest file {self.log}", "log_type all", "connection_messages true",
                 "max_queued_messages 0", "max_inflight_messages 0"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/",
                      "autosave_on_changes true", "autosave_interval 1"]
        if self.tls:
            lines += [f"cafile {self.tls.ca}", f"certfile {self.tls.server_cert}",
                      f"keyfile {self.tls.server_key}"]
            if self.require_client_cert:
                lines += ["require_certificate true"]
        if self.passwords is not None:
            pwfile = self.workdir / "passwd"
            pwfile.write_text("")
            for user, password in self.passwords.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(pwfile), user, password], check=True,
                               capture_output=True)
            lines += [f"password_file {pwfile}", "allow_anonymous false"]
        else:
            lines += ["allow_anonymous true"]
        if self.acl is not None:
            aclfile = self.workdir / "acl"
            aclfile.write_text(self.acl)
            lines += [f"acl_file {aclfile}"]
        self.conf.write_text("\n".join(lines) + "\n")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A plain (no TLS, anonymous) broker with persistence, started."""
    b = MosquittoBroker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """A test PKI shared by the session's TLS tests."""
    return make_tls_material(tmp_path_factory.mktemp("pki"))


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, name: str,
          server: bool) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(
                   [x509.ExtendedKeyUsageOID.SERVER_AUTH if server
                    else x509.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(path, 0o600)


class Collector:
    """A paho subscriber on a thread that keeps every (topic, payload, retain) it receives."""

    def __init__(self, broker: MosquittoBroker, topic: str = "#", *,
                 ca: Path | None = None, username: str | None = None,
                 password: str | None = None, client_id: str = "") -> None:
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes, bool]] = []
        self._cond = threading.Condition()
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        props = Properties(PacketTypes.CONNECT)
        # A named collector keeps its session (and queued messages) across disconnects.
        props.SessionExpiryInterval = 3600 if client_id else 0
        self.client.connect("127.0.0.1", broker.port, clean_start=not client_id, properties=props)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("collector did not get its SUBACK")

    def _on_message(self, client: object, userdata: object, msg: object) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))  # type: ignore[attr-defined]
            self._cond.notify_all()

    def wait_for(self, predicate: object, timeout: float = 10.0) -> bool:
        """Wait until ``predicate(messages)`` is true."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):  # type: ignore[operator]
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def on(self, suffix: str) -> list[bytes]:
        with self._cond:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
