"""``dockd prune``: delete recordings past retention, unheld and (when an archive is
configured) archived (rules art. 12(3))."""

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
from dockd.i18n import _
from dockd.identity import Role, actor
from dockd.records.retention import (
    HELD,
    NOT_ARCHIVED,
    TOO_YOUNG,
    PruneReport,
    RetentionPolicy,
    prune,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("prune", help=_("delete recordings past retention (art. 12(3))"),
                       epilog=epilog(["dockd prune --dry-run", "dockd prune --json"],
                                     (*ROLE_CODES, 75)))
    p.add_argument("--dry-run", action="store_true", help=_("decide and list, delete nothing"))
    add_config_options(p)
    add_json_option(p)
    p.set_defaults(func=run, role=Role.ADMIN)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with writing_store(config) as store:
        report = prune(store, RetentionPolicy.from_settings(config.records),
                       (config.archive is not None), actor(), dry_run=args.dry_run)
    if args.json:
        print_json(report.to_json_dict())
    else:
        _print(report)
    return 0


def _print(report: PruneReport) -> None:
    verb = _("would delete") if report.dry_run else _("deleted")
    for d in report.deleted:
        print(f"{verb}: {d.sha256}  {d.size} B  ({d.category}, {_('due')} {d.due:%Y-%m-%d})")
    print(_("{verb} {n} item(s), {bytes} bytes; kept {held} held, {young} within retention,"
            " {unarchived} not yet archived").format(
        verb=verb, n=len(report.deleted), bytes=sum(d.size for d in report.deleted),
        held=report.count(HELD), young=report.count(TOO_YOUNG),
        unarchived=report.count(NOT_ARCHIVED)))
