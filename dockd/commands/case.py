"""``dockd case``: tag recordings with a case number and annotate them (rules art. 8)."""

from __future__ import annotations

import argparse

from dockd.commands.common import (
    add_config_options,
    add_json_option,
    config_from_args,
    print_json,
    reading_catalog,
    writing_store,
)
from dockd.commands.helptext import ROLE_CODES, epilog
from dockd.commands.records_args import add_range_options, select_shas
from dockd.i18n import _
from dockd.identity import Role, actor
from dockd.records.cases import annotate_items, list_cases, tag_items
from dockd.records.fields import annotation_values
from dockd.records.selection import resolve_items, validate_case_no


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("case", help=_("case numbers and annotations of recordings (art. 8)"))
    csub = p.add_subparsers(dest="case_command", metavar="ACTION", parser_class=type(p))
    csub.required = True

    tag = csub.add_parser("tag", help=_("tag recordings with a case number"), epilog=epilog([
        "dockd case tag XA-2026-0042 --recorder CAM001 --from 2026-12-01 --to 2026-12-01"
        " --place 城关镇",
        "dockd case tag XA-2026-0042 --items 3f5a9c0e12ab 77c0aa91d2f0"], ROLE_CODES))
    tag.add_argument("case_no", metavar="CASE_NO", help=_("the case number"))
    which = tag.add_mutually_exclusive_group(required=True)
    which.add_argument("--items", nargs="+", metavar="SHA256", help=_("stored items"))
    which.add_argument("--recorder", metavar="SERIAL",
                       help=_("a recorder's recordings (with --from/--to)"))
    add_range_options(tag)
    tag.add_argument("--place", help=_("where the case's recordings were made"))
    tag.add_argument("--by", metavar="NAME", default="", help=_("who tags (default: the user)"))
    add_config_options(tag)
    add_json_option(tag)
    tag.set_defaults(func=run_tag, role=Role.ADMIN)

    ann = csub.add_parser("annotate", help=_("record place, recording operator and other art."
                                             " 12(4) fields no source knows"),
                          epilog=epilog(["dockd case annotate --items 3f5a9c0e12ab --place 城关镇"
                                         " --operator 赵六 --by 王所长",
                                         "dockd case annotate --items 3f5a9c0e12ab --start"
                                         " '2026-12-01 09:10:00' --end '2026-12-01 09:12:30'"
                                         " --format mp4 --length 0:02:30 --by 王所长"],
                                        ROLE_CODES))
    ann.add_argument("--items", nargs="+", required=True, metavar="SHA256",
                     help=_("stored items"))
    ann.add_argument("--place", help=_("where it was recorded"))
    ann.add_argument("--operator", help=_("who operated the recorder"))
    # The other art. 12(4) fields, for files and recorders no source knows them for; a
    # value read from the file or the registry always wins over one typed here.
    ann.add_argument("--officer", metavar="NAME", help=_("the officer (art. 12(4))"))
    ann.add_argument("--start", metavar="TIME",
                     help=_("start time, YYYY-MM-DD HH:MM:SS local ([dock] timezone)"))
    ann.add_argument("--end", metavar="TIME",
                     help=_("end time, YYYY-MM-DD HH:MM:SS local ([dock] timezone)"))
    ann.add_argument("--format", dest="media_format", metavar="FORMAT",
                     help=_("recording format, e.g. mp4"))
    ann.add_argument("--length", metavar="H:MM:SS", help=_("length, H:MM:SS or seconds"))
    ann.add_argument("--brand", metavar="BRAND", help=_("the recorder's brand"))
    ann.add_argument("--model", metavar="MODEL", help=_("the recorder's model"))
    ann.add_argument("--by", required=True, metavar="NAME", help=_("who annotates"))
    add_config_options(ann)
    ann.set_defaults(func=run_annotate, role=Role.ADMIN)

    lst = csub.add_parser("list", help=_("list cases"),
                          epilog=epilog(["dockd case list --json"], ROLE_CODES))
    add_config_options(lst)
    add_json_option(lst)
    lst.set_defaults(func=run_list, role=Role.AUDIT)


def run_tag(args: argparse.Namespace) -> int:
    validate_case_no(args.case_no)
    config = config_from_args(args)
    with writing_store(config) as store:
        shas, _case = select_shas(store.catalog, config, args, strict=True)
        result = tag_items(store, args.case_no, shas, args.by, actor(), args.place)
    if args.json:
        print_json({"case": result.case_no, "added": list(result.added),
                    "already": list(result.already), "created": result.created})
    else:
        print(_("case {case}: tagged {added} recording(s), {already} already tagged")
              .format(case=result.case_no, added=len(result.added),
                      already=len(result.already)))
    return 0


def run_annotate(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    fields = annotation_values(config.dock.tz, args.officer, args.start, args.end,
                               args.media_format, args.length, args.brand, args.model)
    with writing_store(config) as store:
        shas = resolve_items(store.catalog, args.items)
        n = annotate_items(store, shas, args.by, actor(), args.place, args.operator, fields)
    print(_("annotated {n} recording(s)").format(n=n))
    return 0


def run_list(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with reading_catalog(config) as catalog:
        cases = list_cases(catalog)
    if args.json:
        print_json([c.to_json_dict() for c in cases])
        return 0
    for c in cases:
        print(_("{case}: {n} recording(s), {bytes} bytes, place {place}").format(
            case=c.case_no, n=c.items, bytes=c.bytes, place=c.place or "—"))
    return 0
