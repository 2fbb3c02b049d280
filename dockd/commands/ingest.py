"""``dockd ingest SOURCE_DIR --recorder SERIAL``: one-shot offload of a mounted volume."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from dockd.commands.common import (
    add_config_options,
    add_json_option,
    config_from_args,
    print_json,
    writing_store,
)
from dockd.commands.helptext import STORE_CODES, epilog
from dockd.errors import IncompleteIngestError, StoreFullError
from dockd.i18n import _
from dockd.store.ingest import Ingestor, validate_serial
from dockd.store.outcomes import Outcome, SessionResult, StopReason


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ingest", help=_("offload a mounted recorder volume into the store"),
                       epilog=epilog(["dockd ingest /media/dockd/CAM001 --recorder CAM001",
                                      "dockd ingest /mnt/sd --recorder CAM001 --json"],
                                     (*STORE_CODES, 3, 66)))
    p.add_argument("source", metavar="SOURCE_DIR", type=Path, help=_("the recorder's mounted volume"))
    p.add_argument("--recorder", required=True, metavar="SERIAL", help=_("the recorder's serial"))
    add_config_options(p)
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    validate_serial(args.recorder)
    config = config_from_args(args)
    with writing_store(config) as store:
        # Every file's outcome only when it is printed: otherwise memory stays flat.
        report = Ingestor(store).ingest(args.source, args.recorder, list_files=args.json)
    summary = report.summary()
    if args.json:
        summary["files"] = [dataclasses.asdict(f) for f in report.files]
        print_json(summary)
    else:
        print(_("session {session}: {result}; stored {stored}, deduplicated {dedup}, "
                "already stored {known}, skipped {skipped}, failed {failed}").format(
            session=report.session_id, result=_(str(report.result)), stored=summary["stored"],
            dedup=summary["deduplicated"], known=summary["known"], skipped=summary["skipped"],
            failed=summary["failed"]))
        for f in report.files:
            if f.outcome in (Outcome.SKIPPED, Outcome.FAILED):
                print(f"  {_(str(f.outcome))}: {f.source_path} ({f.reason})", file=sys.stderr)
    if report.reason is StopReason.STORE_FULL:
        raise StoreFullError(_(
            "the evidence store {store} is full; the session was interrupted and nothing"
            " partial was kept. Free space or add storage, then dock again").format(
                store=config.dock.store_dir))
    if report.result is not SessionResult.COMPLETED:
        failed = [f"{f.source_path} ({f.reason})" for f in report.files if f.outcome is Outcome.FAILED]
        why = f"; interrupted: {report.reason}" if report.reason else ""
        raise IncompleteIngestError(_("{n} file(s) not stored{why}: {files}").format(
            n=len(failed), why=why,
            files="; ".join(failed[:10]) + (" …" if len(failed) > 10 else "")))
    return 0
