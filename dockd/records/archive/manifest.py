"""The per-item JSON manifest archived next to each item, and the archive's key layout.

The manifest carries what the catalog knows of an item — its digests, the recording's
metadata, every sighting (which recorder, which path, which session) — and where the item
itself sits in the archive (key, version id, checksum, retention). It is canonical JSON
(sorted keys, no spaces) and has no time of its own, so an upload retried after a crash
produces the same bytes and is recognised as already there.

Keys (``<prefix>`` is ``[archive] key_prefix``, default the dock id)::

    <prefix>/items/<sha256[:2]>/<sha256>              the recording, byte for byte
    <prefix>/manifests/<sha256[:2]>/<sha256>.json     this manifest
    <prefix>/sessions/<recorder>/<day>/<session>/ascmhl/<file>   the session's ASC MHL
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from dockd.store.canonical import canonical_json
from dockd.store.catalog import Catalog

MANIFEST_KIND = "dockd.archive.item-manifest"
_METADATA_COLUMNS = ("format", "start_time", "end_time", "duration_s", "width", "height",
                     "extractor")


@dataclass(frozen=True)
class ArchivedCopy:
    """Where the item's bytes are in the archive, as the manifest records it."""

    bucket: str
    key: str
    version_id: str
    checksum_sha256: str
    retain_until: str


def item_key(prefix: str, sha256: str) -> str:
    """The archive key of an item's bytes."""
    return f"{prefix}/items/{sha256[:2]}/{sha256}"


def manifest_key(prefix: str, sha256: str) -> str:
    """The archive key of an item's JSON manifest."""
    return f"{prefix}/manifests/{sha256[:2]}/{sha256}.json"


def session_file_key(prefix: str, folder_relpath: str, name: str) -> str:
    """The archive key of a file of a session's ``ascmhl`` folder."""
    return f"{prefix}/{folder_relpath}/ascmhl/{name}"


def item_manifest(catalog: Catalog, dock: str, site: str, sha256: str,
                  copy: ArchivedCopy) -> bytes:
    """The canonical JSON manifest of one item (UTF-8 bytes, newline-terminated)."""
    item = catalog.query_one("SELECT sha256, size, sm3, xxh128, c4, ingested_at, first_session"
                             " FROM items WHERE sha256=?", (sha256,))
    if item is None:
        raise KeyError(sha256)
    meta = catalog.query_one(f"SELECT {', '.join(_METADATA_COLUMNS)} FROM metadata WHERE sha256=?",
                             (sha256,))
    sightings = catalog.query(
        "SELECT recorder, source_path, source_path_raw, size, mtime_ns, session_id, seen_at,"
        " session_path FROM sightings WHERE sha256=? ORDER BY seen_at, id", (sha256,))
    manifest: dict[str, Any] = {
        "v": 1, "kind": MANIFEST_KIND, "dock": dock, "site": site,
        "item": {k: item[k] for k in item.keys()},  # noqa: SIM118 (sqlite3.Row iterates values)
        "metadata": None if meta is None else {k: meta[k] for k in meta.keys()},  # noqa: SIM118
        "sightings": [_sighting(row) for row in sightings],
        "archive": {"bucket": copy.bucket, "key": copy.key, "version_id": copy.version_id,
                    "checksum_sha256": copy.checksum_sha256, "lock_mode": "COMPLIANCE",
                    "retain_until": copy.retain_until},
    }
    return canonical_json(manifest) + b"\n"


def _sighting(row: Any) -> dict[str, Any]:
    out = {k: row[k] for k in row.keys() if k != "source_path_raw"}  # noqa: SIM118
    raw = bytes(row["source_path_raw"])
    if raw != str(row["source_path"]).encode("utf-8"):
        # The exact bytes of a name that is not clean UTF-8 on the recorder.
        out["source_path_b64"] = base64.b64encode(raw).decode("ascii")
    return out
