"""Opening the evidence store: content store, catalog and custody log wired together.

Opening also recovers from a crash: leftover temp data of dead processes is removed and
sessions left ``running`` by a dead process are closed with ``session.interrupted``.
"""

from __future__ import annotations

import logging
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from dockd.clock import Clock, utc_iso
from dockd.config import Config
from dockd.store.catalog import Catalog, catalog_path
from dockd.store.content_store import ContentStore
from dockd.store.custody import CHECKPOINT_FILE, CustodyLog
from dockd.store.fsutil import DIR_MODE, make_dirs, try_lock
from dockd.store.keys import load_or_create_signer

LOCKS_DIR = "locks"
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


def open_store(config: Config, clock: Clock, recover: bool = True) -> EvidenceStore:
    """Open (creating when new) the store named by ``config`` for writing."""
    root = config.dock.store_dir
    content = ContentStore(root, _ingest_algorithms(config), config.ingest.chunk_bytes,
                           config.ingest.verify_after_copy == "destination")
    content.open()  # proves the store is writable before anything else is touched
    make_dirs(root / LOCKS_DIR, DIR_MODE)
    catalog = Catalog(catalog_path(root))
    signer = load_or_create_signer(config.dock.signing_key_path)
    custody = CustodyLog(catalog, signer, config.dock.id, clock, config.ingest.checkpoint_every,
                         root / CHECKPOINT_FILE)
    store = EvidenceStore(root, config, clock, catalog, content, custody)
    if recover:
        recover_dead_sessions(store)
    return store


def _ingest_algorithms(config: Config) -> list[str]:
    algorithms = list(config.ingest.hashes)
    if config.ingest.mhl:
        algorithms += list(config.ingest.mhl_hashes)
    return algorithms


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
                store.custody.record(tx, "session.interrupted", actor(), row["recorder"],
                                     {"session_id": row["id"], "reason": "crash_recovery"},
                                     checkpoint=True)
            recovered.append(row["id"])
            log.warning("closed a session left open by a crash",
                        extra={"session": row["id"], "recorder": row["recorder"]})
        finally:
            if fd is not None:
                os.close(fd)
            store.lock_path(f"session-{row['id']}").unlink(missing_ok=True)
    return recovered


def actor() -> str:
    """Who acts: the daemon's name under systemd, else ``cli:<user>``."""
    if os.environ.get("DOCKD_ACTOR"):
        return os.environ["DOCKD_ACTOR"]
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    return f"cli:{user}"
