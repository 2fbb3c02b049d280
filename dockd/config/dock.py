"""The ``[dock]`` section: who this dock is and where its evidence lives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dockd.config.reader import TableReader
from dockd.names import DOCK_ID_HINT, DOCK_ID_PATTERN

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class DockSection:
    """Identity of this dock and where its evidence lives."""

    id: str = "dock-01"
    site: str = "site-01"
    store_dir: Path = Path("/var/lib/dockd")
    signing_key: Path | None = None  # default: <store_dir>/keys/custody.ed25519
    log_level: str = "INFO"

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key or self.store_dir / "keys" / "custody.ed25519"


def parse_dock(t: TableReader) -> DockSection:
    """Validate ``[dock]``."""
    d = DockSection
    return DockSection(
        id=t.string("id", d.id, DOCK_ID_PATTERN, DOCK_ID_HINT),
        site=t.string("site", d.site, DOCK_ID_PATTERN, DOCK_ID_HINT),
        store_dir=t.path("store_dir", d.store_dir) or d.store_dir,
        signing_key=t.path("signing_key", None),
        log_level=t.choice("log_level", d.log_level, LOG_LEVELS),
    )
