"""``dockd publish``: run only the MQTT reporter of a store, until SIGTERM/SIGINT.

For a dock whose daemon is stopped but whose outbox must still drain. Publishes ``offline``
before it stops.
"""

from __future__ import annotations

import argparse
import signal
import threading

from dockd.clock import SystemClock
from dockd.commands.common import add_config_options, config_from_args
from dockd.commands.helptext import STORE_CODES, epilog
from dockd.errors import ConfigError
from dockd.i18n import _
from dockd.report.mqtt.reporter import MqttReporter
from dockd.store.keys import load_or_create_signer


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("publish", help=_("drain the store's MQTT outbox without the daemon"),
                       epilog=epilog(["dockd publish   # while the daemon is stopped"],
                                     (*STORE_CODES, 69)))
    add_config_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if not config.mqtt.enabled:
        raise ConfigError(_("mqtt.enabled: the [mqtt] section is not enabled"))
    signer = load_or_create_signer(config.dock.signing_key_path)
    reporter = MqttReporter(config, config.dock.store_dir, SystemClock(), signer.public_key_hex)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    reporter.start()
    while not stop.wait(0.5):
        pass
    reporter.stop()
    return 0
