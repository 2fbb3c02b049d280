"""``dockd recorders``: the recorder registry (add, list, assign, retire, set-state)."""

from __future__ import annotations

import argparse
import shutil

from rich import box
from rich.console import Console
from rich.table import Table

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
from dockd.i18n import _, local_date
from dockd.identity import Role, actor
from dockd.store import registry


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("recorders", help=_("enrol recorders and assign them to officers"))
    rsub = p.add_subparsers(dest="recorders_command", metavar="ACTION", required=True)

    add = rsub.add_parser("add", help=_("enrol a recorder"), epilog=epilog([
        "dockd recorders add CAM001 --brand Hikvision --model DSJ-X1 --officer-id 0451"
        " --officer-name 赵六 --unit 城关派出所"], ROLE_CODES))
    add.add_argument("serial", metavar="SERIAL", help=_("the recorder's serial number"))
    add.add_argument("--brand", required=True, help=_("maker, as on the label"))
    add.add_argument("--model", required=True, help=_("model, as on the label"))
    _officer_options(add, required=False)
    add.set_defaults(func=_add, role=Role.ADMIN)

    ls = rsub.add_parser("list", help=_("list enrolled recorders"),
                         epilog=epilog(["dockd recorders list", "dockd recorders list --json"],
                                       ROLE_CODES))
    ls.set_defaults(func=_list, role=Role.AUDIT)

    assign = rsub.add_parser("assign", help=_("make an officer responsible for a recorder"),
                             epilog=epilog(["dockd recorders assign CAM001 --officer-id 0452"
                                            " --officer-name 孙八"], ROLE_CODES))
    assign.add_argument("serial", metavar="SERIAL", help=_("an enrolled recorder's serial"))
    _officer_options(assign, required=True)
    assign.set_defaults(func=_assign, role=Role.ADMIN)

    retire = rsub.add_parser("retire", help=_("take a recorder out of service for good"),
                             epilog=epilog(["dockd recorders retire CAM001"], ROLE_CODES))
    retire.add_argument("serial", metavar="SERIAL", help=_("an enrolled recorder's serial"))
    retire.set_defaults(func=_retire, role=Role.ADMIN)

    state = rsub.add_parser("set-state", help=_("in_service, faulty or in_repair"),
                            epilog=epilog(["dockd recorders set-state CAM001 in_repair",
                                           "dockd recorders set-state CAM001 in_service"],
                                          ROLE_CODES))
    state.add_argument("serial", metavar="SERIAL", help=_("an enrolled recorder's serial"))
    state.add_argument("state", choices=registry.STATES[:3],
                       help=_("in_service, faulty or in_repair (shown in the supervision report)"))
    state.set_defaults(func=_set_state, role=Role.ADMIN)

    for parser in (add, ls, assign, retire, state):
        add_config_options(parser)
        add_json_option(parser)


def _officer_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--officer-id", required=required, metavar="ID",
                        help=_("police number of the responsible officer"))
    parser.add_argument("--officer-name", metavar="NAME", help=_("the officer's name"))
    parser.add_argument("--unit", metavar="UNIT", help=_("the officer's unit (police station)"))


def _write(args: argparse.Namespace, change: str) -> int:
    config = config_from_args(args)
    with writing_store(config) as store:
        if change == "add":
            rec = registry.enroll(store, actor(), args.serial, args.brand, args.model,
                                  args.officer_id, args.officer_name, args.unit)
        elif change == "assign":
            rec = registry.assign(store, actor(), args.serial, args.officer_id, args.officer_name,
                                  args.unit)
        elif change == "retire":
            rec = registry.retire(store, actor(), args.serial)
        else:
            rec = registry.set_state(store, actor(), args.serial, args.state)
    if args.json:
        print_json(rec.to_json_dict())
    else:
        print(_("{serial}: {state}, officer {officer}").format(
            serial=rec.serial, state=registry.state_text(rec.state),
            officer=" ".join(x for x in (rec.officer_id, rec.officer_name) if x) or "—"))
    return 0


def _add(args: argparse.Namespace) -> int:
    return _write(args, "add")


def _assign(args: argparse.Namespace) -> int:
    return _write(args, "assign")


def _retire(args: argparse.Namespace) -> int:
    return _write(args, "retire")


def _set_state(args: argparse.Namespace) -> int:
    return _write(args, "set-state")


def _list(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with reading_catalog(config) as catalog:
        recs = registry.list_recorders(catalog) if catalog.has_table("recorders") else []
    if args.json:
        print_json([r.to_json_dict() for r in recs])
        return 0
    if not recs:
        print(_("no recorders enrolled"))
        return 0
    # rich measures Chinese names as two cells wide: columns stay aligned (ljust does not).
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in (_("recorder"), _("state"), _("brand"), _("model"), _("police number"),
                   _("officer"), _("unit"), _("enrolled")):
        table.add_column(column, no_wrap=True)
    for r in recs:
        table.add_row(r.serial, registry.state_text(r.state), r.brand or "—", r.model or "—",
                      r.officer_id or "—", r.officer_name or "—", r.unit or "—",
                      local_date(parse_utc_iso(r.enrolled_at).astimezone(config.dock.tz).date()))
    Console(width=max(shutil.get_terminal_size((160, 24)).columns, 100)).print(table)
    return 0
