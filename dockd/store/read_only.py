"""Reading a store that cannot be written: an examiner's write-blocked copy, a store on a
read-only mount, or one this user may read but not write.

Nothing is written there: no lock, no scratch directory, no fan-out file, no SQLite
``-wal``/``-shm`` file (see :class:`~dockd.store.catalog.Catalog`'s read-only open), no
key, no custody event. ``dockd verify`` then reports without recording its verification.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from dockd.store.catalog import Catalog, catalog_path
from dockd.store.content_store import object_relpath, read_fanout
from dockd.store.key_rotation import latest_checkpoint_key
from dockd.store.keys import fingerprint, load_signer
from dockd.store.verify import StoreView


def store_is_read_only(root: Path) -> bool:
    """True when this process cannot write the store at ``root``: its file system is
    mounted read-only, or the directory or its catalog is not writable for this user."""
    try:
        if os.statvfs(root).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False  # the store's open says what is wrong with it
    return not (os.access(root, os.W_OK) and os.access(catalog_path(root), os.W_OK))


@contextlib.contextmanager
def read_only_view(root: Path, key_path: Path,
                   mirror: Path | None = None) -> Iterator[StoreView]:
    """The store at ``root`` opened for reading only, for :func:`~dockd.store.verify.check_store`.

    The checkpoints are checked against the key at ``key_path`` when this user can read
    it; else against the key the newest checkpoint names, and the report says so (an
    examiner's copy travels without the dock's private key): its fingerprint must then be
    compared with the dock's key as the ledger enrolled it.
    """
    catalog = Catalog(catalog_path(root), read_only=True)
    try:
        notes: list[str] = []
        signer = load_signer(key_path) if os.access(key_path, os.R_OK) else None
        if signer is not None:
            public_key = signer.public_key_hex
        else:
            public_key = latest_checkpoint_key(catalog) or ""
            if public_key:
                notes.append(
                    f"no signing key readable at {key_path}: the checkpoints were checked "
                    f"against the key the newest one names ({fingerprint(public_key)}); compare "
                    "it with the dock's enrolled key (dockd ledger dock list)")
        fanout = read_fanout(root)
        yield StoreView(root, catalog, public_key,
                        lambda sha: root / object_relpath(sha, fanout), tuple(notes), mirror)
    finally:
        catalog.close()
