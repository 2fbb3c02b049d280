"""``dockd archive sync [--limit N]`` and ``dockd archive status``: the central WORM archive."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from dockd.commands.common import (
    add_config_options,
    add_json_option,
    config_from_args,
    print_json,
    reading_catalog,
    writing_store,
)
from dockd.commands.helptext import ROLE_CODES, STORE_CODES, epilog
from dockd.errors import IntegrityError
from dockd.i18n import _
from dockd.identity import Role


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("archive", help=_("sync the store to the central WORM archive (S3 Object Lock)"))
    group = p.add_subparsers(dest="archive_command", metavar="ACTION", parser_class=type(p))
    group.required = True
    sync = group.add_parser("sync", help=_("archive items, manifests and ASC MHL; mirror legal holds"),
                            epilog=epilog(["dockd archive sync", "dockd archive sync --limit 100"
                                           " --json"], (*STORE_CODES, 1, 75)))
    add_config_options(sync)
    sync.add_argument("--limit", type=_positive, metavar="N", help=_("archive at most N items"))
    add_json_option(sync)
    sync.set_defaults(func=run_sync)
    status = group.add_parser("status", help=_("what is archived and what is pending"),
                              epilog=epilog(["dockd archive status --json"], ROLE_CODES))
    add_config_options(status)
    add_json_option(status)
    status.set_defaults(func=run_status, role=Role.AUDIT)


def run_sync(args: argparse.Namespace) -> int:
    # Imported here: boto3 takes a while to import and only this command needs it.
    from dockd.records.archive.sync import open_archive, sync_archive

    config = config_from_args(args)
    section, archive = open_archive(config)
    with writing_store(config, recover=False) as store:
        report = sync_archive(store, archive, section, limit=args.limit)
    if args.json:
        print_json({"archived": [asdict(a) for a in report.archived],
                    "failed": [asdict(f) for f in report.failed],
                    "sessions": list(report.sessions),
                    "hold_changes": [asdict(h) for h in report.hold_changes],
                    "parts_uploaded": report.parts_uploaded,
                    "custody_segments": list(report.custody_segments)})
    else:
        print(f"archived {len(report.archived)} item(s), {len(report.sessions)} session "
              f"manifest folder(s), {len(report.custody_segments)} custody log segment(s); "
              f"{len(report.hold_changes)} legal hold change(s); "
              f"{len(report.failed)} failed")
        for failure in report.failed:
            print(f"  failed: {failure.sha256}: {failure.reason}", file=sys.stderr)
    if report.failed:
        raise IntegrityError(_("{n} item(s) not archived: their stored bytes differ from the"
                               " catalog or are missing; run dockd verify")
                             .format(n=len(report.failed)))
    return 0


def run_status(args: argparse.Namespace) -> int:
    from dockd.records.archive.status import archive_status

    config = config_from_args(args)
    with reading_catalog(config) as catalog:
        status = archive_status(catalog)
    if args.json:
        print_json(status.to_json_dict())
        return 0
    print(f"items archived {status.items_archived} of {status.items_stored}; "
          f"pending {status.items_pending} ({status.bytes_pending} bytes); "
          f"uploads in flight {status.uploads_in_flight}; legal holds {status.legal_holds}; "
          f"session folders pending {status.sessions_pending}; "
          f"last archived {status.last_archived_at or 'never'}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(_("{value!r} is not a whole number")
                                         .format(value=text)) from None
    if value < 1:
        raise argparse.ArgumentTypeError(_("must be at least 1"))
    return value
