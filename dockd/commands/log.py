"""``dockd log``: the custody log."""

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
from dockd.commands.helptext import ROLE_CODES, epilog
from dockd.i18n import _
from dockd.identity import Role
from dockd.store.queries import custody_records, custody_records_json, write_json_lines_array


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("log", help=_("show the chain-of-custody log"), epilog=epilog([
        "dockd log --type export.created", "dockd log --after 1200 --json"], ROLE_CODES))
    add_config_options(p)
    p.add_argument("--after", type=int, default=0, metavar="SEQ", help=_("records after SEQ"))
    p.add_argument("--type", metavar="TYPE", help=_("only events of this type"))
    add_json_option(p)
    p.set_defaults(func=run, role=Role.AUDIT)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with reading_catalog(config) as catalog:
        if args.json:  # streamed: one query, each record written as it is read
            write_json_lines_array(sys.stdout, custody_records_json(catalog, args.after,
                                                                    args.type))
            return 0
        records = custody_records(catalog, args.after, args.type)
    for r in records:
        payload = json.dumps(r["payload"], ensure_ascii=False, sort_keys=True)
        print(f"{r['seq']:>6} {r['time']} {r['type']:<20} {r['actor']:<12} {r['subject'][:20]:<20}"
              f" {payload}")
    return 0
