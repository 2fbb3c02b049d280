"""Every payload dockd publishes validates against its versioned JSON Schema."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dockd.report.mqtt
from dockd import __version__
from dockd.clock import SystemClock, utc_iso
from dockd.config import parse_config
from dockd.config.health import CHECKS
from dockd.dock.states import BayState, BayStatus, FaultReason, Progress
from dockd.report.mqtt import discovery, payloads
from dockd.report.mqtt.topics import Topics
from dockd.store.evidence import open_store
from dockd.store.outbox import alert_payload
from tests.custody_support import NoteEvent

SCHEMAS = Path(dockd.report.mqtt.__file__).parent / "schemas"


# Once per schema: checking a schema against the metaschema cost more than validating a
# payload, at every hypothesis example.
@functools.cache
def validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / f"{name}.v1.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)  # type: ignore[no-any-return]


def roundtrip(payload: dict[str, object]) -> object:
    """What a consumer parses: the exact bytes put on the wire."""
    return json.loads(payloads.encode(payload))


def test_every_schema_file_is_a_valid_draft_2020_12_schema() -> None:
    names = sorted(p.name for p in SCHEMAS.glob("*.json"))
    assert names == ["alert.v1.json", "bay_state.v1.json", "checkpoint.v1.json",
                     "custody.v1.json", "recorder_health.v1.json", "status.v1.json"]
    for name in names:
        validator(name.removesuffix(".v1.json"))


def test_custody_and_checkpoint_rows_of_the_real_core_validate(tmp_path: Path) -> None:
    config = parse_config({"dock": {"store_dir": str(tmp_path)}, "ingest": {"checkpoint_every": 2}})
    store = open_store(config, SystemClock())
    for i in range(4):
        store.custody.append(NoteEvent(f"SN{i}", {"sha256": "ab" * 32, "n": i}), "dockd")
    rows = store.catalog.query("SELECT kind, payload FROM outbox ORDER BY id")
    store.close()
    custody, checkpoint = validator("custody"), validator("checkpoint")
    for row in rows:
        (custody if row["kind"] == "custody" else checkpoint).validate(json.loads(row["payload"]))
    assert {r["kind"] for r in rows} == {"custody", "checkpoint"}


def test_status_online_and_offline_validate() -> None:
    v = validator("status")
    status = payloads.DockStatus(__version__, "ab" * 32, 10, 20, True, 0)
    v.validate(roundtrip(payloads.status_payload("dock-01", "site-01", True, status,
                                                 "2026-01-02T03:04:05.000006Z")))
    v.validate(roundtrip(payloads.status_payload("dock-01", "site-01", False,
                                                 payloads.DockStatus(__version__, "ab" * 32),
                                                 None)))
    with pytest.raises(jsonschema.ValidationError):
        v.validate({**roundtrip(payloads.status_payload(  # type: ignore[dict-item]
            "dock-01", "site-01", True, status, None)), "state": "sleeping"})


def test_alert_and_health_validate() -> None:
    validator("alert").validate(roundtrip(alert_payload(
        "dock-01", utc_iso(SystemClock().now()), FaultReason.BATTERY_LOW.value, bay=2,
        recorder="SN1", detail="battery 3 %")))
    validator("recorder_health").validate(roundtrip(payloads.health_payload(
        "dock-01", "SN-1.a", payloads.RecorderHealth(80, None, 1 << 30, 1 << 34, -1.5, True,
                                                     "2026-01-02T03:04:05.000006Z", 1))))


@settings(max_examples=200)
@given(bay=st.integers(0, 255), state=st.sampled_from(list(BayState)),
       fault=st.none() | st.sampled_from(list(FaultReason)),
       battery=st.none() | st.integers(0, 100), done=st.integers(0, 10**12),
       total=st.integers(0, 10**12), rate=st.floats(0, 1e10),
       label=st.text(max_size=20), officer=st.none() | st.text(max_size=20),
       unchecked=st.lists(st.sampled_from(CHECKS), unique=True))
def test_any_bay_status_validates(bay: int, state: BayState, fault: FaultReason | None,
                                  battery: int | None, done: int, total: int, rate: float,
                                  label: str, officer: str | None, unchecked: list[str]) -> None:
    status = BayStatus(bay=bay, label=label, state=state, fault=fault, recorder="SN1",
                       officer=officer, battery_percent=battery,
                       progress=Progress(done % 1000, 1000, done, total, rate),
                       updated_at="2026-01-02T03:04:05.000006Z", unchecked=tuple(unchecked))
    validator("bay_state").validate(roundtrip(payloads.bay_payload("dock-01", status)))


def test_bay_schema_knows_exactly_the_codes_words() -> None:
    schema = json.loads((SCHEMAS / "bay_state.v1.json").read_text())["properties"]
    assert schema["state"]["enum"] == [s.value for s in BayState]
    assert schema["fault"]["oneOf"][0]["enum"] == [f.value for f in FaultReason]
    assert schema["unchecked"]["items"]["enum"] == list(CHECKS)


def test_ready_unchecked_names_its_checks_and_nothing_else() -> None:
    v = validator("bay_state")
    status = BayStatus(bay=1, label="Bay 1", state=BayState.READY_UNCHECKED,
                       unchecked=("battery", "clock"))
    payload = roundtrip(payloads.bay_payload("dock-01", status))
    assert isinstance(payload, dict) and payload["unchecked"] == ["battery", "clock"]
    v.validate(payload)
    for bad in (["battery", "battery"], ["spare_battery"], "battery"):
        with pytest.raises(jsonschema.ValidationError):
            v.validate({**payload, "unchecked": bad})


def test_home_assistant_discovery_points_at_published_topics() -> None:
    topics = Topics("dockd", "site-01", "dock-01")
    messages = [(t, b) for t, b in discovery.device_messages("homeassistant", topics, [3]) if b]
    assert len(messages) == 1
    topic, body = messages[0]
    assert topic.startswith("homeassistant/device/") and topic.endswith("/config")
    components = json.loads(body)["components"]
    for obj, config in components.items():
        assert config["state_topic"] in (topics.status, topics.bay(3), topics.alert), obj
        if obj != "online":
            assert config["availability"][0]["topic"] == topics.status
    unique = [c["unique_id"] for c in components.values()]
    assert len(unique) == len(set(unique))
