"""Opening the evidence store: content store, catalog and custody log wired together.

Opening also recovers from a crash: leftover temp data of dead processes is removed and
sessions left ``running`` by a dead process are closed with ``session.interrupted``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from dockd.clock import Clock, utc_iso
from dockd.config import Config
from dockd.identity import actor
from dockd.store.catalog import Catalog, catalog_path
from dockd.store.content_store import INTENT_PREFIX, TMP_DIR, ContentStore
from dockd.store.custody import CHECKPOINT_FILE, CustodyLog, open_checkpoint_mirror
from dockd.store.events import BatchUndone, SessionInterrupted
from dockd.store.fsutil import DIR_MODE, make_dirs, try_lock
from dockd.store.key_rotation import store_signer
from dockd.store.keys import Signer
from dockd.store.session_folder import SESSIONS_DIR

LOCKS_DIR = "locks"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
log = logging.getLogger(__name__)


@dataclass
class EvidenceStore:
    """The parts of one open store, for one thread."""

    root: Path
    config: Config
    clock: Clock
    catalog: Catalog
    content: ContentStore
    custody: CustodyLog

    def lock_path(self, name: str) -> Path:
        return self.root / LOCKS_DIR / f"{name}.lock"

    def close(self) -> None:
        self.content.close()
        self.catalog.close()


def open_store(config: Config, clock: Clock, recover: bool = True,
               signer: Signer | None = None) -> EvidenceStore:
    """Open (creating when new) the store named by ``config`` for writing.

    The signing key must be the key of the store's checkpoints (ConfigError otherwise, see
    :func:`store_signer`); ``signer`` overrides it for ``dockd key rotate`` only, which
    must write its ``key.rotated`` record before any other, so nothing is recovered then.
    """
    root = config.dock.store_dir
    content = ContentStore(root, _ingest_algorithms(config), config.ingest.chunk_bytes,
                           config.ingest.verify_after_copy == "destination",
                           config.ingest.readback_hash)
    content.open()  # proves the store is writable before anything else is touched
    try:
        make_dirs(root / LOCKS_DIR, DIR_MODE)
        catalog = Catalog(catalog_path(root))
    except BaseException:
        content.close()
        raise
    try:
        key = signer or store_signer(catalog, config.dock.signing_key_path)
    except BaseException:
        catalog.close()
        content.close()
        raise
    if config.dock.checkpoint_mirror is not None:
        try:
            os.close(open_checkpoint_mirror(config.dock.checkpoint_mirror))
        except BaseException:
            catalog.close()
            content.close()
            raise
    custody = CustodyLog(catalog, key, config.dock.id, clock, config.ingest.checkpoint_every,
                         root / CHECKPOINT_FILE, config.dock.checkpoint_mirror)
    store = EvidenceStore(root, config, clock, catalog, content, custody)
    if signer is not None:
        return store
    undo_intents(store)
    if recover:
        recover_dead_sessions(store)
    return store


def _ingest_algorithms(config: Config) -> list[str]:
    algorithms = list(config.ingest.hashes)
    if config.ingest.mhl:
        algorithms += list(config.ingest.mhl_hashes)
    return algorithms


def undo_intents(store: EvidenceStore) -> list[str]:
    """Undo the batches that dead processes were linking when they died.

    An object announced in an intent but without a catalog item was never committed: its
    source is still on the recorder (nothing is cleared without an item), so the object and
    its session-folder links are removed and the next offload copies the file again.
    """
    tmp_root = store.root / TMP_DIR
    intents = sorted(tmp_root.glob(f"{INTENT_PREFIX}*.json"))
    undone: list[str] = []
    if not intents:
        return undone
    with store.content.publication_lock():
        for intent in intents:
            try:
                data = json.loads(intent.read_bytes())
                shas = [s for s in data["shas"] if isinstance(s, str) and _SHA256.match(s)]
                named = Path(str(data["folder"])).resolve() if data["folder"] else None
            except (ValueError, KeyError, TypeError, OSError) as exc:
                log.error("unreadable batch intent removed", extra={"file": intent.name,
                                                                    "error": str(exc)})
                intent.unlink(missing_ok=True)
                continue
            sessions = (store.root / SESSIONS_DIR).resolve()
            # Links are only ever undone inside the store's session folders.
            folder = named if named is not None and named.is_relative_to(sessions) else None
            removed = [sha for sha in shas if _undo_object(store, sha, folder)]
            if removed:
                store.custody.append(BatchUndone(tuple(removed),
                                                 str(named) if named is not None else ""),
                                     actor())
                log.warning("undid a batch a crash left uncommitted",
                            extra={"objects": len(removed), "folder": str(named)})
            undone += removed
            intent.unlink(missing_ok=True)
    return undone


def _undo_object(store: EvidenceStore, sha: str, folder: Path | None) -> bool:
    if store.catalog.query_one("SELECT 1 FROM items WHERE sha256=?", (sha,)) is not None:
        return False  # committed after all (or by another session): keep
    obj = store.content.object_path(sha)
    try:
        inode = obj.stat().st_ino
    except FileNotFoundError:
        return False
    if folder is not None and folder.is_dir():
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                link = Path(dirpath) / name
                with contextlib.suppress(OSError):
                    if link.stat().st_ino == inode:
                        link.unlink()
    obj.unlink()
    return True


def recover_dead_sessions(store: EvidenceStore) -> list[str]:
    """Close sessions whose process died (session lock free) as interrupted."""
    recovered = []
    for row in store.catalog.query("SELECT id, recorder FROM sessions WHERE result='running'"):
        fd = try_lock(store.lock_path(f"session-{row['id']}"))
        lock_exists = store.lock_path(f"session-{row['id']}").exists()
        if fd is None and lock_exists:
            continue  # alive in another process
        try:
            with store.catalog.transaction() as tx:
                current = tx.execute("SELECT result FROM sessions WHERE id=?",
                                     (row["id"],)).fetchone()
                if current["result"] != "running":
                    continue
                tx.execute("UPDATE sessions SET result='interrupted', reason='crash_recovery',"
                           " ended_at=? WHERE id=?", (utc_iso(store.clock.now()), row["id"]))
                store.custody.record(tx, SessionInterrupted(row["recorder"], {
                    "session_id": row["id"], "reason": "crash_recovery"}), actor(), checkpoint=True)
            recovered.append(row["id"])
            log.warning("closed a session left open by a crash",
                        extra={"session": row["id"], "recorder": row["recorder"]})
        finally:
            if fd is not None:
                os.close(fd)
            store.lock_path(f"session-{row['id']}").unlink(missing_ok=True)
    return recovered

