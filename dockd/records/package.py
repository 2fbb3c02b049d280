"""An evidence export package and its re-check (rules art. 12(4)).

Layout (the same in a directory and, with Joliet names, in an ISO image)::

    manifest.json          what was exported, why, for whom; per recording the art. 12(4)
                           fields, size, SHA-256 (and SM3 when the dock hashes with SM3)
    sign-off-sheet.pdf     the printable sheet to sign and seal
    files/NNNN_<name>      the recordings, byte for byte as stored
    custody/               the items' custody history (JSON, PDF), the dock's public key
                           and a signed checkpoint (dockd.records.disc)
    说明.txt, README.txt    what is on the disc and how to check it
    SHA256SUMS             for ``sha256sum -c``
    ascmhl/                ASC MHL history of every file above

:func:`verify_package` re-hashes every file against the manifest and the ASC MHL
manifest; any difference (missing, altered, extra file, malformed manifest) is reported.
The package is read through a :class:`PackageReader`, so a directory and an ISO image
are checked by the same code.
"""

from __future__ import annotations

import json
import os
import re
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from dockd.store.hashing import MultiHasher
from dockd.store.mhl import MHL_DIR

MANIFEST = "manifest.json"
SHEET = "sign-off-sheet.pdf"
FILES_DIR = "files"
MANIFEST_FORMAT = "dockd.evidence-export"
MANIFEST_VERSION = 1
CHUNK = 1 << 20
MAX_MANIFEST_BYTES = 64 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MHL_NS = "{urn:ASC:MHL:v2.0}"
_MHL_FORMATS = ("xxh128", "c4")


class PackageReader(Protocol):
    """Read access to a package, wherever it lives."""

    def files(self) -> list[str]:
        """Every regular file, as a '/'-separated path relative to the package root."""
        ...

    def open(self, rel: str) -> BinaryIO:
        """The file ``rel`` for reading; FileNotFoundError when absent."""
        ...


@dataclass(frozen=True)
class Difference:
    """One way the package differs from what its manifest says."""

    kind: str  # missing | altered | extra | manifest | mhl | unreadable
    path: str
    detail: str

    def to_json_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "detail": self.detail}


@dataclass
class PackageCheck:
    """The result of :func:`verify_package`."""

    export_id: str | None = None
    manifest_sha256: str | None = None
    recordings: int = 0
    bytes_checked: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_json_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "export_id": self.export_id,
                "manifest_sha256": self.manifest_sha256, "recordings": self.recordings,
                "bytes_checked": self.bytes_checked,
                "differences": [d.to_json_dict() for d in self.differences]}


def verify_package(reader: PackageReader) -> PackageCheck:
    """Re-check every file of the package against its manifest and ASC MHL manifest."""
    check = PackageCheck()
    present = set(reader.files())
    manifest = _load_manifest(reader, present, check)
    mhl = _load_mhl(reader, present, check)
    expected: dict[str, dict[str, Any]] = {}
    for entry in manifest:
        expected[entry["file"]] = entry
    for rel in sorted(present | set(expected) | set(mhl)):
        _check_file(reader, rel, rel in present, expected.get(rel), mhl.get(rel), check)
    if SHEET not in present:
        check.differences.append(Difference("missing", SHEET, "the sign-off sheet is missing"))
    check.recordings = len(expected)
    return check


