"""The [mqtt] config section, broker URLs, credentials file and topic tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockd.config import parse_config
from dockd.config.mqtt import Broker, MqttSection, parse_broker_url
from dockd.errors import ConfigError
from dockd.report.mqtt.credentials import check_tls_files, read_credentials
from dockd.report.mqtt.topics import Topics, parse_topic


def mqtt(**values: object) -> MqttSection:
    section = parse_config({"mqtt": values}).mqtt
    assert isinstance(section, MqttSection)
    return section


def test_defaults_are_off_and_mqtt5() -> None:
    section = mqtt()
    assert (section.enabled, section.protocol, section.prefix) == (False, "5", "dockd")
    assert section.broker == Broker("localhost", 1883, False)


@pytest.mark.parametrize("url, broker", [
    ("mqtt://broker", Broker("broker", 1883, False)),
    ("mqtts://broker", Broker("broker", 8883, True)),
    ("mqtts://10.0.0.1:9999", Broker("10.0.0.1", 9999, True)),
])
def test_broker_urls(url: str, broker: Broker) -> None:
    assert parse_broker_url(url) == broker


@pytest.mark.parametrize("url, words", [
    ("http://broker", "expected mqtt://"),
    ("mqtt://user:pw@broker", "credentials_file"),
    ("mqtt://broker:99999", "invalid port"),
    ("mqtt://", "names no host"),
    ("mqtt://broker/topic", "path"),
])
def test_bad_broker_urls_name_the_key(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        mqtt(broker=url)
    assert str(info.value).startswith("mqtt.broker")


@pytest.mark.parametrize("values, words", [
    ({"prefix": "a/b"}, "mqtt.prefix"),
    ({"prefix": "#"}, "mqtt.prefix"),
    ({"protocol": "3.1"}, "mqtt.protocol"),
    ({"inflight_window": 0}, "mqtt.inflight_window"),
    ({"cert_file": "/x"}, "cert_file and key_file"),
    ({"ca_file": "/x"}, "not mqtts"),
    ({"reconnect_min_s": 10, "reconnect_max_s": 1}, "reconnect_max_s"),
    ({"homeassistant": {"enabled": "yes"}}, "mqtt.homeassistant.enabled"),
    ({"password": "secret"}, "unknown key"),
])
def test_bad_values_are_config_errors(values: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        mqtt(**values)


def test_credentials_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "creds"
    path.write_text("dock-01\ns3cret with spaces \n")
    path.chmod(0o600)
    creds = read_credentials(path)
    assert (creds.username, creds.password) == ("dock-01", "s3cret with spaces ")
    assert "s3cret" not in repr(creds)
    assert "readable by group" not in caplog.text
    path.chmod(0o644)
    read_credentials(path)
    assert "readable by group or others" in caplog.text


@pytest.mark.parametrize("content, words", [("only-user\n", "line 2"), ("\npw\n", "line 1")])
def test_credentials_file_shape(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "creds"
    path.write_text(content)
    with pytest.raises(ConfigError, match=words):
        read_credentials(path)


def test_credentials_file_missing_or_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_credentials(tmp_path / "absent")
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\n\xff")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_credentials(binary)
    if os.geteuid() != 0:  # root reads anything; the mode check is for the service user
        locked = tmp_path / "locked"
        locked.write_text("a\nb\n")
        locked.chmod(0)
        with pytest.raises(ConfigError, match="not readable"):
            read_credentials(locked)


def test_tls_files_are_checked_at_start(tmp_path: Path) -> None:
    section = mqtt(broker="mqtts://b", ca_file=str(tmp_path / "ca.pem"))
    with pytest.raises(ConfigError, match=r"mqtt.ca_file: .*ca.pem does not exist"):
        check_tls_files(section)


def test_topic_tree() -> None:
    t = Topics("dockd", "site-01", "dock-01")
    assert t.status == "dockd/site-01/dock-01/status"
    assert t.bay(2) == "dockd/site-01/dock-01/bay/2/state"
    assert t.health("SN.1") == "dockd/site-01/dock-01/recorder/SN.1/health"
    assert t.outbox("custody") == "dockd/site-01/dock-01/custody"
    for bad in ("#", "+", "a/#", "../x", "", "/custody"):
        with pytest.raises(ValueError):
            t.outbox(bad)
    with pytest.raises(ValueError):
        t.health("a/b")
    with pytest.raises(ValueError):
        t.bay(-1)
    assert parse_topic("dockd", t.bay(2)).key == "2"  # type: ignore[union-attr]
    assert parse_topic("dockd", t.health("SN.1")).kind == "health"  # type: ignore[union-attr]
    assert parse_topic("dockd", "other/site-01/dock-01/status") is None


@given(st.text(max_size=80))
def test_parse_topic_never_crashes(topic: str) -> None:
    parsed = parse_topic("dockd", topic)
    if parsed is not None:
        assert topic.startswith(f"dockd/{parsed.site}/{parsed.dock}/")
