"""The Prometheus text endpoint (``[metrics]``) over real HTTP on loopback, parsed with the
Prometheus client library's own parser; the last verify comes from a real ``dockd verify``."""

from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dockd.config import parse_config
from dockd.dock.reporting import BrokerState, DockInfo
from dockd.dock.states import BayState, BayStatus, Progress
from dockd.errors import ConfigError
from dockd.report.metrics import CONTENT_TYPE, MetricsReporter, store_last_verify
from tests.conftest import run_dockd


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[tuple[MetricsReporter, Path]]:
    store = tmp_path / "store"
    (tmp_path / "card").mkdir()
    (tmp_path / "card" / "A.MP4").write_bytes(b"x" * 1000)
    assert run_dockd(["ingest", tmp_path / "card", "--recorder", "SN1", "--store", store]).returncode == 0
    reporter = MetricsReporter("127.0.0.1", 0, store_last_verify(store), version="9.9.9")
    reporter.start()
    yield reporter, store
    reporter.stop()


def scrape(url: str) -> tuple[str, dict[str, dict[tuple[tuple[str, str], ...], float]]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        kind = response.headers["Content-Type"]
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return kind, samples


def info(pending: int, connected: bool | None) -> DockInfo:
    broker = None if connected is None else BrokerState("mqtt://b:1883", connected=connected)
    return DockInfo("dock-01", "site-01", "9.9.9", "2026-12-01T01:00:00Z", 5 << 30, 10 << 30,
                    True, pending, "ab" * 32, broker)


def test_bays_offload_backlog_and_last_verify_over_http(
        endpoint: tuple[MetricsReporter, Path]) -> None:
    reporter, store = endpoint
    before = dt.datetime.now(dt.UTC).timestamp()
    assert run_dockd(["verify", "--store", store]).returncode == 0
    for done in (100, 300, 1000):  # one offload, reported three times as it goes
        reporter.bay_changed(BayStatus(1, "Bay 1", BayState.OFFLOADING, recorder="SN1",
                                       progress=Progress(files_done=done // 500, files_total=2,
                                                         bytes_done=done, bytes_total=1000)))
    reporter.bay_changed(BayStatus(1, "Bay 1", BayState.READY, recorder="SN1",
                                   progress=Progress(files_done=2, files_total=2, bytes_done=1000,
                                                     bytes_total=1000)))
    reporter.bay_changed(BayStatus(2, 'Bay "2"', BayState.FAULT, recorder="SN2"))
    reporter.bay_changed(BayStatus(3, "Bay 3"))
    reporter.dock_changed(info(pending=42, connected=False))

    kind, m = scrape(reporter.url)
    assert kind == CONTENT_TYPE
    assert m["dockd_build_info"] == {(("version", "9.9.9"),): 1.0}
    assert m["dockd_bays"][(("state", "ready"),)] == 1
    assert m["dockd_bays"][(("state", "fault"),)] == 1
    assert m["dockd_bays"][(("state", "empty"),)] == 1
    assert m["dockd_bays"][(("state", "offloading"),)] == 0
    assert set(m["dockd_bays"]) == {(("state", s.value),) for s in BayState}
    assert m["dockd_bay_state"][(("bay", "2"), ("label", 'Bay "2"'), ("state", "fault"))] == 1
    assert m["dockd_offload_bytes_total"] == {(): 1000.0}  # counted once, not per report
    assert m["dockd_offload_files_total"] == {(): 2.0}
    assert m["dockd_outbox_pending"] == {(): 42.0}
    assert m["dockd_mqtt_connected"] == {(): 0.0}
    assert m["dockd_store_free_bytes"] == {(): float(5 << 30)}
    assert m["dockd_last_verify_intact"] == {(): 1.0}
    assert before - 5 <= m["dockd_last_verify_timestamp_seconds"][()] <= before + 120

    # a second offload on the same bay adds to the counter
    reporter.bay_changed(BayStatus(1, "Bay 1", BayState.OFFLOADING, recorder="SN9",
                                   progress=Progress(bytes_done=250, bytes_total=500)))
    # and the same recorder docked again starts a new offload from zero
    reporter.bay_changed(BayStatus(1, "Bay 1", BayState.OFFLOADING, recorder="SN9",
                                   progress=Progress(bytes_done=50, bytes_total=500)))
    _, m = scrape(reporter.url)
    assert m["dockd_offload_bytes_total"] == {(): 1300.0}
    assert m["dockd_bays"][(("state", "ready"),)] == 0


def test_only_metrics_is_served_and_a_store_gone_is_a_500_not_a_crash(
        endpoint: tuple[MetricsReporter, Path], tmp_path: Path) -> None:
    reporter, store = endpoint
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(reporter.url.replace("/metrics", "/"), timeout=10)
    assert missing.value.code == 404
    _, m = scrape(reporter.url)
    assert "dockd_last_verify_timestamp_seconds" not in m  # verify never ran on this store
    store.rename(tmp_path / "moved")
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(reporter.url, timeout=10)
    assert gone.value.code == 500
    (tmp_path / "moved").rename(store)
    assert scrape(reporter.url)[1]["dockd_build_info"]  # and it serves again


def test_listens_on_loopback_only_and_a_taken_port_is_a_config_error(
        endpoint: tuple[MetricsReporter, Path]) -> None:
    reporter, store = endpoint
    assert reporter.url.startswith("http://127.0.0.1:")
    for host in ("0.0.0.0", "192.0.2.7", "dock.example"):
        with pytest.raises(ConfigError, match=r"metrics\.host: .* not a loopback address"):
            parse_config({"metrics": {"enabled": True, "host": host}})
    assert parse_config({"metrics": {"host": "::1"}}).metrics.host == "::1"
    second = MetricsReporter("127.0.0.1", reporter.port, store_last_verify(store))
    with pytest.raises(ConfigError, match=r"metrics\.port: cannot listen on 127\.0\.0\.1"):
        second.start()
