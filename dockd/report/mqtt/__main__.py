"""``python -m dockd.report.mqtt --config PATH``: run only the MQTT reporter of a store.

For a dock whose daemon is stopped but whose outbox must still drain, and for tests that
kill the publisher process. Stops on SIGTERM/SIGINT (publishing ``offline`` first).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from dockd.clock import SystemClock
from dockd.config import load_config, resolve_config_path
from dockd.errors import ConfigError, DockdError
from dockd.logs import setup_logging
from dockd.report.mqtt.reporter import MqttReporter
from dockd.store.keys import load_or_create_signer


def main(argv: Sequence[str] | None = None) -> int:
    """Run the reporter until a signal; the exit code of a DockdError on bad config."""
    parser = argparse.ArgumentParser(prog="python -m dockd.report.mqtt")
    parser.add_argument("--config", metavar="PATH")
    parser.add_argument("--store", metavar="DIR", type=Path)
    args = parser.parse_args(argv)
    setup_logging("INFO")
    try:
        config = load_config(resolve_config_path(args.config))
        if args.store is not None:
            config = config.with_store(args.store)
        setup_logging(config.dock.log_level)
        if not config.mqtt.enabled:
            raise ConfigError("mqtt.enabled: the [mqtt] section is not enabled")
        signer = load_or_create_signer(config.dock.signing_key_path)
        reporter = MqttReporter(config, config.dock.store_dir, SystemClock(),
                                signer.public_key_hex)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        reporter.start()
        while not stop.wait(0.5):
            pass
        reporter.stop()
    except DockdError as exc:
        print(f"dockd-mqtt: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
