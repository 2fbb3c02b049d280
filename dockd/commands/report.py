"""``dockd report weekly|supervision``: the reports for the supervision section
(rules art. 12(2), 15-16) as text, JSON, CSV or PDF."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dockd.clock import SystemClock
from dockd.commands.common import add_config_options, config_from_args, print_json, reading_catalog
from dockd.commands.helptext import ROLE_CODES, epilog
from dockd.errors import UsageError
from dockd.i18n import _
from dockd.identity import Role
from dockd.records.periods import parse_week, previous_week
from dockd.records.reports import supervision_report, weekly_report

FORMATS = ("text", "json", "csv", "pdf")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("report", help=_("weekly and supervision reports (art. 12(2), 15-16)"))
    rsub = p.add_subparsers(dest="report_command", metavar="REPORT", parser_class=type(p))
    rsub.required = True
    for name, helptext in (("weekly", _("per officer and recorder: docks, files, hours,"
                                        " bytes, faults")),
                           ("supervision", _("integrity checks, offload failures, recorders"
                                             " never docked, holds"))):
        r = rsub.add_parser(name, help=helptext, epilog=epilog([
            f"dockd report {name}            # last complete week, in the terminal",
            f"dockd report {name} --week 2026-W48 --format pdf --out {name}-2026-W48.pdf",
            f"dockd report {name} --format csv --out {name}-csv/"], (*ROLE_CODES, 69)))
        r.add_argument("--week", metavar="YYYY-Www",
                       help=_("ISO week (default: the last complete week)"))
        r.add_argument("--format", choices=FORMATS, default="text", help=_("output format"))
        r.add_argument("--out", type=Path, metavar="PATH",
                       help=_("write to PATH instead of the terminal: a new file for text,"
                              " json and pdf (required for pdf); a new or empty directory for"
                              " csv, one file per table (required for csv)"))
        add_config_options(r)
        r.set_defaults(func=run, report_kind=name, role=Role.AUDIT)


def run(args: argparse.Namespace) -> int:
    if args.format == "pdf" and args.out is None:
        raise UsageError(_("--format pdf needs --out FILE"))
    if args.format == "csv" and args.out is None:
        raise UsageError(_("--format csv needs --out DIR (one CSV file per table)"))
    if args.out is not None and args.out.exists() and args.format != "csv":
        raise UsageError(_("--out {path} already exists").format(path=args.out))
    if args.format == "csv":
        from dockd.records.render import check_csv_dir

        check_csv_dir(args.out)
    config = config_from_args(args)
    settings = config.records
    now = SystemClock().now()
    tz = config.dock.tz
    period = parse_week(args.week, tz) if args.week else previous_week(now, tz)
    with reading_catalog(config) as catalog:
        build = weekly_report if args.report_kind == "weekly" else supervision_report
        report = build(catalog, period, now, settings.undocked_alert_hours)
    if args.format == "pdf":
        from dockd.records.render import write_pdf  # reportlab: only when a PDF is asked for

        write_pdf(report, args.out, settings.pdf_font, settings.unit_name or None)
        print(_("wrote {path}").format(path=args.out))
        return 0
    if args.format == "csv":
        from dockd.records.render import write_csv

        for path in write_csv(report, args.out):
            print(_("wrote {path}").format(path=path))
        return 0
    if args.format == "json":
        if args.out is None:
            print_json(report.to_json_dict())
            return 0
        text = json.dumps(report.to_json_dict(), ensure_ascii=False, indent=2) + "\n"
    else:
        from dockd.records.render import to_text

        text = to_text(report, settings.unit_name or None)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(_("wrote {path}").format(path=args.out))
    return 0
