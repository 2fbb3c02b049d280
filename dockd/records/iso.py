"""An ISO 9660 image of an export package, with Joliet names (pycdlib, pure Python).

ISO 9660 names are short upper-case stand-ins (``F0001.MP4``); the Joliet tree, which
Windows and Linux show, has the package's real names. Reading back uses Joliet only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO, cast

import pycdlib

ISO_INTERCHANGE_LEVEL = 3
JOLIET_LEVEL = 3
VOLUME_ID_MAX = 32
_ISO_NAME_CHARS = re.compile(r"[^A-Z0-9_]")
_RUNS = re.compile(r"_+")


def write_iso(package: Path, target: Path, volume_id: str) -> None:
    """Write the directory ``package`` as an ISO image at ``target`` (which must not exist)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=ISO_INTERCHANGE_LEVEL, joliet=JOLIET_LEVEL,
            vol_ident=_iso_name(volume_id, 32), app_ident_str="dockd evidence export")
    counter = 0
    for dirpath, dirs, names in os.walk(package):
        dirs.sort()
        rel_dir = Path(dirpath).relative_to(package)
        for name in sorted(dirs):
            iso_dir, joliet_dir = _paths(rel_dir / name)
            iso.add_directory(iso_path=iso_dir, joliet_path=joliet_dir)
        for name in sorted(names):
            counter += 1
            iso_path, joliet_path = _paths(rel_dir / name, counter)
            iso.add_file(str(Path(dirpath) / name), iso_path=iso_path, joliet_path=joliet_path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    try:
        with os.fdopen(fd, "wb", closefd=True) as fh:
            iso.write_fp(fh)
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        iso.close()


class IsoReader:
    """A package inside an ISO image, read through its Joliet names."""

    def __init__(self, path: Path) -> None:
        self.iso = pycdlib.PyCdlib()
        self.iso.open(str(path))
        if self.iso.has_joliet() is False:
            self.iso.close()
            raise OSError(f"{path} has no Joliet names; not a dockd export image")

    def files(self) -> list[str]:
        out = []
        for dirpath, _dirs, names in self.iso.walk(joliet_path="/"):
            for name in names:
                out.append(f"{dirpath.rstrip('/')}/{name}".lstrip("/"))
        return sorted(out)

    def open(self, rel: str) -> BinaryIO:
        try:
            return cast(BinaryIO, self.iso.open_file_from_iso(joliet_path="/" + rel))
        except pycdlib.pycdlibexception.PyCdlibException as exc:
            raise FileNotFoundError(f"{rel}: {exc}") from None

    def close(self) -> None:
        self.iso.close()


def volume_label(case_no: str | None, export_id: str, disc: int = 1, discs: int = 1) -> str:
    """The image's ISO 9660 volume identifier: the case number in d-characters (A-Z, 0-9,
    ``_``; at most 32), e.g. ``威公(刑)字〔2026〕12号`` → ``2026_12``; ``DOCKD_<export>``
    when the case number has no such character or there is none; ``_2`` etc. per disc of a
    split export."""
    base = _RUNS.sub("_", _ISO_NAME_CHARS.sub("_", (case_no or "").upper())).strip("_")
    if not base:
        base = f"DOCKD_{export_id[:8].upper()}"
    suffix = f"_{disc}" if discs > 1 else ""
    return _ISO_NAME_CHARS.sub("_", base[: VOLUME_ID_MAX - len(suffix)].rstrip("_") + suffix)


def _paths(rel: Path, counter: int | None = None) -> tuple[str, str]:
    """(ISO 9660 path, Joliet path) of a package path; files get numbered ISO names."""
    iso_parts = [_iso_name(p, 8) for p in rel.parts[:-1]]
    last = rel.parts[-1]
    if counter is None:
        iso_parts.append(_iso_name(last, 8))
    else:
        ext = _iso_name(Path(last).suffix.lstrip("."), 3)
        iso_parts.append(f"F{counter:05d}" + (f".{ext}" if ext else ".") + ";1")
    return "/" + "/".join(iso_parts), "/" + "/".join(rel.parts)


def _iso_name(text: str, limit: int) -> str:
    return _ISO_NAME_CHARS.sub("_", text.upper())[:limit] or "_"
