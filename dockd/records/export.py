"""Creating an evidence export (rules art. 12(4), 13, 14).

Everything is checked before anything is written: the approver and the other required
registration fields, the items, and that ``--out`` is an empty (or new) writable
directory and ``--iso`` a new file. Each recording is copied from the store and hashed in
the same pass; the hash must equal the catalog's or the export stops (the store is then
damaged: run ``dockd verify``). Then come ``manifest.json``, the sign-off sheet, the
custody history with the dock's key and a checkpoint, the read-me files, ``SHA256SUMS``,
the ASC MHL history, the optional ISO image, a re-check of the package (and image), and
last the ``export.created`` custody event (one per disc of a split export, all in one
transaction). If any step fails, what was written is removed: an export exists only if it
is registered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockd.clock import utc_iso
from dockd.errors import IntegrityError, UsageError
from dockd.i18n import _
from dockd.records.disc import (
    DiscInfo,
    human_bytes,
    items_history,
    write_custody,
    write_readmes,
    write_sums,
)
from dockd.records.fields import FIELD_LABELS, RecordingFields, recording_fields
from dockd.records.iso import IsoReader, volume_label, write_iso
from dockd.records.package import (
    FILES_DIR,
    MANIFEST,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    SHEET,
    DirectoryReader,
    PackageCheck,
    hash_stream,
    verify_package,
)
from dockd.store.events import ExportCreated
from dockd.store.evidence import EvidenceStore
from dockd.store.fsutil import write_all
from dockd.store.hashing import MultiHasher, digest_bytes
from dockd.store.mhl import MhlEntry, write_session_mhl

log = logging.getLogger(__name__)

PACKAGE_DIR_MODE = 0o755
PACKAGE_FILE_MODE = 0o444
JOLIET_NAME_MAX = 64
MHL_FORMATS = ("xxh128", "c4")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f*/:;?\\\"<>|]")


@dataclass(frozen=True)
class ExportRequest:
    """``dockd export``'s arguments: what, for whom, why, approved by whom, where."""

    shas: tuple[str, ...]
    case_no: str | None
    requester: str
    requester_unit: str
    reason: str
    approved_by: str
    public_use: bool
    out: Path
    iso: Path | None = None
    allow_incomplete: bool = False
    split_at: int | None = None  # bytes per disc: numbered discs and images


@dataclass(frozen=True)
class ExportResult:
    """A registered export."""

    export_id: str
    out: Path
    iso: Path | None
    recordings: int
    bytes: int
    manifest_sha256: str
    custody_seq: int

    def to_json_dict(self) -> dict[str, Any]:
        return {"export_id": self.export_id, "out": str(self.out),
                "iso": str(self.iso) if self.iso else None, "recordings": self.recordings,
                "bytes": self.bytes, "manifest_sha256": self.manifest_sha256,
                "custody_seq": self.custody_seq}


def check_registration(requester: str, unit: str, reason: str, approved_by: str,
                       public_use: bool, unit_option: str = "--requester-unit") -> None:
    """The art. 13/14 registration is complete; UsageError naming what is missing."""
    if not approved_by or not approved_by.strip():
        rule = _("art. 13: public use needs the principal leader's approval") if public_use \
            else _("art. 14: access to recordings needs the leader's approval")
        raise UsageError(_("--approved-by is required ({rule}); nothing was exported or"
                           " registered").format(rule=rule))
    for option, value in (("--requester", requester), (unit_option, unit),
                          ("--reason", reason)):
        if not value or not value.strip():
            raise UsageError(_("{option} is required (art. 14: the custodian registers who,"
                               " which unit and why)").format(option=option))


