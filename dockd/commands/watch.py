"""``dockd watch``: print a dock's MQTT traffic live, and with ``--verify`` prove the custody
stream complete and genuine (hash chain, signed checkpoints, gaps, duplicates, forgeries).

Exit status: 0 when nothing was wrong, 1 (IntegrityError) on any gap, forgery, malformed
record or unverifiable checkpoint, 69 when the broker cannot be used at all. Identical
duplicates are reported but are not a failure: QoS 1 delivers at least once.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

from dockd.commands.common import add_json_option
from dockd.commands.helptext import epilog
from dockd.config import load_config, resolve_config_path
from dockd.config.mqtt import PROTOCOLS, TOPIC_LEVEL_PATTERN, MqttSection, parse_broker_url
from dockd.errors import IntegrityError, UsageError
from dockd.i18n import _
from dockd.logs import setup_logging
from dockd.names import DOCK_ID_PATTERN
from dockd.report.mqtt.connection import ConnectionSettings
from dockd.report.mqtt.credentials import check_tls_files
from dockd.report.mqtt.stream_verify import Event, Finding, StreamVerifier
from dockd.report.mqtt.subscriber import Subscriber

log = logging.getLogger(__name__)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("watch", help=_("print MQTT events live; --verify checks the custody chain"),
                       epilog=epilog(["dockd watch --config /etc/dockd/dockd.toml",
                                      "dockd watch --broker mqtts://broker.bureau:8883 --ca ca.pem"
                                      " --dock dock-01 --verify --idle-timeout 60"],
                                     (0, 1, 2, 69, 78)))
    p.add_argument("--broker", metavar="URL",
                   help=_("mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (default: [mqtt] broker)"))
    p.add_argument("--config", metavar="PATH",
                   help=_("take broker, TLS and credentials from this config's [mqtt] section"))
    p.add_argument("--prefix", metavar="PREFIX", help=_("topic prefix (default: [mqtt] prefix)"))
    p.add_argument("--site", metavar="SITE", help=_("only this site"))
    p.add_argument("--dock", metavar="ID", help=_("only this dock"))
    p.add_argument("--verify", action="store_true",
                   help=_("check hash chain, checkpoints, gaps, duplicates and forgeries"))
    p.add_argument("--public-key", metavar="HEX",
                   help=_("trust this dock key instead of the one on the status topic"))
    p.add_argument("--from-seq", type=int, metavar="N",
                   help=_("the first custody seq expected (default: the first one received)"))
    p.add_argument("--until-seq", type=int, metavar="N",
                   help=_("stop once every custody seq up to N has arrived"))
    p.add_argument("--idle-timeout", type=float, metavar="S",
                   help=_("stop after S seconds without a message"))
    p.add_argument("--ca", type=Path, metavar="PEM", help=_("CA of the broker certificate"))
    p.add_argument("--cert", type=Path, metavar="PEM", help=_("client certificate"))
    p.add_argument("--key", type=Path, metavar="PEM", help=_("client certificate key"))
    p.add_argument("--credentials-file", type=Path, metavar="PATH",
                   help=_("file with the username (line 1) and password (line 2)"))
    p.add_argument("--mqtt-version", choices=PROTOCOLS, help=_("MQTT protocol (default 5)"))
    p.add_argument("--client-id", metavar="ID",
                   help=_("keep a broker session under this id (messages queue while away)"))
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    settings, prefix = _settings(args)
    verifier = StreamVerifier(prefix, from_seq=args.from_seq, public_key=args.public_key)
    watch = _Watch(args, settings, prefix, verifier)
    watch.run()
    findings = verifier.finish(args.until_seq, args.dock) if args.verify else []
    for finding in findings:
        watch.print_finding(finding)
    summary = verifier.summary()
    if args.json:
        _emit({"summary": summary})
    elif args.verify:
        docks = ", ".join(f"{name}: seq {d['first_seq']}..{d['last_seq']} ({d['records']} records,"
                          f" {d['checkpoints_verified']} checkpoints verified)"
                          for name, d in summary["docks"].items()) or "no custody records"
        print(f"verified {docks}; {summary['problems']} problem(s), "
              f"{summary['duplicates']} duplicate(s)", flush=True)
    if args.verify and not summary["ok"]:
        raise IntegrityError(_("the custody stream has {n} problem(s)")
                             .format(n=summary["problems"]))
    return 0


class _Watch:
    """Prints what the subscriber receives; stops when told, at --until-seq or --idle-timeout."""

    def __init__(self, args: argparse.Namespace, settings: ConnectionSettings, prefix: str,
                 verifier: StreamVerifier) -> None:
        self.args = args
        self.verifier = verifier
        self.subscriber = Subscriber(settings, f"{prefix}/{args.site or '+'}/{args.dock or '+'}/#",
                                     self._on_message)
        self.stop = False

    def run(self) -> None:
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self.subscriber.run(self._done)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _done(self) -> bool:
        if self.stop:
            return True
        a = self.args
        if a.until_seq is not None and self.verifier.complete(a.until_seq, a.dock):
            return True
        return a.idle_timeout is not None and self.subscriber.idle_s() > a.idle_timeout

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.stop = True

    def _on_message(self, topic: str, payload: bytes) -> None:
        event = self.verifier.feed(topic, payload)
        self.print_event(event)
        if self.args.verify:
            for finding in event.findings:
                self.print_finding(finding)

    def print_event(self, event: Event) -> None:
        if self.args.json:
            _emit({"event": event.kind, "topic": event.topic, "dock": event.dock,
                   "message": event.message})
            return
        print(_printable(_line(event)), flush=True)

    def print_finding(self, finding: Finding) -> None:
        if self.args.json:
            _emit({"problem": finding.to_json_dict()})
            return
        seq = f" seq={finding.seq}" if finding.seq is not None else ""
        label = "DUPLICATE" if not finding.fails else "PROBLEM"
        print(_printable(f"{label} {finding.kind} {finding.dock}{seq}: {finding.detail}"),
              flush=True)


def _settings(args: argparse.Namespace) -> tuple[ConnectionSettings, str]:
    """Connection settings from the options, falling back on the config's [mqtt] section."""
    section = MqttSection()
    if args.config or not args.broker:
        config = load_config(resolve_config_path(args.config))
        setup_logging(config.dock.log_level)
        section = config.mqtt
    broker = parse_broker_url(args.broker, "--broker") if args.broker else section.broker
    if args.broker is None and not section.enabled and args.config is None:
        raise UsageError(_("give --broker URL (or --config with an [mqtt] section)"))
    settings = ConnectionSettings(
        broker=broker,
        client_id=args.client_id or f"dockd-watch-{uuid.uuid4().hex[:12]}",
        protocol=args.mqtt_version or section.protocol,
        keepalive_s=section.keepalive_s,
        clean_start=args.client_id is None,
        session_expiry_s=section.session_expiry_s if args.client_id else 0,
        credentials_file=args.credentials_file or section.credentials_file,
        ca_file=args.ca or section.ca_file,
        cert_file=args.cert or section.cert_file,
        key_file=args.key or section.key_file)
    if not broker.tls and (settings.ca_file or settings.cert_file):
        # As the daemon's config refuses it: certificates given must not be ignored silently.
        given = "--ca" if args.ca else "--cert" if args.cert else "the config's ca_file/cert_file"
        raise UsageError(_("{given} is set but the broker URL {url} is plaintext; use mqtts://"
                           " so the certificates are used").format(given=given, url=broker.url))
    check_tls_files(MqttSection(ca_file=settings.ca_file, cert_file=settings.cert_file,
                                key_file=settings.key_file))
    return settings, args.prefix or section.prefix


