"""Home Assistant MQTT discovery for a dock and its bays (off unless configured).

One device-based discovery message describes the dock and every bay it has shown
(``<ha_prefix>/device/<dock>/<node>/config``, retained): HA's current schema with ``dev``,
``o`` (origin) and ``cmps`` (components), each component with its ``unique_id`` and a
``default_entity_id`` (which replaced the deprecated ``object_id``). Every entity reads the
retained topics dockd already publishes; nothing new is sent for HA but this message.
Availability follows the dock's status topic, so a stopped or dead dock (Last Will) greys
out every entity but the connectivity sensor, which shows it.

The node id is ``dockd_<site>_<dock>``: two sites may both have a ``dock-01``. The topic's
node level stays the bare dock id (its broker username), so the broker ACL can give each
dock exactly ``homeassistant/+/<its id>/#`` (config/mosquitto/dockd.acl).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dockd import __version__
from dockd.dock.states import BayState, FaultReason
from dockd.report.mqtt.payloads import ALERT_REASONS, OFFLINE, ONLINE, encode
from dockd.report.mqtt.topics import Topics

ORIGIN = {"name": "dockd", "sw": __version__}
NO_FAULT = "none"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Objects of the per-component discovery of dockd 0.1 (cleared so HA drops them).
_LEGACY_DOCK = (("binary_sensor", "online"), ("sensor", "store_free"),
                ("binary_sensor", "clock_synced"), ("sensor", "outbox_pending"))
_LEGACY_BAY = ("state", "fault", "recorder", "officer", "files_done")

Component = dict[str, Any]


def node_id(topics: Topics) -> str:
    """The Home Assistant node id of a dock: ``dockd_<site>_<dock>`` in safe characters."""
    return _UNSAFE.sub("_", f"dockd_{topics.site}_{topics.dock}")


def discovery_topic(ha_prefix: str, topics: Topics) -> str:
    """Where the dock's device discovery message lives."""
    return f"{ha_prefix}/device/{topics.dock}/{node_id(topics)}/config"


def device_messages(ha_prefix: str, topics: Topics, bays: Iterable[int],
                    version: str = __version__) -> list[tuple[str, bytes]]:
    """The retained messages that make HA show this dock: first empty payloads that remove
    dockd 0.1's per-component configs, then the one device message with every bay."""
    bays = sorted(set(bays))
    legacy = [(f"{ha_prefix}/{component}/{topics.dock}/{obj}/config", b"")
              for component, obj in _LEGACY_DOCK]
    legacy += [(f"{ha_prefix}/sensor/{topics.dock}/bay{bay}_{obj}/config", b"")
               for bay in bays for obj in _LEGACY_BAY]
    return [*legacy, (discovery_topic(ha_prefix, topics),
                      encode(device_config(topics, bays, version)))]


def device_config(topics: Topics, bays: Iterable[int], version: str = __version__) -> dict[str, Any]:
    """The device discovery payload (a dict; :func:`device_messages` encodes it)."""
    node = node_id(topics)
    components: dict[str, Component] = dict(_dock_components(topics))
    for bay in sorted(set(bays)):
        components.update(_bay_components(topics, bay))
    available = [{"topic": topics.status, "value_template": "{{ value_json.state }}",
                  "payload_available": ONLINE, "payload_not_available": OFFLINE}]
    cmps = {}
    for obj, config in components.items():
        body = {**config, "unique_id": f"{node}_{obj}",
                "default_entity_id": f"{config['platform']}.{_slug(node)}_{_slug(obj)}"}
        if obj != "online":  # the connectivity sensor must show "off", not "unavailable"
            body["availability"] = available
        cmps[obj] = body
    return {
        "device": {"identifiers": [node], "name": f"Dock {topics.dock} ({topics.site})",
                   "manufacturer": "dockd", "model": "body-worn recorder dock",
                   "serial_number": topics.dock, "sw_version": version},
        "origin": {**ORIGIN, "sw": version},
        "qos": 1,
        "components": cmps,
    }


