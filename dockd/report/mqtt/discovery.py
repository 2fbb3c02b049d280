"""Home Assistant MQTT discovery for a dock and its bays (off unless configured).

Each entity reads the retained topics dockd already publishes; discovery adds only the
``<ha_prefix>/<component>/<node>/<object>/config`` messages describing them. Availability
follows the dock's status topic, so a dead dock (Last Will) greys out every entity.
"""

from __future__ import annotations

import re
from typing import Any

from dockd import __version__
from dockd.report.mqtt.payloads import OFFLINE, ONLINE, encode
from dockd.report.mqtt.topics import Topics

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def node_id(topics: Topics) -> str:
    """The Home Assistant node id of a dock: ``dockd_<site>_<dock>`` in safe characters."""
    return _UNSAFE.sub("_", f"dockd_{topics.site}_{topics.dock}")


def dock_messages(ha_prefix: str, topics: Topics) -> list[tuple[str, bytes]]:
    """Discovery configs of the dock's own entities: connectivity, free space, clock, backlog."""
    node = node_id(topics)
    entities: list[tuple[str, str, dict[str, Any]]] = [
        ("binary_sensor", "online", {
            "name": "Online", "device_class": "connectivity", "state_topic": topics.status,
            "value_template": "{{ value_json.state }}", "payload_on": ONLINE,
            "payload_off": OFFLINE}),
        ("sensor", "store_free", {
            "name": "Store free", "device_class": "data_size", "unit_of_measurement": "B",
            "state_topic": topics.status, "value_template": "{{ value_json.store.free_bytes }}"}),
        ("binary_sensor", "clock_synced", {
            "name": "Clock synchronised", "state_topic": topics.status,
            "value_template": "{{ 'ON' if value_json.clock_synced else 'OFF' }}"}),
        ("sensor", "outbox_pending", {
            "name": "MQTT backlog", "state_topic": topics.status,
            "value_template": "{{ value_json.outbox_pending }}"}),
    ]
    return [_message(ha_prefix, topics, node, component, obj, config)
            for component, obj, config in entities]


def bay_messages(ha_prefix: str, topics: Topics, bay: int) -> list[tuple[str, bytes]]:
    """Discovery configs of one bay: state, fault, recorder, officer, files offloaded."""
    node = node_id(topics)
    state = topics.bay(bay)
    entities: list[tuple[str, str, dict[str, Any]]] = [
        ("sensor", f"bay{bay}_state", {"name": f"Bay {bay} state", "state_topic": state,
                                       "value_template": "{{ value_json.state }}"}),
        ("sensor", f"bay{bay}_fault", {"name": f"Bay {bay} fault", "state_topic": state,
                                       "value_template": "{{ value_json.fault or 'none' }}"}),
        ("sensor", f"bay{bay}_recorder", {"name": f"Bay {bay} recorder", "state_topic": state,
                                          "value_template": "{{ value_json.recorder or '' }}"}),
        ("sensor", f"bay{bay}_officer", {"name": f"Bay {bay} officer", "state_topic": state,
                                         "value_template": "{{ value_json.officer or '' }}"}),
        ("sensor", f"bay{bay}_files_done", {
            "name": f"Bay {bay} files offloaded", "state_topic": state,
            "value_template": "{{ value_json.progress.files_done }}"}),
    ]
    return [_message(ha_prefix, topics, node, component, obj, config)
            for component, obj, config in entities]


def _message(ha_prefix: str, topics: Topics, node: str, component: str, obj: str,
             config: dict[str, Any]) -> tuple[str, bytes]:
    body = dict(config)
    body["unique_id"] = f"{node}_{obj}"
    body["object_id"] = f"{node}_{obj}"
    body["availability"] = [{"topic": topics.status, "value_template": "{{ value_json.state }}",
                             "payload_available": ONLINE, "payload_not_available": OFFLINE}]
    body["device"] = {"identifiers": [node], "name": f"Dock {topics.dock} ({topics.site})",
                      "manufacturer": "dockd", "model": "body-worn recorder dock",
                      "sw_version": __version__}
    # The node level is the bare dock id (= its broker username), so the broker ACL can give
    # each dock exactly homeassistant/+/<its id>/# (see config/mosquitto/dockd.acl).
    return f"{ha_prefix}/{component}/{topics.dock}/{obj}/config", encode(body)
