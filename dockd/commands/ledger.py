"""``dockd ledger …``: the bureau's central ledger (runs on a central server, not on a dock).

* ``run`` — consume every dock's topics into PostgreSQL (systemd ``dockd-ledger.service``);
* ``dock add ID --public-key HEX`` / ``dock list`` — enrol docks (never trust on first use);
* ``status`` — each dock's verification state; ``alerts`` — open alerts;
* ``report weekly|supervision`` — bureau-wide reports; ``serve`` — the supervision page.

Exit codes: 0; 1 open alerts (``status --check``); 2 usage; 69 broker unusable; 75
PostgreSQL unavailable; 78 config.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import socket
from pathlib import Path
from typing import Any

from dockd.clock import SystemClock, utc_iso
from dockd.commands.common import add_json_option, print_json
from dockd.commands.helptext import epilog
from dockd.config import Config, load_config
from dockd.config.ledger import LedgerSection
from dockd.errors import ConfigError, IntegrityError, UsageError
from dockd.i18n import _
from dockd.logs import setup_logging
from dockd.names import DOCK_ID_PATTERN

DEFAULT_LEDGER_CONFIG = Path("/etc/dockd/ledger.toml")
REPORT_FORMATS = ("text", "json", "csv", "pdf")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ledger", help=_("the bureau's central ledger of every dock (PostgreSQL)"))
    group = p.add_subparsers(dest="ledger_command", metavar="ACTION", parser_class=type(p))
    group.required = True

    run = group.add_parser("run", help=_("consume every dock's MQTT topics into the ledger"),
                           epilog=epilog(["dockd ledger run --config /etc/dockd/ledger.toml",
                                          "systemctl start dockd-ledger   # as installed"],
                                         (0, 2, 69, 75, 78)))
    run.add_argument("--client-id", metavar="ID",
                     help=_("this instance's MQTT client id (default: [ledger.mqtt] client_id, "
                          "else dockd-ledger-<host>); one per instance"))
    _config_option(run)
    run.set_defaults(func=run_consumer)

    dock = group.add_parser("dock", help=_("enrol docks and their checkpoint keys"))
    dsub = dock.add_subparsers(dest="dock_command", metavar="ACTION", parser_class=type(p))
    dsub.required = True
    add = dsub.add_parser("add", help=_("enrol a dock with its public key (`dockd key show`)"),
                          epilog=epilog(["dockd ledger dock add dock-01 --site 城关派出所"
                                         " --public-key HEX   # from dockd key show on the dock",
                                         "dockd ledger dock add dock-01 --public-key NEWKEY"
                                         " --replace --note 'key rotated 2026-12-01'"],
                                        (0, 2, 75, 78)))
    add.add_argument("dock_id", metavar="ID", help=_("the dock's [dock] id, e.g. dock-01"))
    add.add_argument("--public-key", required=True, metavar="HEX",
                     help=_("the dock's Ed25519 public key, 64 hex digits"))
    add.add_argument("--site", metavar="SITE", help=_("where the dock stands ([dock] site)"))
    add.add_argument("--archive-prefix", metavar="PREFIX",
                     help=_("the dock's key prefix in the archive bucket (default: its id)"))
    add.add_argument("--note", default="", metavar="TEXT",
                     help=_("a remark kept with the enrolment (e.g. why a key was replaced)"))
    add.add_argument("--replace", action="store_true",
                     help=_("the dock has a new key (the old one is kept on record)"))
    _config_option(add)
    add.set_defaults(func=run_dock_add)
    lst = dsub.add_parser("list", help=_("enrolled docks"),
                          epilog=epilog(["dockd ledger dock list --json"], (0, 2, 75, 78)))
    _config_option(lst)
    add_json_option(lst)
    lst.set_defaults(func=run_dock_list)

    status = group.add_parser("status", help=_("each dock's verification state"),
                              epilog=epilog(["dockd ledger status",
                                             "dockd ledger status --check   # for monitoring"],
                                            (0, 1, 2, 75, 78)))
    status.add_argument("--check", action="store_true",
                        help=_("exit 1 when any alert is open (for monitoring)"))
    _config_option(status)
    add_json_option(status)
    status.set_defaults(func=run_status)

    serve = group.add_parser("serve", help=_("the read-only supervision web page"),
                             epilog=epilog(["dockd ledger serve --listen 127.0.0.1:8443"],
                                           (0, 2, 75, 78)))
    serve.add_argument("--listen", metavar="HOST:PORT", help=_("override [ledger.web] listen"))
    _config_option(serve)
    serve.set_defaults(func=run_serve)

    hashpw = group.add_parser("hash-password",
                              help=_("read a password on stdin, print its users-file hash"),
                              epilog=epilog(["dockd ledger hash-password   # type the password,"
                                             " Ctrl-D; add user:HASH to the users file"],
                                            (0, 2)))
    hashpw.set_defaults(func=run_hash_password)

    report = group.add_parser("report", help=_("bureau-wide weekly and supervision reports"))
    rsub = report.add_subparsers(dest="report_kind", metavar="REPORT", parser_class=type(p))
    rsub.required = True
    for name, text in (("weekly", _("every dock: docks, sessions, files, faults, exports, "
                                    "access, verification (art. 12(2))")),
                       ("supervision", _("integrity, offload failures, recorders never docked "
                                         "or overdue, holds, ledger alerts (art. 15-16)"))):
        r = rsub.add_parser(name, help=text, epilog=epilog([
            f"dockd ledger report {name} --week 2026-W48",
            f"dockd ledger report {name} --format pdf --out bureau-{name}.pdf"],
            (0, 2, 69, 75, 78)))
        r.add_argument("--week", metavar="YYYY-Www", help=_("ISO week (default: the last "
                                                          "complete week)"))
        r.add_argument("--format", choices=REPORT_FORMATS, default="text",
                       help=_("output format (default text)"))
        r.add_argument("--out", type=Path, metavar="FILE", help=_("write to FILE (pdf needs it)"))
        _config_option(r)
        r.set_defaults(func=run_report)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH",
                        help=_("ledger config (default: $DOCKD_CONFIG or /etc/dockd/ledger.toml)"))


def ledger_config(args: argparse.Namespace) -> tuple[Config, LedgerSection]:
    """The config and its ``[ledger]`` section; ConfigError when it has none (a dock's)."""
    path = Path(args.config or os.environ.get("DOCKD_CONFIG") or DEFAULT_LEDGER_CONFIG)
    config = load_config(path)
    setup_logging(config.dock.log_level)
    if config.ledger is None:
        raise ConfigError(_("ledger: {path} has no [ledger] section (the ledger runs on a"
                            " central server with its own config, see docs/ledger.md)")
                          .format(path=path))
    return config, config.ledger


def open_ledger_db(section: Any, migrate: bool = True) -> Any:
    """A migrated :class:`LedgerDb` for ``section``."""
    from dockd.ledger.db import LedgerDb, connect
    from dockd.ledger.db import migrate as do_migrate

    conn = connect(section.database, section.database_password_file)
    if migrate:
        do_migrate(conn, SystemClock().now())
    return LedgerDb(conn, datetime.timedelta(seconds=section.replay_after_s))


def run_consumer(args: argparse.Namespace) -> int:
    from dockd.ledger.consumer import LedgerConsumer
    from dockd.report.mqtt.connection import settings_from_section
    from dockd.report.mqtt.credentials import check_tls_files

    _config, section = ledger_config(args)
    check_tls_files(section.mqtt)
    default_id = f"dockd-ledger-{socket.gethostname()}"[:64]
    settings = settings_from_section(section.mqtt, default_id)
    settings = dataclasses.replace(settings, receive_maximum=section.receive_maximum,
                                   client_id=args.client_id or settings.client_id)
    filler = None
    if section.archive is not None:
        from dockd.ledger.archive_fill import archive_filler

        filler = archive_filler(section)
    consumer = LedgerConsumer(section, settings, lambda: open_ledger_db(section),
                              SystemClock(), filler=filler)
    consumer.run()
    return 0


def run_dock_add(args: argparse.Namespace) -> int:
    from dockd.identity import actor

    if not DOCK_ID_PATTERN.match(args.dock_id):
        raise UsageError(_("dock id {value!r}: letters, digits, '-' or '_', at most 64")
                         .format(value=args.dock_id))
    _config, section = ledger_config(args)
    db = open_ledger_db(section)
    try:
        changed = db.add_dock(args.dock_id, args.public_key.strip().lower(), actor(),
                              site=args.site, archive_prefix=args.archive_prefix,
                              note=args.note, replace=args.replace)
        replayed = _replay_rejected(db, section, args.dock_id) if changed else 0
    finally:
        db.close()
    state = "enrolled" if changed else "already enrolled with this key"
    extra = f"; {replayed} message(s) held back as from an unknown dock re-judged" \
        if replayed else ""
    print(f"dock {args.dock_id}: {state}{extra}")
    return 0


def _replay_rejected(db: Any, section: Any, dock: str) -> int:
    """Messages rejected while the dock was unknown are judged again, now it is enrolled."""
    from dockd.ledger.judge import judge

    held = db.rejected_for_replay(dock)
    if held:
        items = [judge(section.mqtt.prefix, topic, payload, section.max_payload_bytes)
                 for topic, payload in held]
        db.apply_batch(items, SystemClock().now(), source="replay")
    return len(held)


def run_dock_list(args: argparse.Namespace) -> int:
    from dockd.ledger.queries import dock_rows

    _config, section = ledger_config(args)
    db = open_ledger_db(section)
    try:
        rows = dock_rows(db.conn)
    finally:
        db.close()
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        print(f"{r['dock']}  site={r['site'] or '-'}  key={r['public_key'][:16]}…  "
              f"enrolled {r['enrolled_at']} by {r['enrolled_by']}")
    if not rows:
        print("no dock enrolled")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from dockd.ledger.queries import dock_states, open_alerts

    _config, section = ledger_config(args)
    db = open_ledger_db(section)
    try:
        docks = dock_states(db.conn, SystemClock().now())
        alerts = open_alerts(db.conn)
    finally:
        db.close()
    if args.json:
        print_json({"docks": docks, "open_alerts": alerts, "time": utc_iso(SystemClock().now())})
    else:
        for d in docks:
            print(f"{d['dock']}: {d['verification']}; records {d['records']} (seq 1.."
                  f"{d['max_seq']}, verified to {d['contiguous_to']}), last checkpoint "
                  f"{d['last_checkpoint_seq'] or '-'}, {d['open_alerts']} open alert(s), "
                  f"{d['online']}")
        from dockd.ledger.notes import shown
        from dockd.ledger.words import env_language, words

        said = words(env_language())
        for a in alerts:
            print(f"  ALERT {a['kind']} {a['dock'] or '-'}: "
                  f"{shown(said, a['detail_note'], a['detail'])} (x{a['count']})")
    if args.check and alerts:
        raise IntegrityError(_("{n} open alert(s) in the ledger").format(n=len(alerts)))
    return 0


def run_report(args: argparse.Namespace) -> int:
    import json
    import sys

    from dockd.ledger.render import to_csv, to_text, write_pdf
    from dockd.ledger.reports import bureau_report
    from dockd.ledger.words import env_language, words
    from dockd.records.periods import parse_week, previous_week

    if args.format == "pdf" and args.out is None:
        raise UsageError(_("--format pdf needs --out FILE"))
    if args.out is not None and args.out.exists():
        raise UsageError(_("--out {path} already exists").format(path=args.out))
    _config, section = ledger_config(args)
    now = SystemClock().now()
    period = parse_week(args.week, section.tz) if args.week else previous_week(now, section.tz)
    db = open_ledger_db(section)
    try:
        report = bureau_report(db.conn, args.report_kind, period, now,
                               section.undocked_alert_hours)
    finally:
        db.close()
    said = words(env_language())  # the ledger's own catalog (dockd_ledger.po)
    if args.format == "pdf":
        write_pdf(report, args.out, said)
        print(f"wrote {args.out}")
        return 0
    if args.format == "json":
        text = json.dumps(report.to_json_dict(), ensure_ascii=False, indent=2) + "\n"
    else:
        text = to_csv(report, said) if args.format == "csv" else to_text(report, said)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from dockd.config.ledger import parse_listen
    from dockd.ledger.db import connect
    from dockd.ledger.web.app import ConnectionPool, create_app

    _config, section = ledger_config(args)
    web = section.web
    if web is None:
        raise UsageError(_("the config has no [ledger.web] section (listen, auth, users_file or"
                           " the proxy header, TLS; see docs/ledger.md)"))
    if args.listen:
        listen = parse_listen(args.listen)
        if listen is None:
            raise UsageError(_("--listen: {value!r} is not HOST:PORT").format(value=args.listen))
        web = dataclasses.replace(web, host=listen[0], port=listen[1])
    # Migrate once with a writing connection; the page's own connections are read-only.
    open_ledger_db(section).close()
    pool = ConnectionPool(lambda: connect(section.database, section.database_password_file,
                                          application_name="dockd-ledger-web", read_only=True))
    app = create_app(section, web, pool, SystemClock())
    tls = {"ssl_certfile": str(web.tls_cert_file), "ssl_keyfile": str(web.tls_key_file)} \
        if web.tls_cert_file and web.tls_key_file else {}
    uvicorn.run(app, host=web.host, port=web.port, log_level="warning", access_log=False,
                proxy_headers=False, server_header=False, **tls)  # type: ignore[arg-type]
    pool.close()
    return 0


def run_hash_password(args: argparse.Namespace) -> int:
    import getpass
    import sys

    from dockd.ledger.web.auth import hash_password

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline()
    password = password.rstrip("\n")
    if len(password) < 8:
        raise UsageError(_("the password must have at least 8 characters"))
    print(hash_password(password))
    return 0
