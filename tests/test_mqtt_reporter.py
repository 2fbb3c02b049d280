"""The outbox publisher against a real Mosquitto: order, PUBACK marking, retained state,
broker outages, TLS, credentials and ACL failures, backlog alert, Home Assistant discovery."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockd.clock import SystemClock
from dockd.config import Config, parse_config
from dockd.dock.states import BayState, BayStatus, FaultReason
from dockd.errors import ConfigError
from dockd.report.mqtt.payloads import RecorderHealth
from dockd.report.mqtt.reporter import MqttReporter
from dockd.store.evidence import EvidenceStore, open_store
from tests.custody_support import NoteEvent
from tests.mqtt_broker import Collector, MosquittoBroker, TlsMaterial, broker, tls_material  # noqa: F401

BASE = "dockd/site-01/dock-01"
FAST = {"reconnect_min_s": 0.1, "reconnect_max_s": 0.3, "poll_interval_s": 0.05}


def make_config(root: Path, url: str, **mqtt: Any) -> Config:
    return parse_config({"dock": {"store_dir": str(root / "store")},
                         "ingest": {"checkpoint_every": 10},
                         "mqtt": {"enabled": True, "broker": url, **FAST, **mqtt}})


@pytest.fixture
def made(tmp_path: Path) -> Iterator[list[Any]]:
    """Stores and reporters made by a test, closed at its end."""
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        if isinstance(thing, MqttReporter):
            thing.stop()
        else:
            thing.close()


def start(made: list[Any], config: Config) -> tuple[EvidenceStore, MqttReporter]:
    store = open_store(config, SystemClock())
    made.append(store)
    reporter = MqttReporter(config, config.dock.store_dir, SystemClock(),
                            store.custody.signer.public_key_hex)
    reporter.start()
    made.append(reporter)
    return store, reporter


def append(store: EvidenceStore, n: int, reporter: MqttReporter | None = None) -> None:
    for i in range(n):
        store.custody.append(NoteEvent(f"s{i}", {"i": i}), "tester")
        if reporter is not None:
            reporter.wake()


def pending(store: EvidenceStore) -> int:
    row = store.catalog.query_one("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
    return int(row[0]) if row else -1


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def seqs(collector: Collector) -> list[int]:
    return [json.loads(p)["seq"] for p in collector.on("/custody")]


def test_rows_arrive_in_order_and_are_marked_sent_on_puback(
        tmp_path: Path, broker: MosquittoBroker, made: list[Any]) -> None:  # noqa: F811
    collector = Collector(broker, "dockd/#")
    made.append(collector)
    config = make_config(tmp_path, broker.url)
    store, reporter = start(made, config)
    append(store, 25, reporter)
    assert wait_until(lambda: pending(store) == 0)
    assert collector.wait_for(lambda m: len([t for t, _, _ in m if t.endswith("/custody")]) >= 25)
    assert seqs(collector) == list(range(1, 26))
    state = reporter.link_state()
    assert state.connected and state.error is None and state.outbox_pending == 0
    # checkpoints (every 10) are retained; the status birth names the dock's key
    cps = collector.on("/checkpoint")
    assert [json.loads(c)["seq"] for c in cps] == [10, 20]
    status = json.loads(collector.on("/status")[0])
    assert status["state"] == "online"
    assert status["public_key"] == store.custody.signer.public_key_hex
    sent = store.catalog.query("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL")[0][0]
    assert sent == 27
    reporter.stop()
    made.remove(reporter)
    assert collector.wait_for(lambda m: json.loads(
        [p for t, p, _ in m if t.endswith("/status")][-1])["state"] == "offline")


def test_broker_down_for_the_whole_run_then_everything_arrives_in_order(
        tmp_path: Path, made: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    b = MosquittoBroker(tmp_path / "broker")
    # Establish a persistent subscriber session, then take the broker down.
    b.start()
    Collector(b, f"{BASE}/custody", client_id="central").close()
    b.stop()
    config = make_config(tmp_path, b.url)
    store, reporter = start(made, config)
    append(store, 40, reporter)
    assert wait_until(lambda: (reporter.link_state().error or "").startswith("broker mqtt://"))
    assert "refused the connection" in (reporter.link_state().error or "")
    assert "refused the connection" in caplog.text
    assert pending(store) == 40 + 4
    time.sleep(0.5)
    append(store, 10, reporter)
    b.start()
    try:
        assert wait_until(lambda: pending(store) == 0)
        assert reporter.link_state().connected and reporter.link_state().error is None
        collector = Collector(b, f"{BASE}/custody", client_id="central")
        made.append(collector)
        assert collector.wait_for(lambda m: len(m) >= 50)
        assert seqs(collector) == list(range(1, 51))
    finally:
        reporter.stop()
        made.remove(reporter)
        b.stop()


def test_retained_state_latest_wins_and_is_republished_after_a_broker_restart(
        tmp_path: Path, made: list[Any]) -> None:
    # No persistence: whatever the broker holds after the restart, the reporter put there.
    b = MosquittoBroker(tmp_path / "broker", persistence=False)
    b.start()
    try:
        config = make_config(tmp_path, b.url)
        _, reporter = start(made, config)
        reporter.bay_changed(BayStatus(bay=1, label="A", state=BayState.OFFLOADING))
        reporter.bay_changed(BayStatus(bay=1, label="A", state=BayState.FAULT,
                                       fault=FaultReason.BATTERY_LOW, recorder="SN1"))
        reporter.publish_health("SN1", RecorderHealth(battery_percent=4, bay=1))
        reporter.publish_status(clock_synced=True)
        assert wait_until(lambda: reporter.link_state().connected)
        b.kill()
        b.start()
        assert wait_until(lambda: reporter.link_state().connected, 10)
        late = Collector(b, "dockd/#")
        made.append(late)
        assert late.wait_for(lambda m: {t for t, _, _ in m} >= {
            f"{BASE}/status", f"{BASE}/bay/1/state", f"{BASE}/recorder/SN1/health"})
        bay = json.loads(late.on("/bay/1/state")[-1])
        assert (bay["state"], bay["fault"], bay["fault_scope"]) == ("fault", "battery_low", "recorder")
        assert json.loads(late.on("/recorder/SN1/health")[-1])["battery_percent"] == 4
        status = json.loads(late.on("/status")[-1])
        assert status["state"] == "online" and status["clock_synced"] is True
        assert all(retain for _, _, retain in late.messages)
    finally:
        b.stop()


def test_wrong_ca_is_reported_and_nothing_is_lost(
        tmp_path: Path, tls_material: TlsMaterial, made: list[Any],  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    b = MosquittoBroker(tmp_path / "broker", tls=tls_material)
    b.start()
    try:
        wrong = make_config(tmp_path, b.url, ca_file=str(tls_material.wrong_ca))
        store, reporter = start(made, wrong)
        append(store, 5, reporter)
        assert wait_until(lambda: (reporter.link_state().error or "").startswith("TLS: wrong CA"))
        assert "wrong-ca.pem" in (reporter.link_state().error or "")
        assert "TLS: wrong CA" in caplog.text
        assert not reporter.link_state().connected and pending(store) == 5
        reporter.stop()
        made.remove(reporter)
        collector = Collector(b, "dockd/#", ca=tls_material.ca)
        made.append(collector)
        right = make_config(tmp_path, b.url, ca_file=str(tls_material.ca))
        reporter = MqttReporter(right, right.dock.store_dir, SystemClock(),
                                store.custody.signer.public_key_hex)
        reporter.start()
        made.append(reporter)
        assert wait_until(lambda: pending(store) == 0)
        assert collector.wait_for(lambda m: len(seqs(collector)) == 5)
        assert seqs(collector) == [1, 2, 3, 4, 5]
    finally:
        b.stop()


def test_client_certificate_is_presented_when_the_broker_requires_one(
        tmp_path: Path, tls_material: TlsMaterial, made: list[Any]) -> None:  # noqa: F811
    b = MosquittoBroker(tmp_path / "broker", tls=tls_material, require_client_cert=True)
    b.start()
    try:
        without = make_config(tmp_path, b.url, ca_file=str(tls_material.ca))
        _, reporter = start(made, without)
        assert wait_until(lambda: (reporter.link_state().error or "").startswith(("TLS:", "broker")))
        assert not reporter.link_state().connected
        reporter.stop()
        made.remove(reporter)
        with_cert = make_config(tmp_path, b.url, ca_file=str(tls_material.ca),
                                cert_file=str(tls_material.client_cert),
                                key_file=str(tls_material.client_key))
        reporter = MqttReporter(with_cert, with_cert.dock.store_dir, SystemClock(), "ab" * 32)
        reporter.start()
        made.append(reporter)
        assert wait_until(lambda: reporter.link_state().connected)
    finally:
        b.stop()


def test_wrong_password_is_not_authorised_and_nothing_is_lost(
        tmp_path: Path, made: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    b = MosquittoBroker(tmp_path / "broker", passwords={"dock-01": "right"})
    b.start()
    try:
        creds = tmp_path / "creds"
        creds.write_text("dock-01\nwrong\n")
        creds.chmod(0o600)
        config = make_config(tmp_path, b.url, credentials_file=str(creds))
        store, reporter = start(made, config)
        append(store, 3, reporter)
        assert wait_until(lambda: (reporter.link_state().error or "").startswith("not authorised"))
        assert str(creds) in (reporter.link_state().error or "")
        assert "not authorised" in caplog.text
        assert pending(store) == 3
        # The file is read again on every attempt: fixing it is enough.
        creds.write_text("dock-01\nright\n")
        assert wait_until(lambda: pending(store) == 0)
        assert reporter.link_state().connected and reporter.link_state().error is None
    finally:
        b.stop()


def test_missing_credentials_file_fails_at_start(tmp_path: Path) -> None:
    config = make_config(tmp_path, "mqtt://127.0.0.1:1", credentials_file=str(tmp_path / "nope"))
    reporter = MqttReporter(config, tmp_path, SystemClock(), "ab" * 32)
    with pytest.raises(ConfigError, match=r"credentials_file: .*does not exist"):
        reporter.start()


def test_acl_denial_is_reported_and_rows_stay_unsent(
        tmp_path: Path, made: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    acl = f"user dock-01\ntopic write {BASE}/status\ntopic write {BASE}/checkpoint\n"
    b = MosquittoBroker(tmp_path / "broker", passwords={"dock-01": "pw"}, acl=acl)
    b.start()
    try:
        creds = tmp_path / "creds"
        creds.write_text("dock-01\npw\n")
        config = make_config(tmp_path, b.url, credentials_file=str(creds))
        store, reporter = start(made, config)
        append(store, 3, reporter)
        assert wait_until(lambda: (reporter.link_state().error or "").startswith("ACL denied"))
        assert f"{BASE}/custody" in (reporter.link_state().error or "")
        assert "ACL denied" in caplog.text
        time.sleep(0.5)  # retries keep being refused; none may be marked sent
        assert pending(store) == 3
    finally:
        b.stop()


def test_backlog_over_the_limit_raises_an_alert_and_discards_nothing(
        tmp_path: Path, broker: MosquittoBroker, made: list[Any]) -> None:  # noqa: F811
    collector = Collector(broker, "dockd/#")
    made.append(collector)
    config = make_config(tmp_path, broker.url, outbox_alert_rows=5)
    store = open_store(config, SystemClock())
    made.append(store)
    append(store, 12)
    reporter = MqttReporter(config, config.dock.store_dir, SystemClock(),
                            store.custody.signer.public_key_hex)
    reporter.start()
    made.append(reporter)
    assert collector.wait_for(lambda m: any(t.endswith("/alert") for t, _, _ in m))
    alert = json.loads(collector.on("/alert")[0])
    assert alert["reason"] == "outbox_backlog" and "13 outbox rows" in alert["detail"]
    assert wait_until(lambda: pending(store) == 0)
    assert collector.wait_for(lambda m: len(seqs(collector)) == 12)
    assert wait_until(lambda: not reporter.link_state().outbox_over_limit, 5)


def test_home_assistant_discovery_when_enabled(
        tmp_path: Path, broker: MosquittoBroker, made: list[Any]) -> None:  # noqa: F811
    collector = Collector(broker, "homeassistant/#")
    made.append(collector)
    config = make_config(tmp_path, broker.url, homeassistant={"enabled": True})
    _, reporter = start(made, config)
    reporter.bay_changed(BayStatus(bay=2, label="B"))
    device = "homeassistant/device/dock-01/dockd_site-01_dock-01/config"
    assert collector.wait_for(lambda m: any(t == device and b"bay2_state" in p for t, p, _ in m))
    # (the device message's content: tests/test_mqtt_discovery.py)


def test_no_discovery_by_default(tmp_path: Path, broker: MosquittoBroker,  # noqa: F811
                                 made: list[Any]) -> None:
    collector = Collector(broker, "homeassistant/#")
    made.append(collector)
    status = Collector(broker, f"{BASE}/bay/#")
    made.append(status)
    _, reporter = start(made, make_config(tmp_path, broker.url))
    reporter.bay_changed(BayStatus(bay=2, label="B"))
    assert status.wait_for(lambda m: len(m) >= 1)
    time.sleep(0.2)
    assert collector.messages == []


def test_stop_without_ever_connecting_is_quick(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                               ) -> None:
    caplog.set_level(logging.INFO)
    config = make_config(tmp_path, "mqtt://127.0.0.1:1")
    store = open_store(config, SystemClock())
    try:
        reporter = MqttReporter(config, config.dock.store_dir, SystemClock(), "ab" * 32)
        reporter.start()
        time.sleep(0.2)
        began = time.monotonic()
        reporter.stop()
        assert time.monotonic() - began < 2
        assert not reporter.link_state().connected
    finally:
        store.close()


def test_example_acl_lets_a_dock_write_only_its_own_subtree(tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    acl = (Path(__file__).resolve().parent.parent / "config" / "mosquitto" / "dockd.acl").read_text()
    b = MosquittoBroker(tmp_path / "broker", acl=acl,
                        passwords={"dock-01": "a", "dock-02": "b", "central-archive": "c"})
    b.start()
    try:
        central = Collector(b, "dockd/#", username="central-archive", password="c")
        results: dict[str, str] = {}

        def publish_as(user: str, password: str, topic: str) -> None:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            client.username_pw_set(user, password)
            client.on_publish = lambda c, u, mid, rc, p: results.__setitem__(
                f"{user} {topic}", str(rc) if rc.is_failure else "ok")
            client.connect("127.0.0.1", b.port)
            client.loop_start()
            client.publish(topic, b"{}", qos=1).wait_for_publish(5)
            client.loop_stop()
            client.disconnect()

        publish_as("dock-01", "a", f"{BASE}/custody")
        publish_as("dock-01", "a", "homeassistant/sensor/dock-01/bay1_state/config")
        publish_as("dock-02", "b", f"{BASE}/custody")
        publish_as("dock-02", "b", "homeassistant/sensor/dock-01/bay1_state/config")
        publish_as("central-archive", "c", f"{BASE}/custody")
        assert results == {
            f"dock-01 {BASE}/custody": "ok",
            "dock-01 homeassistant/sensor/dock-01/bay1_state/config": "ok",
            f"dock-02 {BASE}/custody": "Not authorized",
            "dock-02 homeassistant/sensor/dock-01/bay1_state/config": "Not authorized",
            f"central-archive {BASE}/custody": "Not authorized",
        }
        assert central.wait_for(lambda m: len(m) >= 1)
        time.sleep(0.2)
        assert [t for t, _, _ in central.messages] == [f"{BASE}/custody"]
        central.close()
    finally:
        b.stop()


def test_clean_stop_drains_the_outbox_and_clears_the_bay_states(
        tmp_path: Path, broker: MosquittoBroker, made: list[Any]) -> None:  # noqa: F811
    collector = Collector(broker, "dockd/#")
    made.append(collector)
    config = make_config(tmp_path, broker.url, poll_interval_s=5.0)
    store, reporter = start(made, config)
    for bay in (1, 2):
        reporter.bay_changed(BayStatus(bay=bay, label=f"Bay {bay}", state=BayState.READY,
                                       recorder=f"SN{bay}"))
    assert collector.wait_for(lambda m: len([t for t, _, _ in m if "/bay/" in t]) >= 2)
    # Rows the link has not been told about (no wake, slow poll) when the stop comes: the last
    # records of a shift, and the daemon's dock.stopped.
    append(store, 300)
    reporter.stop()
    made.remove(reporter)
    assert pending(store) == 0
    assert collector.wait_for(lambda m: len([t for t, _, _ in m if t.endswith("/custody")]) >= 300)
    assert seqs(collector) == list(range(1, 301))
    # what a consumer that arrives later finds: no bay state, the dock offline
    late = Collector(broker, "dockd/#")
    made.append(late)
    assert late.wait_for(lambda m: any(t.endswith("/status") for t, _, _ in m))
    time.sleep(0.3)
    assert [t for t, _, _ in late.messages if "/bay/" in t] == []
    assert json.loads(late.on("/status")[-1])["state"] == "offline"
    cleared = [(t, p) for t, p, _ in collector.messages if "/bay/" in t][-2:]
    assert sorted(cleared) == [(f"{BASE}/bay/1/state", b""), (f"{BASE}/bay/2/state", b"")]


def test_clean_stop_waits_for_an_unresponsive_broker_no_longer_than_drain_on_stop_s(
        tmp_path: Path, made: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    import signal

    b = MosquittoBroker(tmp_path / "broker")
    b.start()
    try:
        config = make_config(tmp_path, b.url, drain_on_stop_s=0.5, poll_interval_s=5.0)
        store, reporter = start(made, config)
        assert wait_until(lambda: reporter.link_state().connected)
        assert b.proc is not None
        b.proc.send_signal(signal.SIGSTOP)  # the broker hangs: no PUBACK will come
        try:
            append(store, 50)
            began = time.monotonic()
            reporter.stop()
            took = time.monotonic() - began
            made.remove(reporter)
        finally:
            b.proc.send_signal(signal.SIGCONT)
        # drain_on_stop_s, then at most STOP_GRACE_S for the farewell messages
        assert 0.5 <= took < 0.5 + 2.0 + 1.0, took
        # nothing marked sent without its PUBACK (50 records and their checkpoints); kept for later
        assert pending(store) == 55
        assert "outbox rows unsent" in caplog.text
    finally:
        b.stop()
