"""An optional Prometheus text endpoint on localhost (``[metrics]``), for Grafana users.

A reporter like the LEDs and MQTT: it keeps the latest bay states and dock line the daemon
tells every reporter, counts what was offloaded, and serves them in the Prometheus text
format (version 0.0.4) at ``http://127.0.0.1:<port>/metrics``. The time and result of the
last ``dockd verify`` come from the custody log at each scrape (a read-only query). It binds
to loopback only: the figures are the dock's, and the bureau's network reaches the dock
through MQTT, not through this port. Metric names are listed in docs/mqtt.md.
"""

from __future__ import annotations

import datetime as dt
import http.server
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dockd import __version__
from dockd.dock.reporting import DockInfo, RecorderChecked
from dockd.dock.states import BayState, BayStatus
from dockd.errors import ConfigError, DockdError
from dockd.i18n import _
from dockd.store.queries import last_verification, open_catalog_read_only

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class LastVerify:
    """The newest ``verify.completed`` / ``verify.failed`` record of the custody log."""

    time: str  # RFC 3339 UTC
    intact: bool


def store_last_verify(store_dir: Path) -> Callable[[], LastVerify | None]:
    """What :class:`MetricsReporter` asks at each scrape: the store's last verify, read-only."""

    def read() -> LastVerify | None:
        catalog = open_catalog_read_only(store_dir)
        try:
            found = last_verification(catalog)
        finally:
            catalog.close()
        return None if found is None else LastVerify(*found)

    return read


class MetricsReporter:
    """Serves the dock's figures to Prometheus; a :class:`~dockd.dock.reporting.Reporter`."""

    def __init__(self, host: str, port: int, last_verify: Callable[[], LastVerify | None],
                 version: str = __version__) -> None:
        self.host, self.port = host, port
        self.version = version
        self._last_verify = last_verify
        self._lock = threading.Lock()
        self._bays: dict[int, BayStatus] = {}
        self._dock: DockInfo | None = None
        self._bytes_total = 0
        self._files_total = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- Reporter ---------------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve in a thread (OSError, e.g. the port is taken, goes to the caller)."""
        reporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "only /metrics is served here")
                    return
                try:
                    body = reporter.render().encode("utf-8")
                except DockdError as exc:  # the store cannot be read: say so, to both sides
                    log.error("metrics: %s", exc)
                    self.send_error(500, str(exc))
                    return
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("metrics request: " + format, *args)

        try:
            self._server = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise ConfigError(_("metrics.port: cannot listen on {host}:{port}: {strerror}").format(
                                host=self.host, port=self.port, strerror=exc.strerror)) from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="dockd-metrics",
                                        daemon=True)
        self._thread.start()
        log.info("metrics endpoint listening", extra={"url": self.url})

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def bay_changed(self, status: BayStatus) -> None:
        with self._lock:
            before = self._bays.get(status.bay)
            now, then = status.progress, before.progress if before else None
            # Progress only grows within one offload; a drop (or another recorder) is a new one.
            same = then is not None and before is not None and before.recorder == status.recorder \
                and now.bytes_done >= then.bytes_done and now.files_done >= then.files_done
            self._bytes_total += now.bytes_done - (then.bytes_done if same and then else 0)
            self._files_total += now.files_done - (then.files_done if same and then else 0)
            self._bays[status.bay] = status

    def recorder_checked(self, checked: RecorderChecked) -> None:
        """Nothing to count: the health figures are per recorder, on MQTT."""

    def dock_changed(self, info: DockInfo) -> None:
        with self._lock:
            self._dock = info

    def records_committed(self) -> None:
        """Nothing to do: the last verify is read at scrape time."""

    # -- the exposition ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def render(self) -> str:
        """The current figures in the Prometheus text format."""
        with self._lock:
            bays, dock = dict(self._bays), self._dock
            bytes_total, files_total = self._bytes_total, self._files_total
        out: list[str] = []
        _metric(out, "dockd_build_info", "gauge", "The running dockd version.",
                [(f'version="{_label(self.version)}"', 1)])
        counts = {state: 0 for state in BayState}
        for status in bays.values():
            counts[status.state] += 1
        _metric(out, "dockd_bays", "gauge", "Bays by state.",
                [(f'state="{state.value}"', n) for state, n in counts.items()])
        _metric(out, "dockd_bay_state", "gauge", "1 for the state each bay is in.",
                [(f'bay="{b.bay}",label="{_label(b.label)}",state="{b.state.value}"', 1)
                 for b in sorted(bays.values(), key=lambda b: b.bay)])
        _metric(out, "dockd_offload_bytes_total", "counter",
                "Bytes offloaded into the store since the daemon started.", [("", bytes_total)])
        _metric(out, "dockd_offload_files_total", "counter",
                "Files offloaded into the store since the daemon started.", [("", files_total)])
        if dock is not None:
            _metric(out, "dockd_outbox_pending", "gauge",
                    "Custody and status messages waiting for the MQTT broker.",
                    [("", dock.outbox_depth)])
            _metric(out, "dockd_mqtt_connected", "gauge", "1 when the broker link is up.",
                    [("", int(dock.broker_online))] if dock.broker is not None else [])
            _metric(out, "dockd_store_free_bytes", "gauge", "Free space of the store's file system.",
                    [("", dock.store_free_bytes)])
            _metric(out, "dockd_clock_synchronised", "gauge",
                    "1 when the dock's clock is synchronised.", [("", int(dock.clock_synchronised))])
        last = self._last_verify()
        if last is not None:
            when = dt.datetime.fromisoformat(last.time.replace("Z", "+00:00")).timestamp()
            _metric(out, "dockd_last_verify_timestamp_seconds", "gauge",
                    "When dockd verify last ran (Unix time).", [("", when)])
            _metric(out, "dockd_last_verify_intact", "gauge",
                    "1 when the last dockd verify found the store intact.", [("", int(last.intact))])
        return "\n".join(out) + "\n"


def _metric(out: list[str], name: str, kind: str, help_text: str,
            samples: list[tuple[str, float | int]]) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        out.append(f"{name}{{{labels}}} {_number(value)}" if labels else f"{name} {_number(value)}")


def _number(value: float | int) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def _label(value: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
