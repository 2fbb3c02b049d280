"""``dockd watch`` as a real process against a real Mosquitto: verifying the custody stream
through broker and publisher crashes, flagging injected forgeries, clear broker errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.cli import build_parser
from dockd.clock import SystemClock
from dockd.commands.watch import _Watch
from dockd.config.mqtt import parse_broker_url
from dockd.report.mqtt.connection import ConnectionSettings
from dockd.report.mqtt.reporter import MqttReporter
from dockd.report.mqtt.stream_verify import StreamVerifier
from dockd.store.evidence import EvidenceStore, open_store
from tests.conftest import REPO_ROOT, run_dockd
from tests.custody_support import NoteEvent
from tests.mqtt_broker import Collector, MosquittoBroker, TlsMaterial, broker, tls_material  # noqa: F401
from tests.test_mqtt_reporter import BASE, append, make_config, pending, wait_until


class WatchProcess:
    """``dockd watch`` running; its stdout lines collected as they come."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DOCKD_CONFIG"}
        env["PYTHONPATH"] = str(REPO_ROOT)
        self.proc = subprocess.Popen([sys.executable, "-m", "dockd.cli", "watch", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, cwd=REPO_ROOT)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, text: str, timeout: float = 15) -> bool:
        return wait_until(lambda: any(text in line for line in self.lines), timeout)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(5)
        assert self.proc.stderr is not None
        return rc, "\n".join(self.lines), self.proc.stderr.read()


@pytest.fixture
def reporter_store(tmp_path: Path, broker: MosquittoBroker  # noqa: F811
                   ) -> Iterator[tuple[EvidenceStore, MqttReporter]]:
    config = make_config(tmp_path, broker.url)
    store = open_store(config, SystemClock())
    reporter = MqttReporter(config, config.dock.store_dir, SystemClock(),
                            store.custody.signer.public_key_hex)
    reporter.start()
    assert wait_until(lambda: reporter.link_state().connected)
    yield store, reporter
    reporter.stop()
    store.close()


def test_a_clean_stream_verifies(broker: MosquittoBroker,  # noqa: F811
                                 reporter_store: tuple[EvidenceStore, MqttReporter]) -> None:
    store, reporter = reporter_store
    watch = WatchProcess("--broker", broker.url, "--verify", "--from-seq", "1",
                         "--until-seq", "12", "--idle-timeout", "20")
    assert watch.wait_line("status     dock-01 online")
    append(store, 12, reporter)  # checkpoint at 10, signed; its key from the status topic
    rc, out, err = watch.finish()
    assert rc == 0, err
    assert "verified dock-01: seq 1..12 (12 records, 1 checkpoints verified); 0 problem(s)" in out
    assert "custody    dock-01 seq=7 test.event" in out


def test_injected_forged_and_edited_records_are_flagged(
        broker: MosquittoBroker,  # noqa: F811
        reporter_store: tuple[EvidenceStore, MqttReporter]) -> None:
    store, reporter = reporter_store
    watch = WatchProcess("--broker", broker.url, "--verify", "--idle-timeout", "1.5", "--json")
    assert watch.wait_line('"event": "status"')
    append(store, 4, reporter)
    assert wait_until(lambda: pending(store) == 0)
    genuine = json.loads(store.catalog.query("SELECT payload FROM outbox WHERE ref_seq=3 AND "
                                             "kind='custody'")[0][0])
    edited = dict(genuine, payload={"i": 99})
    forged_next = dict(genuine, seq=5, event_id="00000000-0000-4000-8000-000000000000")
    for message in (edited, forged_next):
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                        "-t", f"{BASE}/custody", "-m", json.dumps(message)], check=True)
    rc, out, _ = watch.finish()
    assert rc == 1
    lines = [json.loads(line) for line in out.splitlines()]
    problems = [line["problem"] for line in lines if "problem" in line]
    assert [(p["kind"], p["seq"]) for p in problems] == [("forgery", 3), ("forgery", 5)]
    assert "hash does not match" in problems[0]["detail"]
    assert lines[-1]["summary"]["ok"] is False


