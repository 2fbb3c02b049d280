"""``dockd catalog``: the stored files, as found on each recorder."""

from __future__ import annotations

import argparse
import json
import sys

from dockd.commands.common import (
    add_config_options,
    add_json_option,
    config_from_args,
    reading_catalog,
)
from dockd.records.periods import parse_day
from dockd.records.views import filter_items
from dockd.store.queries import iter_catalog_items, write_json_lines_array


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("catalog", help="list stored files")
    add_config_options(p)
    p.add_argument("--recorder", metavar="SERIAL", help="only this recorder's files")
    p.add_argument("--since", metavar="DATE", help="only files ingested on or after DATE")
    p.add_argument("--day", metavar="DATE",
                   help="only files docked on this local day ([records] utc_offset)")
    p.add_argument("--officer", metavar="ID_OR_NAME", help="only files of this officer")
    p.add_argument("--case", metavar="CASE_NO", help="only files tagged with this case")
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with reading_catalog(config) as catalog:
        day = parse_day(args.day, config.records.tz) if args.day else None
        # Streamed: one query, each row written as it is read.
        items = iter_catalog_items(catalog, args.recorder, day.start_utc if day else args.since,
                                   day.end_utc if day else None)
        listed = filter_items(catalog, items, args.officer, args.case)
        if args.json:
            encode = json.JSONEncoder(ensure_ascii=False).encode
            write_json_lines_array(sys.stdout, (encode(item) for item in listed))
            return 0
        for item in listed:
            print(f"{item['ingested_at']}  {item['recorder']:<16} {item['size']:>12}  "
                  f"{item['sha256'][:16]}  {item['source_path']}")
    return 0