def check_complete(fields: list[RecordingFields]) -> None:
    """UsageError listing every recording whose art. 12(4) fields are not all known."""
    lacking = [f for f in fields if f.missing()]
    if not lacking:
        return
    listed = "; ".join(
        "{name} ({sha}…): {fields}".format(
            name=f.source_name.rsplit("/", 1)[-1], sha=f.sha256[:12],
            fields=", ".join(_(FIELD_LABELS[k]) for k in f.missing()))
        for f in lacking)
    raise UsageError(_(
        "{n} of {total} recording(s) lack art. 12(4) fields: {list}. Enter them with 'dockd"
        " case annotate --items SHA256' and --place, --operator, --officer, --start, --end,"
        " --format, --length, --brand or --model, or export with --allow-incomplete to record"
        " and print what is missing; nothing was exported").format(
            n=len(lacking), total=len(fields), list=listed))


def create_export(store: EvidenceStore, request: ExportRequest,
                  actor: str) -> list[ExportResult]:
    """Write, check and register the package ``request`` asks for: one, or with
    ``split_at`` one per disc (``--out``/disc1…, ``<iso>-1.iso``…), each complete and
    verifiable on its own and registered as its own export, all in one transaction."""
    check_registration(request.requester, request.requester_unit, request.reason,
                       request.approved_by, request.public_use)
    if not request.shas:
        raise UsageError(_("nothing to export: the selection has no stored recordings"))
    by_officer = store.config.records.operator_defaults_to_officer
    fields = sorted((recording_fields(store.catalog, sha, request.case_no, by_officer)
                     for sha in request.shas), key=RecordingFields.chronological_key)
    if not request.allow_incomplete:
        check_complete(fields)
    parts = plan_discs(fields, request.split_at, store.config.records.disc_size,
                       request.iso is not None)
    targets = _disc_targets(request, len(parts))
    for _out, iso in targets:
        _check_iso_target(iso, request.out)
    created_out = _prepare_out(request.out)
    try:
        built = []
        group = str(uuid.uuid4()) if len(parts) > 1 else None
        for n, (part, (out, iso)) in enumerate(zip(parts, targets, strict=True), start=1):
            if out != request.out:
                os.mkdir(out, PACKAGE_DIR_MODE)
            built.append(_build(store, request, part, out, iso, n, len(parts), group))
        with store.catalog.transaction() as tx:
            results = []
            for i, (event, result) in enumerate(built):
                record = store.custody.record(tx, event, actor, checkpoint=i == len(built) - 1)
                results.append(dataclasses.replace(result, custody_seq=record.seq))
    except BaseException:
        for _out, iso in targets:
            if iso is not None and iso.exists():
                iso.unlink()
        _remove_partial(request.out, created_out, None)
        raise
    for r in results:
        log.info("evidence export registered", extra={"export_id": r.export_id,
                                                      "seq": r.custody_seq,
                                                      "recordings": r.recordings})
    return results


def plan_discs(fields: list[RecordingFields], split_at: int | None, disc_size: int,
               imaging: bool) -> list[list[RecordingFields]]:
    """The recordings of each disc, in order. Without ``split_at`` one disc, refused when
    an image is asked for and it would not fit ``disc_size``; with it, as many discs as
    needed, each filled in recording order up to ``split_at`` less room for the notes."""
    total = sum(f.size for f in fields) + disc_reserve(len(fields))
    if split_at is None:
        if imaging and total > disc_size:
            raise UsageError(_(
                "the export needs {size} with its notes, more than the {disc} disc"
                " ([records] disc_size): split it with --split-at 4.7G (DVD) or --split-at"
                " 25G (Blu-ray); nothing was exported").format(
                    size=human_bytes(total), disc=human_bytes(disc_size)))
        return [fields]
    parts: list[list[RecordingFields]] = [[]]
    used = 0
    for f in fields:
        need = f.size + disc_reserve(1) - disc_reserve(0)
        if disc_reserve(0) + need > split_at:
            raise UsageError(_(
                "{name} alone is {size}, more than a {disc} disc holds with its notes; a"
                " recording is never cut: choose a larger --split-at; nothing was exported"
            ).format(name=f.source_name.rsplit("/", 1)[-1], size=human_bytes(f.size),
                     disc=human_bytes(split_at)))
        if parts[-1] and disc_reserve(0) + used + need > split_at:
            parts.append([])
            used = 0
        parts[-1].append(f)
        used += need
    return parts