def _dock_components(topics: Topics) -> dict[str, Component]:
    status = topics.status
    return {
        "online": {"platform": "binary_sensor", "name": "Online", "device_class": "connectivity",
                   "state_topic": status, "value_template": "{{ value_json.state }}",
                   "payload_on": ONLINE, "payload_off": OFFLINE, "entity_category": "diagnostic"},
        "store_free": {"platform": "sensor", "name": "Store free", "device_class": "data_size",
                       "unit_of_measurement": "B", "state_class": "measurement",
                       "state_topic": status,
                       "value_template": "{{ value_json.store.free_bytes }}"},
        "clock_synced": {"platform": "binary_sensor", "name": "Clock synchronisation",
                         "device_class": "problem", "state_topic": status,
                         "value_template": "{{ 'OFF' if value_json.clock_synced else 'ON' }}",
                         "entity_category": "diagnostic"},
        "outbox_pending": {"platform": "sensor", "name": "MQTT backlog", "state_class": "measurement",
                           "unit_of_measurement": "messages", "state_topic": status,
                           "value_template": "{{ value_json.outbox_pending }}",
                           "entity_category": "diagnostic"},
        "alert": {"platform": "event", "name": "Alert", "state_topic": topics.alert,
                  "event_types": list(ALERT_REASONS),
                  # HA wants {"event_type": …}; the alert's other fields become attributes.
                  "value_template": "{{ {'event_type': value_json.reason, 'bay': value_json.bay, "
                                    "'recorder': value_json.recorder, 'detail': value_json.detail}"
                                    " | tojson }}"},
    }


def _bay_components(topics: Topics, bay: int) -> dict[str, Component]:
    state = topics.bay(bay)
    name = f"Bay {bay}"

    def sensor(obj: str, label: str, template: str, **extra: Any) -> tuple[str, Component]:
        return f"bay{bay}_{obj}", {"platform": "sensor", "name": f"{name} {label}",
                                   "state_topic": state, "value_template": template, **extra}

    # A null in the bay's JSON renders as "None", which HA takes as "unknown".
    return dict([
        # ready_unchecked names the art. 4 checks not done; older docks send no list.
        sensor("state", "state", "{{ value_json.state }}", device_class="enum",
               options=[s.value for s in BayState], json_attributes_topic=state,
               json_attributes_template="{{ {'unchecked': value_json.unchecked or []}"
                                        " | tojson }}"),
        (f"bay{bay}_problem", {
            "platform": "binary_sensor", "name": f"{name} problem", "device_class": "problem",
            "state_topic": state,
            "value_template": "{{ 'ON' if value_json.state == 'fault' else 'OFF' }}",
            "json_attributes_topic": state,
            "json_attributes_template": "{{ {'fault': value_json.fault, "
                                        "'fault_scope': value_json.fault_scope} | tojson }}"}),
        sensor("fault", "fault", f"{{{{ value_json.fault or '{NO_FAULT}' }}}}", device_class="enum",
               options=[NO_FAULT, *(f.value for f in FaultReason)]),
        sensor("recorder", "recorder", "{{ value_json.recorder or '' }}"),
        sensor("officer", "officer", "{{ value_json.officer or '' }}"),
        sensor("battery", "battery", "{{ value_json.battery_percent }}", device_class="battery",
               unit_of_measurement="%", state_class="measurement"),
        sensor("storage_free", "recorder storage free", "{{ value_json.storage_free_bytes }}",
               device_class="data_size", unit_of_measurement="B", state_class="measurement"),
        sensor("clock_drift", "clock drift", "{{ value_json.clock_drift_s }}",
               device_class="duration", unit_of_measurement="s", state_class="measurement",
               suggested_display_precision=1),
        sensor("progress", "offload progress",
               "{{ (100 * value_json.progress.bytes_done / value_json.progress.bytes_total) | round(1)"
               " if value_json.progress.bytes_total else None }}",
               unit_of_measurement="%", state_class="measurement"),
        sensor("files_done", "files offloaded", "{{ value_json.progress.files_done }}",
               state_class="measurement", unit_of_measurement="files"),
    ])


def _slug(text: str) -> str:
    """An entity id part: lower-case letters, digits and '_' only."""
    return re.sub(r"[^a-z0-9_]", "_", text.lower())