def _check_args(args: argparse.Namespace) -> None:
    for name in ("site", "dock"):
        value = getattr(args, name)
        if value is not None and not DOCK_ID_PATTERN.match(value):
            raise UsageError(_("--{name}: {value!r} is not a dock/site id")
                             .format(name=name, value=value))
    if args.prefix is not None and not TOPIC_LEVEL_PATTERN.match(args.prefix):
        raise UsageError(_("--prefix: {value!r} is not one topic level").format(value=args.prefix))
    if args.public_key is not None and not _HEX64.match(args.public_key):
        raise UsageError(_("--public-key: expected 64 lower-case hex digits (see `dockd key show`)"))
    for name in ("from_seq", "until_seq"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(_("--{name}: must be at least 1").format(name=name.replace("_", "-")))
    if args.idle_timeout is not None and args.idle_timeout <= 0:
        raise UsageError(_("--idle-timeout: must be above 0"))
    if (args.cert is None) != (args.key is None):
        raise UsageError(_("--cert and --key go together"))
    for option, path in (("--ca", args.ca), ("--cert", args.cert), ("--key", args.key),
                         ("--credentials-file", args.credentials_file)):
        if path is not None and not path.is_file():
            raise UsageError(_("{option}: {path} does not exist or is not a file")
                             .format(option=option, path=path))


def _line(event: Event) -> str:
    m = event.message if isinstance(event.message, dict) else {}
    dock = event.dock or "?"
    if event.cleared and event.kind == "bay":
        return f"bay        {dock} {event.topic} cleared (the dock stopped)"
    if event.kind == "unknown" or not m:
        return f"{event.kind:<10} {dock} {event.topic} (unreadable payload)"
    if event.kind == "custody":
        return (f"custody    {dock} seq={m.get('seq')} {m.get('type')} subject={m.get('subject')}"
                f" actor={m.get('actor')} time={m.get('time')}")
    if event.kind == "checkpoint":
        return f"checkpoint {dock} seq={m.get('seq')} hash={str(m.get('hash'))[:16]}"
    if event.kind == "status":
        return f"status     {dock} {m.get('state')} version={m.get('version')}"
    if event.kind == "bay":
        fault = f" fault={m.get('fault')}" if m.get("fault") else ""
        return (f"bay        {dock} bay={m.get('bay')} {m.get('state')}{fault}"
                f" recorder={m.get('recorder')}")
    if event.kind == "health":
        return (f"health     {dock} recorder={m.get('recorder')} battery={m.get('battery_percent')}"
                f" drift_s={m.get('clock_drift_s')}")
    return f"ALERT      {dock} reason={m.get('reason')} bay={m.get('bay')} {m.get('detail', '')}"


def _printable(line: str) -> str:
    """Escape what a terminal would act on: a payload must not fake a line of its own
    (a forged "verified ... 0 problem(s)") or move the cursor."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)


def _emit(value: Any) -> None:
    """One JSON document per line. Chinese stays readable, but the Unicode line breaks
    (NEL, LS, PS) a line reader would split on are escaped (JSON already escapes C0)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    for char in _UNICODE_BREAKS:
        text = text.replace(char, f"\\u{ord(char):04x}")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


_UNICODE_BREAKS = ("\u0085", "\u2028", "\u2029")