def test_broker_sigkilled_mid_session_loses_nothing(
        tmp_path: Path, broker: MosquittoBroker,  # noqa: F811
        reporter_store: tuple[EvidenceStore, MqttReporter]) -> None:
    store, reporter = reporter_store
    n = 200
    watch = WatchProcess("--broker", broker.url, "--client-id", "central-archive", "--verify",
                         "--from-seq", "1", "--until-seq", str(n), "--idle-timeout", "30")
    assert watch.wait_line("status     dock-01 online")
    for i in range(n):
        store.custody.append(NoteEvent(f"s{i}", {"i": i}), "tester")
        reporter.wake()
        time.sleep(0.002)
        if i == n // 3:
            broker.kill()
        if i == n // 2:
            broker.start()
    rc, out, err = watch.finish(90)
    assert rc == 0, out[-2000:] + err[-2000:]
    assert f"verified dock-01: seq 1..{n} ({n} records" in out
    assert wait_until(lambda: pending(store) == 0)


def test_publisher_sigkilled_with_rows_in_its_outbox_loses_nothing(
        tmp_path: Path, broker: MosquittoBroker) -> None:  # noqa: F811
    n = 3000
    cfg = tmp_path / "dockd.toml"
    cfg.write_text(f'[dock]\nstore_dir = "{tmp_path / "store"}"\n'
                   f'[mqtt]\nenabled = true\nbroker = "{broker.url}"\nreconnect_min_s = 0.1\n'
                   f'inflight_window = 20\n')
    config = make_config(tmp_path, broker.url)
    store = open_store(config, SystemClock())
    append(store, n)
    last_will = Collector(broker, f"{BASE}/status")
    watch = WatchProcess("--broker", broker.url, "--client-id", "central", "--verify",
                         "--from-seq", "1", "--until-seq", str(n), "--idle-timeout", "30")
    time.sleep(1.0)  # the watch must be subscribed before custody flows (not retained)

    def publisher() -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        return subprocess.Popen([sys.executable, "-m", "dockd.cli", "publish", "--config", str(cfg)],
                                env=env, stderr=subprocess.DEVNULL)

    first = publisher()
    try:
        assert wait_until(lambda: pending(store) < n - 300, 30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        left = pending(store)
        assert 0 < left < n
        # The broker saw the socket die: the Last Will says offline.
        assert last_will.wait_for(lambda m: json.loads(m[-1][1])["state"] == "offline")
        second = publisher()
        try:
            rc, out, err = watch.finish(120)
        finally:
            second.terminate()
            second.wait(10)
        assert rc == 0, out[-2000:] + err[-2000:]
        assert f"verified dock-01: seq 1..{n} ({n} records" in out
        assert pending(store) == 0
    finally:
        last_will.close()
        store.close()


# -- errors a watcher can act on -------------------------------------------------------

def test_unreachable_broker_exits_69_with_the_reason(tmp_path: Path) -> None:
    result = run_dockd(["watch", "--broker", "mqtt://127.0.0.1:1", "--idle-timeout", "1"])
    assert result.returncode == 69
    assert "refused the connection" in result.stderr


def test_wrong_ca_exits_69(tmp_path: Path, tls_material: TlsMaterial) -> None:  # noqa: F811
    b = MosquittoBroker(tmp_path / "broker", tls=tls_material)
    b.start()
    try:
        result = run_dockd(["watch", "--broker", b.url, "--ca", str(tls_material.wrong_ca),
                            "--idle-timeout", "1"])
        assert result.returncode == 69
        assert "TLS: wrong CA" in result.stderr
        good = run_dockd(["watch", "--broker", b.url, "--ca", str(tls_material.ca),
                          "--idle-timeout", "0.5"])
        assert good.returncode == 0, good.stderr
    finally:
        b.stop()


def test_bad_password_exits_69_and_an_unreadable_tree_is_a_gap(tmp_path: Path) -> None:
    b = MosquittoBroker(tmp_path / "broker", passwords={"dock-01": "pw", "central": "pw"},
                        acl="user central\ntopic read dockd/#\n")
    b.start()
    try:
        bad = tmp_path / "bad"
        bad.write_text("central\nnope\n")
        result = run_dockd(["watch", "--broker", b.url, "--credentials-file", str(bad),
                            "--idle-timeout", "1"])
        assert result.returncode == 69 and "not authorised" in result.stderr
        # Mosquitto 2.0 grants any SUBSCRIBE and filters by ACL on delivery, so a watcher
        # without read access hears nothing: --verify must call that a gap, not "all fine".
        dock = tmp_path / "dock"
        dock.write_text("dock-01\npw\n")
        result = run_dockd(["watch", "--broker", b.url, "--credentials-file", str(dock),
                            "--verify", "--dock", "dock-01", "--until-seq", "1",
                            "--idle-timeout", "1"])
        assert result.returncode == 1, result.stderr
        assert "PROBLEM gap dock-01: no custody record arrived" in result.stdout
    finally:
        b.stop()


@pytest.mark.parametrize("args, words", [
    (["--idle-timeout", "1"], "give --broker"),
    (["--broker", "mqtt://h", "--public-key", "xyz"], "--public-key"),
    (["--broker", "mqtt://h", "--dock", "a/b"], "--dock"),
    (["--broker", "mqtt://h", "--until-seq", "0"], "--until-seq"),
    (["--broker", "mqtt://h", "--cert", "/x"], "--cert and --key"),
    (["--broker", "mqtts://h", "--ca", "/nonexistent.pem"], "--ca: /nonexistent.pem does not exist"),
    (["--broker", "http://h"], "--broker"),
    # Certificates with a plaintext URL are refused, as the daemon's config refuses them.
    (["--broker", "mqtt://h", "--ca", __file__],
     "--ca is set but the broker URL mqtt://h:1883 is plaintext; use mqtts://"),
    (["--broker", "mqtt://h", "--cert", __file__, "--key", __file__],
     "--cert is set but the broker URL mqtt://h:1883 is plaintext; use mqtts://"),
])
def test_usage_errors(args: list[str], words: str) -> None:
    result = run_dockd(["watch", *args])
    assert result.returncode in (2, 78), result.stderr
    assert words in result.stderr


# -- hostile payloads never crash the watcher ------------------------------------------

def _watch_in_process(json_mode: bool) -> _Watch:
    args = build_parser("watch").parse_args(["watch", "--broker", "mqtt://127.0.0.1:1", "--verify",
                                      *(["--json"] if json_mode else [])])
    settings_ = ConnectionSettings(broker=parse_broker_url(args.broker), client_id="t")
    return _Watch(args, settings_, "dockd", StreamVerifier("dockd"))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(
        st.sampled_from(["seq", "dock", "hash", "prev_hash", "payload", "v", "state", "bay",
                         "reason", "public_key", "x"]), c, max_size=6),
    max_leaves=15)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=200) | JSONISH.map(lambda v: json.dumps(v).encode()),
       suffix=st.sampled_from(["custody", "checkpoint", "status", "alert", "bay/1/state",
                               "recorder/SN1/health", "other"]),
       json_mode=st.booleans())
def test_random_payloads_never_crash_watch(payload: bytes, suffix: str, json_mode: bool,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    watch = _watch_in_process(json_mode)
    watch._on_message(f"{BASE}/{suffix}", payload)
    out = capsys.readouterr().out
    assert out.strip()
    lines = out.split("\n")[:-1]
    assert len(lines) == 1 + sum(1 for f in watch.verifier.findings)  # no smuggled lines
    if json_mode:
        for line in lines:
            json.loads(line)


def test_a_cleared_bay_state_reads_as_cleared_not_as_garbage() -> None:
    from dockd.commands.watch import _line

    verifier = StreamVerifier("dockd")
    cleared = verifier.feed("dockd/site-01/dock-01/bay/2/state", b"")
    assert cleared.cleared and cleared.kind == "bay"
    assert _line(cleared) == "bay        dock-01 dockd/site-01/dock-01/bay/2/state cleared (the dock stopped)"
    garbage = verifier.feed("dockd/site-01/dock-01/bay/2/state", b"{not json")
    assert not garbage.cleared and "unreadable payload" in _line(garbage)
    assert verifier.findings == []
