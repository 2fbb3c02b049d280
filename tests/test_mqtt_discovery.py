"""Home Assistant MQTT discovery against a real Mosquitto: the device message HA's current
schema asks for, and every entity's template rendered (with Jinja2, as HA renders them) on
the payloads the dock really publishes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jinja2
import pytest

from dockd import __version__
from dockd.clock import utc_iso
from dockd.dock.states import BayState, BayStatus, FaultReason, Progress
from dockd.report.mqtt import discovery
from dockd.report.mqtt.payloads import ALERT_REASONS, LED_FAULT, OUTBOX_BACKLOG
from dockd.report.mqtt.topics import Topics
from dockd.store.outbox import enqueue_alert
from tests.mqtt_broker import Collector, MosquittoBroker, broker  # noqa: F401
from tests.test_mqtt_reporter import BASE, made, make_config, start  # noqa: F401

HA = "homeassistant"
DEVICE_TOPIC = f"{HA}/device/dock-01/dockd_site-01_dock-01/config"
ENTITY_ID = re.compile(r"^(sensor|binary_sensor|event)\.[a-z0-9_]+$")
NUMERIC = ("battery", "storage_free", "clock_drift", "progress", "files_done", "store_free",
           "outbox_pending")


def _render(template: str, payload: bytes) -> str:
    """What HA's MQTT entity does with ``value_template`` and a received payload."""
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    return env.from_string(template).render(value_json=json.loads(payload), value=payload.decode())


def test_device_discovery_and_every_template_on_the_real_payloads(
        tmp_path: Path, broker: MosquittoBroker, made: list[Any]) -> None:  # noqa: F811
    collector = Collector(broker, "#")
    made.append(collector)
    config = make_config(tmp_path, broker.url, homeassistant={"enabled": True})
    store, reporter = start(made, config)
    reporter.bay_changed(BayStatus(bay=1, label="Bay 1", state=BayState.OFFLOADING, recorder="SN1",
                                   officer="张伟", battery_percent=81, storage_free_bytes=1 << 30,
                                   clock_drift_s=1.3,
                                   progress=Progress(files_done=12, files_total=40, bytes_done=1 << 29,
                                                     bytes_total=1 << 31, rate_bytes_per_s=2.5e7)))
    reporter.bay_changed(BayStatus(bay=2, label="Bay 2", state=BayState.FAULT,
                                   fault=FaultReason.BATTERY_LOW, recorder="SN2", battery_percent=7))
    # ready, but battery and clock could not be checked: every figure null
    reporter.bay_changed(BayStatus(bay=3, label="Bay 3", state=BayState.READY_UNCHECKED,
                                   recorder="SN3", unchecked=("battery", "clock")))
    with store.catalog.transaction() as tx:
        enqueue_alert(tx, "dock-01", utc_iso(reporter.clock.now()), "battery_low", bay=2,
                      recorder="SN2", detail="battery 7 %")
    reporter.wake()

    def device_with_bays(m: list[tuple[str, bytes, bool]]) -> bool:
        configs = [p for t, p, _ in m if t == DEVICE_TOPIC and p]
        return bool(configs) and "bay3_state" in json.loads(configs[-1])["components"]

    assert collector.wait_for(device_with_bays, 15)
    assert collector.wait_for(lambda m: any(t.endswith("/alert") for t, _, _ in m), 15)
    # retained: HA restarting later still finds the dock
    late = Collector(broker, DEVICE_TOPIC)
    made.append(late)
    assert late.wait_for(lambda m: bool(m))
    _topic, payload, retained = late.messages[-1]
    assert retained and payload == [p for t, p, _ in collector.messages if t == DEVICE_TOPIC][-1]
    config = json.loads(payload)

    # device, origin, one id per entity, no deprecated object_id
    assert config["device"]["identifiers"] == ["dockd_site-01_dock-01"]
    assert config["device"]["name"] == "Dock dock-01 (site-01)"
    assert config["origin"] == {"name": "dockd", "sw": __version__}
    components: dict[str, dict[str, Any]] = config["components"]
    ids = [c["unique_id"] for c in components.values()]
    assert len(set(ids)) == len(ids)
    for obj, c in components.items():
        assert "object_id" not in c
        assert ENTITY_ID.match(c["default_entity_id"]), c["default_entity_id"]
        assert c["default_entity_id"].startswith(c["platform"] + ".")
        assert c["unique_id"] == f"dockd_site-01_dock-01_{obj}"
        if obj != "online":
            assert c["availability"][0]["topic"] == f"{BASE}/status"

    latest = {t: p for t, p, _ in collector.messages}
    for obj, c in components.items():
        payload = latest[c["state_topic"]]  # every entity reads a topic the dock publishes
        value = _render(c["value_template"], payload)
        if c["platform"] == "binary_sensor":
            assert value in (c.get("payload_on", "ON"), c.get("payload_off", "OFF")), (obj, value)
        elif c["platform"] == "event":
            event = json.loads(value)
            assert event["event_type"] in c["event_types"] and event["bay"] == 2
        elif c.get("device_class") == "enum":
            assert value in c["options"], (obj, value)
        elif any(obj.endswith(n) for n in NUMERIC):
            assert c["state_class"] == "measurement" and c.get("unit_of_measurement"), obj
            assert value == "None" or float(value) >= -1e9, (obj, value)  # "None": HA's unknown
    rendered = {obj: _render(c["value_template"], latest[c["state_topic"]])
                for obj, c in components.items() if c["platform"] == "sensor"}
    assert (rendered["bay1_state"], rendered["bay1_battery"], rendered["bay1_progress"]) == \
        ("offloading", "81", "25.0")
    assert (rendered["bay2_fault"], rendered["bay3_battery"], rendered["bay3_progress"]) == \
        ("battery_low", "None", "None")
    assert rendered["bay3_state"] == "ready_unchecked"
    attributes = {obj: json.loads(_render(c["json_attributes_template"], latest[c["state_topic"]]))
                  for obj, c in components.items() if obj.endswith("_state")}
    assert attributes["bay3_state"] == {"unchecked": ["battery", "clock"]}
    assert attributes["bay1_state"] == {"unchecked": []}
    # a dock that sends no list (older version) renders an empty one, not an error
    assert json.loads(_render(components["bay3_state"]["json_attributes_template"],
                              b'{"state": "ready"}')) == {"unchecked": []}
    problem = {obj: _render(c["value_template"], latest[c["state_topic"]])
               for obj, c in components.items() if obj.endswith("_problem")}
    assert problem == {"bay1_problem": "OFF", "bay2_problem": "ON", "bay3_problem": "OFF"}
    assert components["bay2_problem"]["device_class"] == "problem"
    assert components["bay1_clock_drift"]["unit_of_measurement"] == "s"
    assert components["bay1_battery"]["device_class"] == "battery"
    # dockd 0.1's per-component configs are removed from the broker
    assert latest[f"{HA}/binary_sensor/dock-01/online/config"] == b""
    assert latest[f"{HA}/sensor/dock-01/bay1_state/config"] == b""


