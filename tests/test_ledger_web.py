"""The supervision page end to end: two simulated docks (the real daemon, simulated
recorders) publish to a real Mosquitto, ``dockd ledger run`` keeps it in a real PostgreSQL,
``dockd ledger serve`` shows it over TLS with HTTP basic auth, and a real headless Chromium
(Debian's) reads every main page in English and Chinese. One bureau for the module, one
browser run for all pages.

Set ``DOCKD_SCREENSHOTS=docs`` to refresh the screenshots in docs/.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from markupsafe import escape

from dockd.clock import SystemClock
from dockd.config import load_config
from dockd.ledger.web.auth import hash_password
from dockd.sim.runner import DaemonRunner
from dockd.store.canonical import canonical_json
from dockd.store.evidence import open_store
from tests.conftest import REPO_ROOT, run_dockd
from tests.ledger_support import make_stream, open_db, rehashed
from tests.mqtt_broker import Collector, MosquittoBroker, TlsMaterial, free_port, tls_material  # noqa: F401
from tests.postgres_server import PostgresServer, postgres  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
USER, PASSWORD = "fzjcg-li", "supervise-2026"
SITE = "fz-site"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DOCKD_CONFIG"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def bureau(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer,  # noqa: F811
           tls_material: TlsMaterial) -> Iterator[dict[str, Any]]:  # noqa: F811
    root = tmp_path_factory.mktemp("bureau")
    broker = MosquittoBroker(root / "broker")
    broker.start()
    dsn = postgres.new_database()
    users = root / "users.toml"
    users.write_text(f'[[user]]\nname = "{USER}"\nrole = "audit"\n'
                     f'password = "{hash_password(PASSWORD)}"\n')
    users.chmod(0o600)
    port = free_port()
    config = root / "ledger.toml"
    config.write_text("\n".join([
        "[ledger]", f'database = "{dsn}"', 'share_group = "ledger"', "gap_grace_s = 0",
        "verify_interval_s = 0.3", "batch_wait_s = 0.02", "undocked_alert_hours = 1",
        "[ledger.mqtt]", f'broker = "{broker.url}"', 'client_id = "ledger-web-test"',
        "[ledger.web]", f'listen = "127.0.0.1:{port}"', 'auth = "basic"',
        f'users_file = "{users}"', f'tls_cert_file = "{tls_material.server_cert}"',
        f'tls_key_file = "{tls_material.server_key}"']) + "\n")
    west = DaemonRunner(root / "west", bays=2, broker_url=broker.url, dock_id="dock-west",
                        site=SITE)
    east = DaemonRunner(root / "east", bays=3, broker_url=broker.url, dock_id="dock-east",
                        site=SITE)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # dock-west works before the ledger exists: its first records reach nobody, and
        # the retained checkpoint later tells the ledger they exist (an open gap).
        west.start()
        west.dock.plug("1-1.1", "msc", files=[("DCIM/100MEDIA/W0001.MP4", 300_000)])
        west.wait_bay(1, "ready_unchecked")  # a plain disk: no battery or clock to read
        # dock-east has not run yet: open its store once, which makes its signing key.
        open_store(load_config(east.paths.config), SystemClock()).close()
        for runner in (west, east):
            key = runner.dockd("key", "show", "--json")
            assert key.returncode == 0, key.stderr
            done = run_dockd(["ledger", "dock", "add", json.loads(key.stdout)["dock"],
                              "--public-key", json.loads(key.stdout)["public_key"], "--site",
                              SITE, "--config", config])
            assert done.returncode == 0, done.stderr
        log = (root / "ledger-run.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "dockd.cli", "ledger", "run",
                                       "--config", str(config)], stdout=log,
                                      stderr=subprocess.STDOUT, env=_env()))
        _wait(lambda: "subscribed" in (root / "ledger-run.log").read_text(), 30, "ledger run")
        east.start()
        east.dock.plug("1-1.1", "gat947", files=[("DCIM/100MEDIA/E0001.MP4", 400_000),
                                                  ("DCIM/100MEDIA/E0002.MP4", 500_000)])
        east.dock.plug("1-1.2", "amba", files=[("DCIM/100MEDIA/E0101.MP4", 250_000)])
        east.dock.plug("1-1.3", "msc", usb_serial="STICK", vendor_product=("0781", "5567"))
        east.wait_bay(1, "ready")
        east.wait_bay(2, "ready_unchecked")  # Ambarella: no battery reading
        east.wait_bay(3, "fault")
        west.dock.plug("1-1.2", "amba", files=[("DCIM/100MEDIA/W0101.MP4", 200_000)])
        west.wait_bay(2, "ready_unchecked")
        east_last = east.custody()[-1]["seq"]
        _wait(lambda: _kept(dsn, "dock-east") >= east_last, 60, "dock-east in the ledger")
        _impostor(root, broker, dsn)
        serve_log = (root / "serve.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "dockd.cli", "ledger", "serve",
                                       "--config", str(config)], stdout=serve_log,
                                      stderr=subprocess.STDOUT, env=_env()))
        url = f"https://localhost:{port}"
        _wait(lambda: _up(url, tls_material.ca), 30, "ledger serve")
        yield {"url": url, "dsn": dsn, "root": root, "ca": tls_material.ca, "config": config,
               "cert": tls_material.server_cert, "east_last": east_last, "port": port,
               "east": east}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for runner in (west, east):
            if runner.proc is not None:
                runner.stop()
            runner.close()
        broker.stop()


def _kept(dsn: str, dock: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM custody_chain WHERE dock = %s", (dock,))
        return int(row.fetchone()[0])  # type: ignore[index]


def _tls(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _up(url: str, ca: Path) -> bool:
    try:
        return httpx.get(f"{url}/healthz", verify=_tls(ca), timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _impostor(root: Path, broker: MosquittoBroker, dsn: str) -> None:
    """A forged record for a seq dock-east already has, and a checkpoint in dock-east's
    name signed with another key: what the alerts page must show."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT c.time, c.type, c.actor, c.subject, c.payload,"
                           " k.event_id::text, k.prev_hash, k.hash FROM custody c"
                           " JOIN custody_chain k USING (dock, seq)"
                           " WHERE dock = 'dock-east' AND seq = 3").fetchone()
    assert row is not None
    genuine = {"v": 1, "dock": "dock-east", "seq": 3, "time": row[0], "type": row[1],
               "actor": row[2], "subject": row[3], "payload": json.loads(row[4]),
               "event_id": row[5], "prev_hash": bytes(row[6]).hex(), "hash": bytes(row[7]).hex()}
    forged = rehashed(genuine, actor="someone-else")
    other = make_stream(root / "impostor", "dock-east", 5, checkpoint_every=5, site=SITE)
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    base = f"dockd/{SITE}/dock-east"
    client.publish(f"{base}/custody", forged, qos=1).wait_for_publish(10)
    client.publish(f"{base}/checkpoint", other.checkpoints[0], qos=1).wait_for_publish(10)
    client.publish(f"{base}/custody", b'{"v": 1, "seq": "three"}', qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()

    def seen() -> bool:
        with psycopg.connect(dsn) as conn:
            kinds = {r[0] for r in conn.execute("SELECT kind FROM alerts WHERE closed_at IS NULL")}
        return {"fork", "key_mismatch", "rejected", "gap"} <= kinds

    _wait(seen, 30, "the impostor's alerts")


# -- the browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(bureau: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for tool in (CHROMIUM, CHROMEDRIVER):
        if not os.access(tool, os.X_OK):
            pytest.fail(f"{tool} is missing: ./dev test apt-installs chromium and "
                        "chromium-driver")
    cert = x509.load_pem_x509_certificate(Path(bureau["cert"]).read_bytes())
    spki = base64.b64encode(hashlib.sha256(cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest())
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1400,1300", "--hide-scrollbars",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                # Trust exactly the test broker certificate's key, nothing else.
                f"--ignore-certificate-errors-spki-list={spki.decode()}"):
        options.add_argument(arg)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download anything
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                           {"headers": {"Authorization": f"Basic {token}"}})
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: Any, bureau: dict[str, Any], name: str) -> Path:
    path = bureau["root"] / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(900, int(height) + 40), 4000))
    driver.save_screenshot(str(path))
    target = os.environ.get("DOCKD_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / f"{name}.png")
    return path


def _resources_are_local(driver: Any, url: str) -> None:
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert names, "the page loaded no stylesheet"
    assert all(n.startswith(url) for n in names), names


def test_the_main_pages_in_a_real_browser(browser: Any, bureau: dict[str, Any]) -> None:
    from selenium.webdriver.common.by import By

    url = bureau["url"]
    browser.get(f"{url}/?lang=en")
    assert browser.title == "Overview · Custody ledger"
    docks = browser.find_element(By.ID, "docks").text
    assert "dock-east" in docks and "dock-west" in docks
    bays = browser.find_element(By.ID, "bays").text
    assert "ready" in bays and "fault" in bays
    assert f"signed in as {USER}" in browser.find_element(By.TAG_NAME, "header").text
    _resources_are_local(browser, url)
    _shot(browser, bureau, "ledger-overview.en")

    browser.get(f"{url}/?lang=zh_CN")
    assert browser.title == "总览 · 监督台账"
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "采集站" in body and "就绪" in body and "故障" in body
    _shot(browser, bureau, "ledger-overview.zh_CN")

    browser.get(f"{url}/alerts?lang=zh_CN")
    alerts = browser.find_element(By.ID, "open-alerts").text
    assert "分叉" in alerts and "密钥不符" in alerts and "缺号" in alerts
    assert "dock-west" in alerts  # the records it made before the ledger existed
    # What each alert says is in Chinese too; the data in it (seq, event id, key, fields,
    # topic) stays as it is.
    assert "两条不同的记录都声称是序号 3（事件号同为" in alerts
    assert "签名检查点所带密钥为" in alerts and "不是该采集站的登记密钥" in alerts
    assert "格式不符：监管链记录字段有误（缺少：actor, dock" in alerts
    assert "（主题 dockd/fz-site/dock-east/custody）" in alerts
    assert "（未收到，也未能从归档补齐）" in alerts
    rejected = browser.find_element(By.ID, "rejected").text
    assert "格式不符" in rejected and "监管链记录字段有误" in rejected
    assert "two different" not in alerts and "schema:" not in alerts + rejected
    _shot(browser, bureau, "ledger-alerts.zh_CN")
    browser.get(f"{url}/alerts?lang=en")
    alerts = browser.find_element(By.ID, "open-alerts").text
    assert "two different records claim seq 3 (same event id" in alerts
    assert "not the dock's enrolled key" in alerts
    assert "schema: custody record fields wrong (missing: actor, dock" in alerts
    _shot(browser, bureau, "ledger-alerts.en")

    browser.get(f"{url}/docks/dock-east?lang=en")
    checkpoint = browser.find_element(By.ID, "checkpoint").text
    assert "verified against the enrolled key" in checkpoint
    _shot(browser, bureau, "ledger-dock.en")

    browser.get(f"{url}/reports/weekly?lang=zh_CN&week=" + _this_week())
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect")
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "全局周报" in text and "dock-east" in text
    _shot(browser, bureau, "ledger-report-weekly.zh_CN")

    with psycopg.connect(bureau["dsn"]) as conn:
        serial = conn.execute("SELECT recorder FROM bay_states WHERE dock = 'dock-east'"
                              " AND bay = 1").fetchone()[0]  # type: ignore[index]
    browser.get(f"{url}/recorder?serial={serial}&lang=en")
    history = browser.find_element(By.ID, "history").text
    assert "dock-east" in history and "recorder docked" in history
    assert "offload completed" in history
    _shot(browser, bureau, "ledger-recorder.en")


def _this_week() -> str:
    import datetime as dt

    year, week, _ = dt.datetime.now(dt.UTC).isocalendar()
    return f"{year:04d}-W{week:02d}"


# -- HTTP rules (the same server, without a browser) ---------------------------------


def _get(bureau: dict[str, Any], path: str, **kwargs: Any) -> httpx.Response:
    auth = kwargs.pop("auth", (USER, PASSWORD))
    return httpx.get(f"{bureau['url']}{path}", verify=_tls(bureau["ca"]), auth=auth, timeout=10,
                     **kwargs)


def test_no_login_no_page(bureau: dict[str, Any]) -> None:
    assert _get(bureau, "/", auth=None).status_code == 401
    assert _get(bureau, "/", auth=(USER, "wrong")).status_code == 401
    assert _get(bureau, "/", auth=("nobody", PASSWORD)).status_code == 401
    assert "Basic" in _get(bureau, "/", auth=None).headers["www-authenticate"]


def test_there_is_no_write_endpoint(bureau: dict[str, Any]) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/", "/alerts", "/docks/dock-east", "/api/docks/dock-east/head"):
            r = httpx.request(method, f"{bureau['url']}{path}", verify=_tls(bureau["ca"]),
                              auth=(USER, PASSWORD), timeout=10)
            assert r.status_code == 405, (method, path)


@pytest.mark.parametrize("path", [
    "/?lang=fr", "/?evil=1", "/?lang=en&lang=zh_CN", "/alerts?dock=../../etc",
    "/docks/dock%20east", "/recorder?serial=", "/recorder?serial=%00", "/reports/weekly?week=2026-W60",
    "/reports/weekly?week=52", "/reports/weekly?week=" + "9" * 200,
    "/api/docks/dock-east/hashes?from=0&to=5", "/api/docks/dock-east/hashes?from=1&to=20000",
    "/api/docks/dock-east/hashes?from=x&to=2", "/api/docks/dock-east/hashes?from=1"])
def test_every_query_parameter_is_validated(bureau: dict[str, Any], path: str) -> None:
    r = _get(bureau, path)
    assert r.status_code == 400, (path, r.status_code, r.text[:200])


def test_security_headers_and_unknown_things(bureau: dict[str, Any]) -> None:
    r = _get(bureau, "/")
    assert r.status_code == 200
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    assert _get(bureau, "/docks/dock-nowhere").status_code == 404
    assert _get(bureau, "/reports/monthly").status_code == 404


def test_the_api_a_dock_checks_itself_against(bureau: dict[str, Any]) -> None:
    head = _get(bureau, "/api/docks/dock-east/head").json()
    assert head["max_seq"] >= bureau["east_last"] and head["checkpoint_seq"] >= 1
    assert len(head["checkpoint_signature"]) > 40
    hashes = _get(bureau, "/api/docks/dock-east/hashes?from=1&to=3").json()["records"]
    assert [r["seq"] for r in hashes] == [1, 2, 3] and len(hashes[0]["hash"]) == 64


def test_the_page_cannot_write_even_through_its_own_connections(bureau: dict[str, Any]) -> None:
    from dockd.ledger.db import connect

    conn = connect(bureau["dsn"], read_only=True)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("INSERT INTO ledger_meta VALUES ('x', 'y')")
    conn.close()


def test_proxy_mode_trusts_the_header_only_from_the_proxy(bureau: dict[str, Any],
                                                          tmp_path: Path) -> None:
    port = free_port()
    text = bureau["config"].read_text().split("[ledger.web]")[0]
    config = tmp_path / "proxy.toml"
    config.write_text(text + f'[ledger.web]\nlisten = "127.0.0.1:{port}"\nauth = "proxy"\n'
                      'proxy_trusted = ["127.0.0.2"]\nproxy_user_header = "X-Remote-User"\n')
    proc = subprocess.Popen([sys.executable, "-m", "dockd.cli", "ledger", "serve", "--config",
                             str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=_env())
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        _wait(up, 30, "proxy-mode serve")
        # From 127.0.0.1, which is not the configured proxy: refused even with the header.
        r = httpx.get(f"http://127.0.0.1:{port}/", headers={"X-Remote-User": "li"}, timeout=5)
        assert r.status_code == 403
    finally:
        proc.terminate()
        proc.wait(20)


def test_forged_record_and_checkpoint_are_kept_as_evidence(bureau: dict[str, Any]) -> None:
    with psycopg.connect(bureau["dsn"]) as conn:
        fork = conn.execute("SELECT seq, body FROM forks WHERE dock = 'dock-east'").fetchone()
        rejected = {r[0] for r in conn.execute("SELECT code FROM rejected")}
    assert fork is not None and fork[0] == 3
    assert json.loads(bytes(fork[1]))["actor"] == "someone-else"
    assert {"key_mismatch", "schema"} <= rejected
    assert canonical_json(json.loads(bytes(fork[1]))) == bytes(fork[1])


def test_a_dock_proves_against_the_ledger_that_it_was_not_rolled_back(
        bureau: dict[str, Any]) -> None:
    from dockd.records.witness import against_ledger

    creds = bureau["root"] / "ledger.credentials"
    creds.write_text(f"{USER}\n{PASSWORD}\n")
    creds.chmod(0o600)
    east: DaemonRunner = bureau["east"]
    done = east.dockd("verify", "--against-ledger", bureau["url"], "--ledger-credentials",
                      str(creds), "--ledger-ca", str(bureau["ca"]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"against ledger {bureau['url']}:" in done.stdout and ": agrees" in done.stdout
    # The same dock restored from an old copy: 5 records, and seq 4 rewritten.
    records = {r["seq"]: r["hash"] for r in east.custody()}
    old = {seq: h for seq, h in records.items() if seq <= 5}
    old[4] = "00" * 32
    report = against_ledger(bureau["url"], "dock-east", 5, old.get, creds, bureau["ca"])
    kinds = sorted((p.kind, p.subject) for p in report.problems)
    assert ("differs", "seq 4") in kinds and kinds[-1][0] == "rolled_back"
    bad = bureau["root"] / "bad.credentials"
    bad.write_text(f"{USER}\nwrong\n")
    done = east.dockd("verify", "--against-ledger", bureau["url"], "--ledger-credentials",
                      str(bad), "--ledger-ca", str(bureau["ca"]))
    assert done.returncode == 78 and "refused the credentials" in done.stderr


def test_every_alert_kind_reads_in_the_pages_language(bureau: dict[str, Any],
                                                      tmp_path: Path) -> None:
    """Each kind of alert, made by the ledger's own code from hostile messages, read from
    the real server's page in Chinese and in English; a row from before alert texts were
    kept as data shows its stored text."""
    from dockd.ledger.judge import judge

    south = make_stream(tmp_path / "south", "dock-south", 10, checkpoint_every=5, site=SITE)
    ghost = make_stream(tmp_path / "ghost", "dock-ghost", 1, site=SITE)
    db = open_db(bureau["dsn"])

    def feed(messages: list[tuple[str, bytes]]) -> None:
        db.apply_batch([judge("dockd", t, p, 1 << 18) for t, p in messages],
                       SystemClock().now())

    try:
        db.add_dock(south.dock, south.key, "test", site=SITE)
        custody = south.topic("custody")
        feed([(custody, r) for r in south.records[:3]])
        feed([(custody, rehashed(south.record(4), prev_hash="ab" * 32))])       # chain_break
        feed([(custody, south.records[3]), (custody, rehashed(south.record(5), subject="X"))])
        feed([(south.topic("checkpoint"), south.checkpoints[0])])              # checkpoint_mismatch
        cp = json.loads(south.checkpoints[1])
        cp["signature"] = json.loads(south.checkpoints[0])["signature"]
        feed([(south.topic("checkpoint"), canonical_json(cp))])                 # bad_signature
        feed([(south.topic("status"), south.status(time="2026-12-01T10:00:00.000000Z"))])
        feed([(south.topic("status"), south.status(time="2026-12-01T09:00:00.000000Z"))])
        feed([(ghost.topic("custody"), ghost.records[0])])                      # unknown_dock
        feed([(custody, b"not json")])                                          # rejected
        db.conn.execute("INSERT INTO alerts (dock, kind, key, detail) VALUES ('dock-south',"
                        " 'fork', 'legacy', 'an alert of schema version 1, text only')")
        db.conn.commit()
    finally:
        db.close()
    expected = {
        "chain_break": ("does not chain onto seq 3", "未链接到序号 3"),
        "checkpoint_mismatch": (
            "signed checkpoint disagrees with the record received for this seq: the record the "
            "ledger keeps is contradicted by the dock's signature",
            "签名检查点与本序号收到的记录不符：台账保存的记录与采集站的签名相矛盾"),
        "bad_signature": ("checkpoint signature does not verify", "签名检查点的签名验证失败"),
        "replayed": ("status of 2026-12-01T09:00:00.000000Z is older than the one kept "
                     "(2026-12-01T10:00:00.000000Z): replayed",
                     "时间为 2026-12-01T09:00:00.000000Z 的状态早于已保存的"
                     "（2026-12-01T10:00:00.000000Z）：重放"),
        "unknown_dock": ("messages from dock dock-ghost, which is not enrolled",
                         "收到未登记采集站 dock-ghost 的消息"),
        "rejected": ("not JSON: payload is not UTF-8 JSON: Expecting value",
                     "非 JSON：消息体不是 UTF-8 JSON：Expecting value"),
        "gap": ("missing (not received, not filled from the archive)",
                "（未收到，也未能从归档补齐）"),
        "fork": ("two different records claim seq 3 (same event id",
                 "两条不同的记录都声称是序号 3（事件号同为"),
        "key_mismatch": ("not the dock's enrolled key", "不是该采集站的登记密钥"),
    }
    from dockd.ledger.plan import ALERT_KINDS

    assert set(expected) == set(ALERT_KINDS)
    pages = {lang: _get(bureau, f"/alerts?lang={lang}").text for lang in ("en", "zh_CN")}
    for kind, (english, chinese) in expected.items():
        assert str(escape(english)) in pages["en"], kind
        assert str(escape(chinese)) in pages["zh_CN"], kind
    assert "an alert of schema version 1, text only" in pages["zh_CN"]
    # The report reads the same sentences in the reader's language.
    report = _get(bureau, f"/reports/supervision?lang=zh_CN&week={_this_week()}").text
    assert "未链接到序号 3" in report and "does not chain" not in report
