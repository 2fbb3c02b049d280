"""The ``[dock]`` section: who this dock is and where its evidence lives."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from dockd.clock import system_zone, zone_named
from dockd.config.reader import TableReader
from dockd.i18n import _
from dockd.names import DOCK_ID_HINT, DOCK_ID_PATTERN

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class DockSection:
    """Identity of this dock and where its evidence lives."""

    id: str = "dock-01"
    site: str = "site-01"
    store_dir: Path = Path("/var/lib/dockd")
    signing_key: Path | None = None  # default: <store_dir>/keys/custody.ed25519
    # A file outside the store to which every checkpoint is appended: a store restored
    # from its backup does not take it back, and verify compares the log with it.
    checkpoint_mirror: Path | None = None
    log_level: str = "INFO"
    # IANA name of the bureau's local time (sheets, reports, console, --day); None: the
    # system's. Custody records and MQTT stay UTC whatever this says.
    timezone: str | None = None

    @property
    def tz(self) -> dt.tzinfo:
        """The local time zone in which people read times and name days and weeks."""
        return zone_named(self.timezone) if self.timezone else system_zone()

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
        checkpoint_mirror=_checkpoint_mirror(t),
        log_level=t.choice("log_level", d.log_level, LOG_LEVELS),
        timezone=_timezone(t),
    )


def _checkpoint_mirror(t: TableReader) -> Path | None:
    path = t.path("checkpoint_mirror", None)
    store = t.path("store_dir", DockSection.store_dir) or DockSection.store_dir
    if path is not None and (not path.is_absolute() or path.is_relative_to(store)):
        t.problem("checkpoint_mirror", _("must be an absolute path outside store_dir ({store}): a "
                                         "rollback of the store must not reach it").format(store=store))
        return None
    return path


def _timezone(t: TableReader) -> str | None:
    name = t.get("timezone", str, "")
    if not name:
        return None
    try:
        zone_named(name)
    except ValueError:
        t.problem("timezone", _("{name!r} is not an IANA time zone name (e.g. \"Asia/Shanghai\");"
                                " 'timedatectl list-timezones' lists them").format(name=name))
        return None
    return name
