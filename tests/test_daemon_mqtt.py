"""The daemon and a real Mosquitto: bay state, health, alerts and the custody stream,
checked by the central side's own verifier (`dockd watch --verify`)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from dockd.sim.recorders import SimRecorderSpec
from dockd.sim.runner import DaemonRunner
from tests.mqtt_broker import Collector, MosquittoBroker

PREFIX = "dockd/demo-site/demo-dock"


def _last_state(messages: list[tuple[str, bytes, bool]], bay: int) -> str | None:
    states = [json.loads(p)["state"] for t, p, _ in messages if t == f"{PREFIX}/bay/{bay}/state"]
    return states[-1] if states else None


def test_dock_states_health_alerts_and_every_custody_record_reach_the_broker(
        tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    collector = Collector(broker, "dockd/#")
    watch = subprocess.Popen([sys.executable, "-m", "dockd.cli", "watch", "--broker", broker.url,
                              "--verify", "--idle-timeout", "4", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # let the verifier subscribe before the first record exists
    # the metrics endpoint rides along (no daemon of its own): scraped once the bays settle
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        metrics_port = probe.getsockname()[1]
    h = DaemonRunner(tmp_path / "dock", broker_url=broker.url,
                     extra=f"[metrics]\nenabled = true\nport = {metrics_port}\n")
    try:
        h.start()
        h.dock.plug("1-1.1", "gat947", spec=SimRecorderSpec(serial="ZFYMQ1", battery_percent=90))
        h.dock.plug("1-1.2", "msc", usb_serial="STICK", vendor_product=("0781", "5567"))
        h.dock.plug("1-1.3", "amba", spec=SimRecorderSpec(serial="AMBMQ3", protocol="amba-stream"))
        h.wait_bay(1, "ready")
        h.wait_bay(2, "fault")
        h.wait_bay(3, "ready_unchecked")
        assert collector.wait_for(lambda m: _last_state(m, 1) == "ready", 15)
        assert collector.wait_for(lambda m: _last_state(m, 2) == "fault", 15)
        assert collector.wait_for(lambda m: _last_state(m, 3) == "ready_unchecked", 15)
        # an Ambarella recorder has no battery command: MQTT says so, it is not "ready"
        bay3 = json.loads([p for t, p, _ in collector.messages
                           if t == f"{PREFIX}/bay/3/state" and p][-1])
        assert bay3["unchecked"] == ["battery"] and bay3["battery_percent"] is None
        assert json.loads([p for t, p, _ in collector.messages
                           if t == f"{PREFIX}/bay/1/state" and p][-1])["unchecked"] == []
        health = [json.loads(p) for p in collector.on("/recorder/ZFYMQ1/health")]
        assert health and health[-1]["battery_percent"] == 90
        alerts = [json.loads(p) for p in collector.on("/alert")]
        assert any(a["reason"] == "unknown_device" and a["bay"] == 2 for a in alerts)
        status = [json.loads(p) for p in collector.on(f"{PREFIX}/status")]
        assert status[-1]["state"] == "online"
        assert status[-1]["public_key"] == h.state()["dock"]["public_key"]
        from prometheus_client.parser import text_string_to_metric_families

        def scrape() -> dict[str, Any]:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
                return {f.name: f for f in text_string_to_metric_families(r.read().decode())}

        families = scrape()
        bays = {s.labels["state"]: s.value for s in families["dockd_bays"].samples}
        assert (bays["ready"], bays["fault"], bays["ready_unchecked"], bays["empty"]) == \
            (1, 1, 1, 0)
        assert families["dockd_offload_bytes"].samples[0].value > 0
        # the dock line (and so the broker link) is refreshed every few seconds
        deadline = time.monotonic() + 15
        while scrape()["dockd_mqtt_connected"].samples[0].value != 1:
            assert time.monotonic() < deadline, "metrics never showed the broker link up"
            time.sleep(0.5)
        last_seq = h.custody()[-1]["seq"]
        assert collector.wait_for(lambda m: any(json.loads(p).get("seq") == last_seq
                                                for t, p, _ in m if t.endswith("/custody")), 15)
        out, err = watch.communicate(timeout=60)
        # A clean stop: the daemon's own dock.stopped reaches the broker now (not at the next
        # start), and no bay is left saying "ready" for a dock that is gone.
        assert h.stop() == 0
        assert collector.wait_for(lambda m: any(
            t.endswith("/custody") and json.loads(p)["type"] == "dock.stopped" for t, p, _ in m), 10)
        assert collector.wait_for(lambda m: [p for t, p, _ in m if t == f"{PREFIX}/bay/1/state"][-1]
                                  == b"", 10)
        assert json.loads(collector.on(f"{PREFIX}/status")[-1])["state"] == "offline"
    finally:
        if watch.poll() is None:
            watch.kill()
        collector.close()
        h.stop()
        h.close()
        broker.stop()
    assert watch.returncode == 0, out[-3000:] + err[-3000:]
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    seen = {d["message"]["seq"] for d in lines if d.get("event") == "custody"}
    assert not [d for d in lines if "problem" in d]
    assert set(range(1, last_seq + 1)) <= seen, f"watch missed {set(range(1, last_seq + 1)) - seen}"


def test_broker_with_a_wrong_ca_is_named_in_dockd_status_and_the_offload_goes_on(
        tmp_path: Path) -> None:
    from tests.mqtt_broker import make_tls_material

    pki = make_tls_material(tmp_path / "pki")
    broker = MosquittoBroker(tmp_path / "broker", tls=pki)
    broker.start()
    h = DaemonRunner(tmp_path / "dock", broker_url=broker.url,
                     mqtt_extra=f'ca_file = "{pki.wrong_ca}"\nreconnect_min_s = 0.2\n'
                                'reconnect_max_s = 1.0')
    try:
        h.start()
        h.dock.plug("1-1.1", "msc", usb_serial="TLS1")
        h.wait_bay(1, "ready_unchecked")
        state = h.wait_until(lambda s: "TLS" in str(s["dock"]["broker"].get("error")), 30,
                             "the TLS error in the dock state")
        assert state["dock"]["broker"]["connected"] is False
        status = h.dockd("status")
        assert status.returncode == 0, status.stderr
        assert "TLS" in status.stdout
        assert "TLS" in h.log()
        assert state["dock"]["outbox_depth"] > 0  # kept for later, not dropped
    finally:
        h.stop()
        h.close()
        broker.stop()
