"""``dockd verify``: re-hash the store, check catalog, chain and checkpoints."""

from __future__ import annotations

import argparse

from dockd.commands.common import (
    add_config_options,
    add_json_option,
    config_from_args,
    print_json,
    writing_store,
)
from dockd.errors import IntegrityError
from dockd.i18n import _
from dockd.store.evidence import actor
from dockd.store.queries import require_existing_store
from dockd.store.verify import verify_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("verify", help="check every stored file and the custody log")
    add_config_options(p)
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    require_existing_store(config.dock.store_dir)
    with writing_store(config) as store:
        report = verify_store(store, actor())
    if args.json:
        print_json(report.to_json_dict())
    else:
        verdict = _("intact") if report.ok else _("{count} problem(s)").format(
            count=len(report.problems))
        print(_("checked {files} files ({bytes} bytes), {records} custody records, "
                "{checkpoints} checkpoints: {verdict}").format(
            files=report.items_checked, bytes=report.bytes_checked,
            records=report.records_checked, checkpoints=report.checkpoints_checked,
            verdict=verdict))
        for p in report.problems:
            print(f"  {p.kind}: {p.subject}: {p.detail}")
    if not report.ok:
        raise IntegrityError(f"verification found {len(report.problems)} problem(s) in "
                             f"{config.dock.store_dir}")
    return 0
