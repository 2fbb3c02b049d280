"""``dockd hold``: suspend deletion of recordings (rules art. 12(3): complaints, petitions)."""

from __future__ import annotations

import argparse
import datetime as dt

from dockd.clock import parse_utc_iso
from dockd.commands.common import (
    add_config_options,
    add_json_option,
    config_from_args,
    print_json,
    reading_catalog,
    writing_store,
)
from dockd.commands.helptext import ROLE_CODES, epilog
from dockd.commands.records_args import add_range_options, date_range
from dockd.errors import UsageError
from dockd.i18n import _, local_time
from dockd.identity import Role, actor
from dockd.records.holds import (
    Hold,
    HoldRequest,
    add_hold,
    list_holds,
    release_hold,
    scope_text,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("hold", help=_("holds that suspend deletion (art. 12(3))"))
    hsub = p.add_subparsers(dest="hold_command", metavar="ACTION", parser_class=type(p))
    hsub.required = True

    add = hsub.add_parser("add", help=_("place a hold on an item, a case or a recorder"),
                          epilog=epilog([
                              "dockd hold add --case XA-2026-0042 --reason '信访 2026-3'"
                              " --by 王所长",
                              "dockd hold add --recorder CAM001 --from 2026-11-23 --to"
                              " 2026-11-29 --reason 投诉 --by 王所长"], ROLE_CODES))
    target = add.add_mutually_exclusive_group(required=True)
    target.add_argument("--item", metavar="SHA256", help=_("one stored item"))
    target.add_argument("--case", metavar="CASE_NO", help=_("every item of a case"))
    target.add_argument("--recorder", metavar="SERIAL", help=_("a recorder's items"))
    add_range_options(add)
    add.add_argument("--reason", required=True, help=_("why (e.g. the complaint's reference)"))
    add.add_argument("--by", required=True, metavar="NAME", help=_("who places the hold"))
    add_config_options(add)
    add_json_option(add)
    add.set_defaults(func=run_add, role=Role.ADMIN)

    rel = hsub.add_parser("release", help=_("release a hold"),
                          epilog=epilog(["dockd hold release 3 --by 王所长"], ROLE_CODES))
    rel.add_argument("hold_id", metavar="ID", type=int, help=_("the hold's id"))
    rel.add_argument("--by", required=True, metavar="NAME", help=_("who releases it"))
    add_config_options(rel)
    add_json_option(rel)
    rel.set_defaults(func=run_release, role=Role.ADMIN)

    lst = hsub.add_parser("list", help=_("list holds"),
                          epilog=epilog(["dockd hold list", "dockd hold list --all --json"],
                                        ROLE_CODES))
    lst.add_argument("--all", action="store_true", help=_("include released holds"))
    add_config_options(lst)
    add_json_option(lst)
    lst.set_defaults(func=run_list, role=Role.AUDIT)


def run_add(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with writing_store(config) as store:
        scope, target = (("item", args.item) if args.item else ("case", args.case)
                         if args.case else ("recorder", args.recorder))
        if scope != "recorder" and (args.date_from or args.date_to):
            raise UsageError(_("--from and --to apply only with --recorder"))
        start, end = date_range(config, args)
        hold = add_hold(store, HoldRequest(scope, target, args.reason, args.by, start, end),
                        actor())
    _show([hold], args.json, config.dock.tz, single=True)
    return 0


def run_release(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with writing_store(config) as store:
        hold = release_hold(store, args.hold_id, args.by, actor())
    _show([hold], args.json, config.dock.tz, single=True)
    return 0


def run_list(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with reading_catalog(config) as catalog:
        holds = list_holds(catalog, include_released=args.all)
    _show(holds, args.json, config.dock.tz)
    return 0


def _show(holds: list[Hold], as_json: bool, tz: dt.tzinfo, single: bool = False) -> None:
    def when(utc_text: str | None) -> str:
        return local_time(parse_utc_iso(utc_text), tz) if utc_text else "…"

    if as_json:
        print_json(holds[0].to_json_dict() if single else [h.to_json_dict() for h in holds])
        return
    if not holds:
        print(_("no holds"))
    for h in holds:
        span = f" {when(h.range_from)} – {when(h.range_to)}" if h.range_from or h.range_to \
            else ""
        state = _("active") if h.active else _("released by {by} at {when}").format(
            by=h.released_by, when=when(h.released_at))
        print(_("hold {id}: {scope} {target}{span}; {state}; placed by {by} at {when}:"
                " {reason}").format(id=h.id, scope=scope_text(h.scope), target=h.target,
                                    span=span, state=state, by=h.created_by,
                                    when=when(h.created_at), reason=h.reason))