def disc_reserve(recordings: int) -> int:
    """Room kept on a disc besides the recordings: the sheet, the custody history, the
    manifest, the read-me files, the ASC MHL and the ISO 9660/Joliet structures (measured:
    about 120 KB for four recordings; kept generous)."""
    return (1 << 20) + recordings * (32 << 10)


def _disc_targets(request: ExportRequest, discs: int) -> list[tuple[Path, Path | None]]:
    if discs == 1:
        return [(request.out, request.iso)]
    iso = request.iso
    return [(request.out / f"disc{n}",
             iso.with_name(f"{iso.stem}-{n}{iso.suffix or '.iso'}") if iso else None)
            for n in range(1, discs + 1)]


def _build(store: EvidenceStore, request: ExportRequest, fields: list[RecordingFields],
           out: Path, iso: Path | None, disc: int, discs: int,
           group: str | None) -> tuple[ExportCreated, ExportResult]:
    # reportlab is heavy: load it only when a sheet is written, not for every CLI start.
    from dockd.records.sheet import SheetHeader, SheetRow, write_sheet

    export_id = str(uuid.uuid4())
    now = store.clock.now()
    created_at = utc_iso(now)
    label = volume_label(request.case_no, group or export_id, disc, discs)
    with_sm3 = "sm3" in store.config.ingest.hashes
    requester, unit = request.requester.strip(), request.requester_unit.strip()
    reason, approver = request.reason.strip(), request.approved_by.strip()
    mhl_entries: list[MhlEntry] = []
    recordings: list[dict[str, Any]] = []
    rows: list[SheetRow] = []
    for n, f in enumerate(fields, start=1):
        rel = f"{FILES_DIR}/{package_name(n, f.source_name)}"
        digests = _copy_verified(store, f, out / rel, with_sm3)
        mhl_entries.append(_mhl_entry(out, rel, digests, store))
        recordings.append(_manifest_entry(rel, f, digests, with_sm3))
        rows.append(SheetRow(rel, f, f.missing()))
    manifest = {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "export_id": export_id,
        "created_at": created_at, "dock": store.config.dock.id, "site": store.config.dock.site,
        "case": request.case_no, "requester": requester, "requester_unit": unit,
        "reason": reason, "approved_by": approver, "public_use": request.public_use,
        "unit_name": store.config.records.unit_name or None, "volume_label": label,
        "hash_algorithms": ["sha256", "sm3"] if with_sm3 else ["sha256"],
        "recordings": recordings,
        # Exported with --allow-incomplete: which art. 12(4) fields each recording lacks.
        "allow_incomplete": request.allow_incomplete,
        "missing_fields": [{"file": r.file, "fields": list(r.missing)} for r in rows if r.missing],
        # Fields a person entered (dockd case annotate) where no source knew them.
        "annotated_fields": [{"file": r.file, "fields": list(r.fields.annotated)}
                             for r in rows if r.fields.annotated],
        # A split export: this disc's number, how many, and the id they share.
        "disc": disc, "discs": discs, "split_group": group,
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    manifest_sha = digest_bytes(manifest_bytes, ["sha256"])["sha256"]
    _write_new(out / MANIFEST, manifest_bytes)
    tz, font = store.config.dock.tz, store.config.records.pdf_font
    header = SheetHeader(export_id, now, request.case_no, requester, unit, reason, approver,
                         request.public_use, manifest_sha, store.config.records.unit_name,
                         tz, label, disc, discs)
    write_sheet(out / SHEET, header, rows, font)
    _write_disc_notes(store, out, fields, DiscInfo(
        store.config.records.unit_name, request.case_no, export_id, now, tz, label, disc, discs,
        [r.file for r in rows], sum(f.size for f in fields)))
    listed = {e.path for e in mhl_entries}
    for rel in DirectoryReader(out).files():
        if rel not in listed:
            os.chmod(out / rel, PACKAGE_FILE_MODE)
            mhl_entries.append(_mhl_entry(out, rel, None, store))
    write_session_mhl(out, sorted(mhl_entries, key=lambda e: e.path), MHL_FORMATS,
                      store.clock.now())
    _must_verify(DirectoryReader(out), str(out))
    iso_sha = None
    if iso is not None:
        write_iso(out, iso, label)
        reader = IsoReader(iso)
        try:
            _must_verify(reader, str(iso))
        finally:
            reader.close()
        with open(iso, "rb") as fh:
            iso_sha = hash_stream(fh, ["sha256"])[0]["sha256"]
    total = sum(f.size for f in fields)
    event = ExportCreated(
        export_id=export_id, case=request.case_no, items=tuple(f.sha256 for f in fields),
        requester=requester, requester_unit=unit, reason=reason, approved_by=approver,
        public_use=request.public_use, manifest_sha256=manifest_sha, out=str(out),
        iso=str(iso) if iso else None, iso_sha256=iso_sha, recordings=len(fields),
        bytes=total)
    return event, ExportResult(export_id, out, iso, len(fields), total, manifest_sha, 0)


def _write_disc_notes(store: EvidenceStore, out: Path, fields: list[RecordingFields],
                      info: DiscInfo) -> None:
    """The items' custody history with the dock's key and a checkpoint covering it, the
    read-me files, and SHA256SUMS of everything (written last)."""
    checkpoint = store.custody.checkpoint_head()
    if checkpoint is None:  # items are in the log, so it is never empty; say so if it is
        raise IntegrityError(_("the custody log is empty although items are stored; run"
                               " 'dockd verify'; nothing was registered"))
    history = items_history(store.catalog, [f.sha256 for f in fields])
    write_custody(out, history, checkpoint, info.tz, store.config.records.pdf_font, _write_new)
    write_readmes(out, info, _write_new)
    write_sums(out, _write_new)


def package_name(n: int, source_name: str) -> str:
    """``NNNN_<name>``: numbered, Joliet-safe (no ``*/:;?\\"<>|``), at most 64 characters,
    extension kept."""
    base = _UNSAFE_NAME.sub("_", source_name.rsplit("/", 1)[-1]) or "file"
    prefix = f"{n:04d}_"
    room = JOLIET_NAME_MAX - len(prefix)
    if len(base) > room:
        stem, dot, ext = base.rpartition(".")
        ext = ext[:10] if dot and stem else ""
        base = base[: room - len(ext) - (1 if ext else 0)] + (f".{ext}" if ext else "")
    return prefix + base


# -- checks before writing --------------------------------------------------------------

def _prepare_out(out: Path) -> bool:
    """Make sure ``out`` is an empty writable directory; True when it was created here."""
    if out.exists() or out.is_symlink():
        if out.is_symlink() or not out.is_dir():
            raise UsageError(_("--out {path} exists and is not a directory").format(path=out))
        if any(out.iterdir()):
            raise UsageError(_("--out {path} is not empty: an export goes into a new or empty"
                               " directory").format(path=out))
        _probe_writable(out)
        return False
    if not out.parent.is_dir():
        raise UsageError(_("--out {path}: the parent directory does not exist").format(path=out))
    try:
        os.mkdir(out, PACKAGE_DIR_MODE)
    except OSError as exc:
        raise UsageError(_("--out {path} cannot be created: {error}")
                         .format(path=out, error=exc.strerror)) from None
    return True


def _probe_writable(out: Path) -> None:
    probe = out / f".dockd-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        raise UsageError(_("--out {path} is not writable: {error}")
                         .format(path=out, error=exc.strerror)) from None
    probe.unlink()


