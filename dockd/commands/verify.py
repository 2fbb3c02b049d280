"""``dockd verify``: re-hash the store, check catalog, chain and checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dockd.commands.common import (
    add_config_options,
    add_json_option,
    config_from_args,
    print_json,
    writing_store,
)
from dockd.commands.helptext import ROLE_CODES, epilog
from dockd.config import Config
from dockd.errors import CatalogDamagedError, IntegrityError
from dockd.i18n import _
from dockd.identity import Role, actor
from dockd.store.catalog import catalog_errors, catalog_path
from dockd.store.queries import require_existing_store
from dockd.store.read_only import read_only_view, store_is_read_only
from dockd.store.verify import StoreView, check_store, store_view, verify_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("verify", help=_("check every stored file and the custody log"),
                       epilog=epilog([
                           "dockd verify",
                           "dockd verify --against-archive --json",
                           "dockd verify --against-ledger https://ledger.example/ "
                           "--ledger-credentials /etc/dockd/ledger.cred"],
                           (*ROLE_CODES, 1, 69, 75)))
    p.add_argument("--against-ledger", metavar="URL",
                   help=_("also prove the log was not rolled back: compare it with the bureau's "
                        "ledger page (https://…)"))
    p.add_argument("--ledger-credentials", type=Path, metavar="FILE",
                   help=_("user (line 1) and password (line 2) for the ledger page"))
    p.add_argument("--ledger-ca", type=Path, metavar="PEM", help=_("CA of the ledger's certificate"))
    p.add_argument("--against-archive", action="store_true",
                   help=_("also compare the log with its custody segments in the [archive] bucket"))
    add_config_options(p)
    add_json_option(p)
    p.set_defaults(func=run, role=Role.AUDIT)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    root = config.dock.store_dir
    require_existing_store(root)
    # A write-blocked copy (or a store this user may only read) is checked all the same;
    # only the verification's own custody event cannot be written there.
    read_only = store_is_read_only(root)
    try:
        if read_only:
            with catalog_errors(catalog_path(root)), \
                    read_only_view(root, config.dock.signing_key_path,
                                   config.dock.checkpoint_mirror) as view:
                report = check_store(view)
                witnesses = _witnesses(args, config, view)
        else:
            with writing_store(config) as store:
                report = verify_store(store, actor())
                witnesses = _witnesses(args, config, store_view(store))
    except CatalogDamagedError as exc:
        # For verify a damaged catalog is what it looks for: an integrity problem.
        raise IntegrityError(_("verification failed: {error}").format(error=exc)) from None
    witness_problems = [p for w in witnesses for p in w.problems]
    if args.json:
        out = report.to_json_dict()
        out["recorded"] = not read_only
        if witnesses:
            out["witnesses"] = [{"witness": w.witness, "compared": w.compared,
                                 "witness_max_seq": w.witness_max_seq,
                                 "problems": [p.to_json_dict() for p in w.problems]}
                                for w in witnesses]
        print_json(out)
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
        for w in witnesses:
            verdict = _("agrees") if not w.problems else _("{count} problem(s)").format(
                count=len(w.problems))
            print(_("against {witness}: {compared} records compared (it holds up to seq "
                    "{seq}): {verdict}").format(witness=w.witness, compared=w.compared,
                                                seq=w.witness_max_seq, verdict=verdict))
            for wp in w.problems:
                print(f"  {wp.kind}: {wp.subject}: {wp.detail}")
        for note in report.notes:
            print(_("note: {note}").format(note=note))
        if read_only:
            print(_("the store {store} is read-only: this verification could not be recorded "
                    "in its custody log").format(store=root))
    if not report.ok or witness_problems:
        raise IntegrityError(_("verification found {n} problem(s) in {store}").format(
            n=len(report.problems) + len(witness_problems), store=root))
    return 0


def _witnesses(args: argparse.Namespace, config: Config, store: StoreView) -> list[Any]:
    """Compare the log with the ledger and/or the archive when asked."""
    if not args.against_ledger and not args.against_archive:
        return []
    from dockd.records.witness import against_archive, against_ledger

    rows = store.catalog.query("SELECT seq, hash FROM custody")
    hashes = {int(r[0]): str(r[1]) for r in rows}
    own_max = max(hashes, default=0)
    out = []
    if args.against_ledger:
        out.append(against_ledger(args.against_ledger, config.dock.id, own_max, hashes.get,
                                  args.ledger_credentials, args.ledger_ca))
    if args.against_archive:
        from dockd.records.archive.sync import open_archive

        section, archive = open_archive(config)
        out.append(against_archive(archive, section.prefix(config.dock.id), config.dock.id,
                                   store.public_key, own_max, hashes.get))
    return out
