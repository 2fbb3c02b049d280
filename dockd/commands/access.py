"""``dockd access register``: register a viewing of recordings (rules art. 14)."""

from __future__ import annotations

import argparse

from dockd.commands.common import (
    add_config_options,
    add_json_option,
    config_from_args,
    print_json,
    writing_store,
)
from dockd.commands.helptext import ROLE_CODES, epilog
from dockd.commands.records_args import select_shas
from dockd.i18n import _
from dockd.identity import Role, actor
from dockd.records.access import AccessRequest, register_access
from dockd.records.export import check_registration


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("access", help=_("the access register (art. 14)"))
    asub = p.add_subparsers(dest="access_command", metavar="ACTION", parser_class=type(p))
    asub.required = True
    reg = asub.add_parser("register", help=_("register who views which recordings and why"),
                          epilog=epilog(["dockd access register --case XA-2026-0042 --requester"
                                         " 李法官 --unit 某某县人民法院 --reason 庭审质证"
                                         " --approved-by 王所长"], ROLE_CODES))
    which = reg.add_mutually_exclusive_group(required=True)
    which.add_argument("--item", dest="items", nargs="+", metavar="SHA256",
                       help=_("stored items"))
    which.add_argument("--case", metavar="CASE_NO", help=_("every recording of a case"))
    reg.add_argument("--requester", required=True, metavar="NAME", help=_("who views"))
    reg.add_argument("--unit", required=True, help=_("the requester's unit"))
    reg.add_argument("--reason", required=True, metavar="TEXT", help=_("why"))
    reg.add_argument("--approved-by", required=True, metavar="NAME",
                     help=_("the approving leader"))
    add_config_options(reg)
    add_json_option(reg)
    reg.set_defaults(func=run_register, role=Role.ADMIN)


def run_register(args: argparse.Namespace) -> int:
    check_registration(args.requester, args.unit, args.reason, args.approved_by, False,
                       unit_option="--unit")
    config = config_from_args(args)
    with writing_store(config) as store:
        shas, case_no = select_shas(store.catalog, config, args, strict=True)
        record = register_access(store, AccessRequest(tuple(shas), case_no, args.requester,
                                                      args.unit, args.reason,
                                                      args.approved_by), actor())
    if args.json:
        print_json(record.to_json_dict())
    else:
        print(_("access registered as custody record {seq}: {n} recording(s)")
              .format(seq=record.seq, n=len(shas)))
    return 0