def _check_iso_target(iso: Path | None, out: Path) -> None:
    if iso is None:
        return
    if iso.exists() or iso.is_symlink():
        raise UsageError(_("--iso {path} already exists").format(path=iso))
    if not iso.parent.is_dir():
        raise UsageError(_("--iso {path}: the parent directory does not exist").format(path=iso))
    if iso.resolve().is_relative_to(out.resolve()):
        raise UsageError(_("--iso {path} cannot be inside --out").format(path=iso))
    if not os.access(iso.parent, os.W_OK):
        raise UsageError(_("--iso {path}: the directory is not writable").format(path=iso))


def _remove_partial(out: Path, created_out: bool, iso: Path | None) -> None:
    """Undo a failed export: the ISO, then what was written into ``out``."""
    if iso is not None and iso.exists():
        iso.unlink()
    if not out.is_dir():
        return
    for child in out.iterdir():
        _make_writable(child)
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    if created_out:
        out.rmdir()


def _make_writable(path: Path) -> None:
    # Written files are read-only; their directories must be writable to remove them.
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirs, _files in os.walk(path):
            for d in dirs:
                os.chmod(os.path.join(dirpath, d), PACKAGE_DIR_MODE | 0o200)
        os.chmod(path, PACKAGE_DIR_MODE | 0o200)