def test_node_id_and_topic_tell_two_sites_docks_of_the_same_name_apart() -> None:
    a, b = Topics("dockd", "site-a", "dock-01"), Topics("dockd", "site-b", "dock-01")
    assert discovery.node_id(a) != discovery.node_id(b)
    assert discovery.discovery_topic(HA, a) != discovery.discovery_topic(HA, b)
    ids_a = {c["unique_id"] for c in discovery.device_config(a, [1])["components"].values()}
    ids_b = {c["unique_id"] for c in discovery.device_config(b, [1])["components"].values()}
    assert not ids_a & ids_b
    # the node level of the topic stays the dock id (= its broker username, for the ACL)
    assert discovery.discovery_topic(HA, a).split("/")[2] == "dock-01"


def test_enum_options_and_event_types_come_from_the_code() -> None:
    config = discovery.device_config(Topics("dockd", "s", "d"), [1])
    components = config["components"]
    assert components["bay1_state"]["options"] == [s.value for s in BayState]
    assert components["bay1_fault"]["options"] == ["none", *(f.value for f in FaultReason)]
    assert components["alert"]["event_types"] == list(ALERT_REASONS)
    assert {OUTBOX_BACKLOG, LED_FAULT} <= set(ALERT_REASONS)


@pytest.mark.parametrize("bays", [[], [1], [1, 2, 8]])
def test_a_discovery_message_per_dock_not_per_entity(bays: list[int]) -> None:
    messages = discovery.device_messages(HA, Topics("dockd", "site-01", "dock-01"), bays)
    configs = [(t, p) for t, p in messages if p]
    assert [t for t, _ in configs] == [DEVICE_TOPIC]
    assert {k for k in json.loads(configs[0][1])["components"] if k.startswith("bay")} == \
        {f"bay{b}_{o}" for b in bays for o in ("state", "problem", "fault", "recorder", "officer",
                                                "battery", "storage_free", "clock_drift",
                                                "progress", "files_done")}
