"""``dockd catalog``: the stored files, as found on each recorder."""

from __future__ import annotations

import argparse
import json
import sys

from dockd.clock import parse_utc_iso
from dockd.commands.common import (
    add_config_options,
    add_json_option,
    config_from_args,
    reading_catalog,
)
from dockd.commands.helptext import ROLE_CODES, epilog
from dockd.i18n import _, local_time
from dockd.identity import Role
from dockd.records.periods import parse_day
from dockd.records.views import filter_items
from dockd.store.queries import iter_catalog_items, write_json_lines_array


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("catalog", help=_("list stored files"), epilog=epilog([
        "dockd catalog --day 2026-12-01", "dockd catalog --recorder CAM001 --since 2026-11-23",
        "dockd catalog --case 'XA-2026-0042' --json"], ROLE_CODES))
    add_config_options(p)
    p.add_argument("--recorder", metavar="SERIAL", help=_("only this recorder's files"))
    p.add_argument("--since", metavar="DATE",
                   help=_("only files stored on or after this local day, YYYY-MM-DD"
                          " ([dock] timezone)"))
    p.add_argument("--day", metavar="DATE",
                   help=_("only files stored on this local day, YYYY-MM-DD ([dock] timezone)"))
    p.add_argument("--officer", metavar="ID_OR_NAME", help=_("only files of this officer"))
    p.add_argument("--case", metavar="CASE_NO", help=_("only files tagged with this case"))
    add_json_option(p)
    p.set_defaults(func=run, role=Role.AUDIT)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with reading_catalog(config) as catalog:
        tz = config.dock.tz
        day = parse_day(args.day, tz) if args.day else None
        since = parse_day(args.since, tz, "--since") if args.since else None
        start = max(p.start_utc for p in (day, since) if p) if day or since else None
        # Streamed: one query, each row written as it is read.
        items = iter_catalog_items(catalog, args.recorder, start, day.end_utc if day else None)
        listed = filter_items(catalog, items, args.officer, args.case)
        if args.json:
            encode = json.JSONEncoder(ensure_ascii=False).encode
            write_json_lines_array(sys.stdout, (encode(item) for item in listed))
            return 0
        for item in listed:
            stored = local_time(parse_utc_iso(item["ingested_at"]), tz)
            print(f"{stored}  {item['recorder']:<16} {item['size']:>12}  "
                  f"{item['sha256'][:16]}  {item['source_path']}")
    return 0
