"""``dockd export``: an evidence package with manifest, sign-off sheet, ASC MHL and
optional ISO image, registered in the custody log (rules art. 12(4), 13, 14);
``dockd export verify``: re-check a package or image against its manifest."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dockd.commands.common import (
    add_config_options,
    add_json_option,
    config_from_args,
    print_json,
    reading_catalog,
    writing_store,
)
from dockd.commands.helptext import ROLE_CODES, STORE_CODES, epilog, required
from dockd.commands.records_args import select_shas
from dockd.config import resolve_config_path
from dockd.config.records import parse_size
from dockd.errors import IntegrityError, UsageError
from dockd.i18n import _
from dockd.identity import Role, actor
from dockd.records.export import ExportRequest, check_registration, create_export
from dockd.records.iso import IsoReader
from dockd.records.package import (
    MANIFEST,
    Difference,
    DirectoryReader,
    PackageCheck,
    verify_package,
)
from dockd.records.selection import validate_case_no
from dockd.store.catalog import catalog_path
from dockd.store.events import ExportCreated


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    # --requester … --out are checked by run() (citing art. 13/14), not by argparse: this
    # parser also holds `export verify`, which needs none of them.
    p = sub.add_parser(
        "export", help=_("export evidence for a case or items (art. 12(4), 13, 14)"),
        usage="%(prog)s (--case CASE_NO | --items SHA256 [SHA256 ...]) --requester NAME\n"
              "                    --requester-unit UNIT --reason TEXT --approved-by NAME\n"
              "                    --out DIR [--public] [--iso FILE] [--split-at SIZE]\n"
              "                    [--allow-incomplete] [--config PATH] [--store DIR] [--json]",
        epilog=epilog([
            "dockd export --case XA-2026-0042 --requester 张检察官 --requester-unit"
            " 某某县人民检察院 --reason 审查起诉 --approved-by 王所长 --out /media/disc"
            " --iso /tmp/XA-2026-0042.iso",
            "dockd export --case XA-2026-0042 --requester 张检察官 --requester-unit"
            " 某某县人民检察院 --reason 审查起诉 --approved-by 王所长 --out /srv/export/0042"
            " --iso /srv/export/XA-2026-0042.iso --split-at 4.7G",
            "dockd export verify /media/cdrom"], (*ROLE_CODES, 1, 69)))
    which = p.add_mutually_exclusive_group()
    which.add_argument("--case", metavar="CASE_NO",
                       help=_("every recording of a case (this or --items)"))
    which.add_argument("--items", nargs="+", metavar="SHA256",
                       help=_("stored items: full hashes or unique prefixes of 12+ digits"))
    p.add_argument("--requester", metavar="NAME", help=required(_("who asks for the evidence")))
    p.add_argument("--requester-unit", metavar="UNIT", help=required(_("the requester's unit")))
    p.add_argument("--reason", metavar="TEXT", help=required(_("why it is needed")))
    p.add_argument("--approved-by", metavar="NAME",
                   help=required(_("the approving leader (art. 14; with --public the principal"
                                   " leader, art. 13)")))
    p.add_argument("--public", action="store_true",
                   help=_("for public use (art. 13: the principal leader approves)"))
    p.add_argument("--out", type=Path, metavar="DIR",
                   help=required(_("a new or empty directory for the package")))
    p.add_argument("--iso", type=Path, metavar="FILE", help=_("also write an ISO 9660 image"))
    p.add_argument("--split-at", type=_size, metavar="SIZE",
                   help=_("split into numbered discs of at most SIZE (4.7G for DVD, 25G for"
                          " Blu-ray): --out DIR/discN and FILE-N.iso, each complete"))
    p.add_argument("--allow-incomplete", action="store_true",
                   help=_("export even when art. 12(4) fields are missing; the manifest records"
                          " and the sheet prints which"))
    add_config_options(p)
    add_json_option(p)
    p.set_defaults(func=run, role=Role.ADMIN)

    # prog given: argparse would otherwise prefix the action with the custom usage above.
    vsub = p.add_subparsers(dest="export_command", metavar="verify", parser_class=type(p),
                            prog=p.prog)
    v = vsub.add_parser("verify", help=_("re-check a package directory or ISO image"),
                        epilog=epilog(["dockd export verify /media/cdrom",
                                       "dockd export verify XA-2026-0042.iso --store"
                                       " /var/lib/dockd   # also against the custody log"],
                                      (*STORE_CODES, 1)))
    v.add_argument("package", type=Path, metavar="DIR|ISO", help=_("the package or its image"))
    add_config_options(v)
    add_json_option(v)
    v.set_defaults(func=run_verify, role=None)  # a package, not the store


def run(args: argparse.Namespace) -> int:
    if not (args.case or args.items):
        raise UsageError(_("name what to export: --case CASE_NO or --items SHA256..."))
    if args.out is None:
        raise UsageError(_("--out DIR is required"))
    # Registration first: a refused export must not even open the store.
    check_registration(args.requester or "", args.requester_unit or "", args.reason or "",
                       args.approved_by or "", args.public)
    if args.case:
        validate_case_no(args.case)
    config = config_from_args(args)
    with writing_store(config) as store:
        shas, case_no = select_shas(store.catalog, config, args, strict=True)
        results = create_export(store, ExportRequest(
            tuple(shas), case_no, args.requester, args.requester_unit, args.reason,
            args.approved_by, args.public, args.out, args.iso, args.allow_incomplete,
            args.split_at), actor())
    if args.json:
        print_json(results[0].to_json_dict() if len(results) == 1
                   else {"discs": [r.to_json_dict() for r in results]})
        return 0
    for n, result in enumerate(results, start=1):
        if len(results) > 1:
            print(_("disc {n} of {total}:").format(n=n, total=len(results)))
        print(_("export {id}: {n} recording(s), {bytes} bytes in {out}; manifest SHA-256 {sha};"
                " registered as custody record {seq}").format(
            id=result.export_id, n=result.recordings, bytes=result.bytes, out=result.out,
            sha=result.manifest_sha256, seq=result.custody_seq))
        if result.iso:
            print(_("ISO image: {path}").format(path=result.iso))
    return 0


def _size(text: str) -> int:
    size = parse_size(text)
    if size is None:
        raise argparse.ArgumentTypeError(_("{value!r} is not a size; use e.g. 4.7G or 25G")
                                         .format(value=text))
    return size


def run_verify(args: argparse.Namespace) -> int:
    path: Path = args.package
    if path.is_dir():
        check = verify_package(DirectoryReader(path))
    elif path.is_file():
        try:
            reader = IsoReader(path)
        except Exception as exc:  # pycdlib raises its own and OS errors on a bad image
            raise IntegrityError(_("{path} is not a readable ISO image: {error}")
                                 .format(path=path, error=exc)) from None
        try:
            check = verify_package(reader)
        finally:
            reader.close()
    else:
        raise UsageError(_("{path} is neither a package directory nor an ISO image")
                         .format(path=path))
    registered = _registered_manifest(args, check)
    if args.json:
        out = check.to_json_dict()
        out["registered_manifest_sha256"] = registered
        print_json(out)
    else:
        _print_check(path, check, registered)
    if not check.ok:
        raise IntegrityError(_("{path}: {n} difference(s) from its manifest")
                             .format(path=path, n=len(check.differences)))
    return 0


def _registered_manifest(args: argparse.Namespace, check: PackageCheck) -> str | None:
    """The manifest SHA-256 the local custody log registered for this export, if this dock
    made it; a mismatch is a difference (the manifest was rewritten after export)."""
    if check.export_id is None:
        return None
    if resolve_config_path(getattr(args, "config", None)) is None and args.store is None:
        return None
    config = config_from_args(args)
    if not catalog_path(config.dock.store_dir).exists():
        return None
    with reading_catalog(config) as catalog:
        row = catalog.query_one("SELECT payload FROM custody WHERE type = ? AND subject = ?",
                                (ExportCreated.TYPE, check.export_id))
    if row is None:
        return None
    registered = json.loads(row[0]).get("manifest_sha256")
    if registered != check.manifest_sha256:
        check.differences.append(Difference(
            "manifest", MANIFEST, f"SHA-256 {check.manifest_sha256} differs from the"
            f" {registered} registered in the custody log"))
    return str(registered) if registered else None


def _print_check(path: Path, check: PackageCheck, registered: str | None) -> None:
    state = _("intact") if check.ok else _("{n} difference(s)").format(n=len(check.differences))
    print(_("{path}: export {id}, {n} recording(s), {bytes} bytes checked: {state}").format(
        path=path, id=check.export_id or "?", n=check.recordings, bytes=check.bytes_checked,
        state=state))
    print(_("manifest SHA-256 {sha}").format(sha=check.manifest_sha256 or "—")
          + (_(" (matches the custody log)") if registered == check.manifest_sha256
             and registered else ""))
    for d in check.differences:
        print(f"  {d.kind}: {d.path}: {d.detail}")