class DirectoryReader:
    """A package in a directory. Symbolic links and special files are listed, and fail to
    open, so verification reports them instead of following them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def files(self) -> list[str]:
        out = []
        for dirpath, dirs, names in os.walk(self.root):
            links = [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]
            for name in names + links:
                rel = os.path.relpath(os.path.join(dirpath, name), self.root)
                out.append(rel.replace(os.sep, "/"))
        return sorted(out)

    def open(self, rel: str) -> BinaryIO:
        # O_NONBLOCK: a FIFO planted in the package must not hang the check.
        fd = os.open(self.root / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{rel} is not a regular file")
        return os.fdopen(fd, "rb")


def hash_stream(fh: BinaryIO, algorithms: list[str]) -> tuple[dict[str, str], int]:
    """Digests and length of everything ``fh`` yields."""
    hasher = MultiHasher(algorithms)
    size = 0
    while chunk := fh.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.digests(), size


def safe_relpath(rel: object) -> str | None:
    """``rel`` when it is a plain relative path inside the package, else None."""
    if not isinstance(rel, str) or not rel or len(rel) > 1024 or "\\" in rel or "\x00" in rel:
        return None
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    return rel


# -- manifest ---------------------------------------------------------------------------

def _load_manifest(reader: PackageReader, present: set[str],
                   check: PackageCheck) -> list[dict[str, Any]]:
    if MANIFEST not in present:
        check.differences.append(Difference("missing", MANIFEST, "the manifest is missing"))
        return []
    try:
        with reader.open(MANIFEST) as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        check.differences.append(Difference("unreadable", MANIFEST, str(exc)))
        return []
    hasher = MultiHasher(["sha256"])
    hasher.update(raw)
    check.manifest_sha256 = hasher.digests()["sha256"]
    try:
        data = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_MANIFEST_BYTES else None
    except (UnicodeDecodeError, ValueError) as exc:
        check.differences.append(Difference("manifest", MANIFEST, f"not JSON: {exc}"))
        return []
    return _manifest_entries(data, check)


def _manifest_entries(data: Any, check: PackageCheck) -> list[dict[str, Any]]:
    def bad(detail: str) -> list[dict[str, Any]]:
        check.differences.append(Difference("manifest", MANIFEST, detail))
        return []

    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return bad(f"not a {MANIFEST_FORMAT} manifest")
    if data.get("version") != MANIFEST_VERSION:
        return bad(f"version {data.get('version')!r} is not {MANIFEST_VERSION}")
    if isinstance(data.get("export_id"), str):
        check.export_id = data["export_id"]
    recordings = data.get("recordings")
    if not isinstance(recordings, list):
        return bad("'recordings' is not a list")
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, entry in enumerate(recordings):
        problem = _entry_problem(entry)
        if problem is None and entry["file"] in seen:
            problem = "names a file twice"
        if problem is not None:
            check.differences.append(Difference("manifest", f"recordings[{i}]", problem))
            continue
        seen.add(entry["file"])
        entries.append(entry)
    return entries


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "is not an object"
    rel = safe_relpath(entry.get("file"))
    if rel is None or not rel.startswith(FILES_DIR + "/"):
        return f"'file' {entry.get('file')!r} is not a path under {FILES_DIR}/"
    size = entry.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "'size' is not a non-negative integer"
    if not isinstance(entry.get("sha256"), str) or not _HEX64.match(entry["sha256"]):
        return "'sha256' is not 64 hex digits"
    sm3 = entry.get("sm3")
    if sm3 is not None and (not isinstance(sm3, str) or not _HEX64.match(sm3)):
        return "'sm3' is not 64 hex digits"
    return None


# -- ASC MHL ----------------------------------------------------------------------------

def _load_mhl(reader: PackageReader, present: set[str],
              check: PackageCheck) -> dict[str, dict[str, str]]:
    """path → {format: digest} from the package's one ASC MHL manifest."""
    manifests = sorted(p for p in present if p.startswith(MHL_DIR + "/") and p.endswith(".mhl"))
    if len(manifests) != 1:
        check.differences.append(Difference(
            "mhl", MHL_DIR, f"expected one ASC MHL manifest, found {len(manifests)}"))
        return {}
    try:
        with reader.open(manifests[0]) as fh:
            root = ET.fromstring(fh.read(MAX_MANIFEST_BYTES))
    except (OSError, ET.ParseError) as exc:
        check.differences.append(Difference("mhl", manifests[0], f"unreadable: {exc}"))
        return {}
    out: dict[str, dict[str, str]] = {}
    for node in root.iter(f"{_MHL_NS}hash"):
        path = node.find(f"{_MHL_NS}path")
        rel = safe_relpath(path.text if path is not None else None)
        digests = {fmt: (d.text or "") for fmt in _MHL_FORMATS
                   if (d := node.find(f"{_MHL_NS}{fmt}")) is not None}
        if rel is None or not digests:
            check.differences.append(Difference("mhl", manifests[0], "an entry is malformed"))
            continue
        out[rel] = digests
    return out


# -- one file ---------------------------------------------------------------------------

def _check_file(reader: PackageReader, rel: str, present: bool, entry: dict[str, Any] | None,
                mhl: dict[str, str] | None, check: PackageCheck) -> None:
    if rel.startswith(MHL_DIR + "/"):
        return  # the history describes the others, not itself
    if not present:
        check.differences.append(Difference("missing", rel, "listed but not in the package"))
        return
    if entry is None and rel.startswith(FILES_DIR + "/"):
        check.differences.append(Difference("extra", rel, "not in the manifest"))
    if mhl is None:
        check.differences.append(Difference("extra", rel, "not in the ASC MHL manifest"))
    algorithms = ["sha256"] + (["sm3"] if entry and entry.get("sm3") else []) + list(mhl or {})
    try:
        with reader.open(rel) as fh:
            digests, size = hash_stream(fh, algorithms)
    except OSError as exc:
        check.differences.append(Difference("unreadable", rel, str(exc)))
        return
    check.bytes_checked += size
    for problem in _compare(entry, mhl, digests, size):
        check.differences.append(Difference("altered", rel, problem))


def _compare(entry: dict[str, Any] | None, mhl: dict[str, str] | None, digests: dict[str, str],
             size: int) -> Iterator[str]:
    if entry is not None:
        if size != entry["size"]:
            yield f"{size} bytes, the manifest says {entry['size']}"
        if digests["sha256"] != entry["sha256"]:
            yield f"SHA-256 is {digests['sha256']}, the manifest says {entry['sha256']}"
        if entry.get("sm3") and digests["sm3"] != entry["sm3"]:
            yield "SM3 differs from the manifest"
    for fmt, expected in (mhl or {}).items():
        if digests[fmt] != expected:
            yield f"{fmt} differs from the ASC MHL manifest"