# -- writing ----------------------------------------------------------------------------

def _copy_verified(store: EvidenceStore, f: RecordingFields, target: Path,
                   with_sm3: bool) -> dict[str, str]:
    """Copy the stored file to ``target`` hashing in the same pass; IntegrityError when the
    stored bytes no longer match the catalog."""
    algorithms = ["sha256", *(["sm3"] if with_sm3 or f.sm3 else []), *MHL_FORMATS]
    hasher = MultiHasher(algorithms)
    target.parent.mkdir(mode=PACKAGE_DIR_MODE, exist_ok=True)
    size = 0
    src = store.content.object_path(f.sha256)
    try:
        src_fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise IntegrityError(_("stored file {path} is missing; run 'dockd verify'")
                             .format(path=src)) from None
    try:
        dst_fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            while chunk := os.read(src_fd, 1 << 20):
                hasher.update(chunk)
                write_all(dst_fd, chunk)
                size += len(chunk)
            os.fsync(dst_fd)
            os.fchmod(dst_fd, PACKAGE_FILE_MODE)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    digests = hasher.digests()
    if size != f.size or digests["sha256"] != f.sha256 or (f.sm3 and digests["sm3"] != f.sm3):
        raise IntegrityError(_("stored file {sha} does not match the catalog: the store is"
                               " damaged; run 'dockd verify'").format(sha=f.sha256))
    return digests


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        write_all(fd, data)
        os.fsync(fd)
        os.fchmod(fd, PACKAGE_FILE_MODE)
    finally:
        os.close(fd)


def _manifest_entry(rel: str, f: RecordingFields, digests: dict[str, str],
                    with_sm3: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"file": rel, **f.art_12_4(), "size": f.size, "sha256": f.sha256}
    if with_sm3:
        entry["sm3"] = digests["sm3"]
    return entry


def _mhl_entry(out: Path, rel: str, digests: dict[str, str] | None,
               store: EvidenceStore) -> MhlEntry:
    path = out / rel
    if digests is None:
        with open(path, "rb") as fh:
            digests, _size = hash_stream(fh, list(MHL_FORMATS))
    st = path.stat()
    return MhlEntry(rel, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
                    {k: digests[k] for k in MHL_FORMATS}, store.clock.now())


def _must_verify(reader: DirectoryReader | IsoReader, where: str) -> PackageCheck:
    check = verify_package(reader)
    if not check.ok:
        first = check.differences[0]
        raise IntegrityError(_("the package written to {where} does not check out"
                               " ({kind}: {path}: {detail}); nothing was registered")
                             .format(where=where, kind=first.kind, path=first.path,
                                     detail=first.detail))
    return check
