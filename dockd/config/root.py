"""The whole configuration: one typed, validated section per TOML table.

A table the document does not have (or has empty) is parsed from an empty table the first
time its section is read, not when the config is loaded: a command that reads the custody
log does not import (and build the dataclasses of) the daemon's, the LEDs' or the ledger's
sections, which were two thirds of such a command's imports. Parsing an empty table finds
no problem (a test checks each section), so no problem is left unreported by waiting; every
table the document does fill is parsed and checked when the config is loaded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from dockd.config.reader import Problems, TableReader, TomlValue

if TYPE_CHECKING:
    from dockd.config.archive import ArchiveSection
    from dockd.config.daemon import DaemonSection
    from dockd.config.dock import DockSection
    from dockd.config.health import HealthSection
    from dockd.config.ingest import IngestSection
    from dockd.config.ledger import LedgerSection
    from dockd.config.leds import LedsSection
    from dockd.config.metrics import MetricsSection
    from dockd.config.mqtt import MqttSection
    from dockd.config.records import RecordsSection

S = TypeVar("S")


class _Unread:
    """The value of a section whose table was absent or empty, until it is first read."""

    def __repr__(self) -> str:
        return "<unread>"

    def __reduce__(self) -> str:
        return "UNREAD"  # a copy or an unpickled config holds the one marker: `is UNREAD` holds


UNREAD = _Unread()


def _parse(name: str, table: TableReader) -> Any:
    """``parse_<name>`` of ``dockd.config.<name>`` on ``table``, then the table's unknown
    keys reported (``finish``). Each section's module is imported here, when its table is
    first parsed (explicit imports, no names built from strings: a reader and the
    import-layer check see every one)."""
    section = _parse_section(name, table)
    table.finish()
    return section


def _parse_section(name: str, table: TableReader) -> Any:
    match name:
        case "dock":
            from dockd.config.dock import parse_dock
            return parse_dock(table)
        case "ingest":
            from dockd.config.ingest import parse_ingest
            return parse_ingest(table)
        case "daemon":
            from dockd.config.daemon import parse_daemon
            return parse_daemon(table)
        case "health":
            from dockd.config.health import parse_health
            return parse_health(table)
        case "mqtt":
            from dockd.config.mqtt import parse_mqtt
            return parse_mqtt(table)
        case "leds":
            from dockd.config.leds import parse_leds
            return parse_leds(table)
        case "records":
            from dockd.config.records import parse_records
            return parse_records(table)
        case "archive":
            from dockd.config.archive import parse_archive
            return parse_archive(table)
        case "ledger":
            from dockd.config.ledger import parse_ledger
            return parse_ledger(table)
        case "metrics":
            from dockd.config.metrics import parse_metrics
            return parse_metrics(table)
    raise ValueError(f"no config section {name!r}")


class _Section(Generic[S]):
    """A :class:`Config` field: holds its section, or :data:`UNREAD` until it is first read,
    when it is parsed from an empty table (what an absent table reads as) and kept."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _Unread: ...

    @overload
    def __get__(self, obj: Config, owner: type) -> S: ...

    def __get__(self, obj: Config | None, owner: type) -> S | _Unread:
        if obj is None:
            return UNREAD  # the dataclass's default
        value = obj.__dict__[self.name]
        if value is UNREAD:
            table = TableReader({}, self.name)
            value = _parse(self.name, table)
            table.problems.raise_if_any()  # none: an empty table has none (tested)
            obj.__dict__[self.name] = value
        return value  # type: ignore[no-any-return]

    def __set__(self, obj: Config, value: S | _Unread) -> None:
        obj.__dict__[self.name] = value


@dataclass(frozen=True)
class Config:
    """The whole validated configuration. ``source`` is the file it came from, if any."""

    dock: _Section[DockSection] = _Section()
    ingest: _Section[IngestSection] = _Section()
    daemon: _Section[DaemonSection] = _Section()
    health: _Section[HealthSection] = _Section()
    mqtt: _Section[MqttSection] = _Section()
    leds: _Section[LedsSection] = _Section()
    records: _Section[RecordsSection] = _Section()
    archive: _Section[ArchiveSection | None] = _Section()
    ledger: _Section[LedgerSection | None] = _Section()  # the bureau's ledger; None on a dock
    metrics: _Section[MetricsSection] = _Section()
    source: Path | None = None

    def with_store(self, store_dir: Path) -> Config:
        """The same config with another store directory (``--store``)."""
        return self._replace(dock=dataclasses.replace(self.dock, store_dir=store_dir))

    def with_source(self, source: Path | None) -> Config:
        """The same config, remembered as read from ``source``."""
        return self._replace(source=source)

    def _replace(self, **changes: object) -> Config:
        # Not dataclasses.replace: it would read, so parse, every unread section.
        fields = {f.name: self.__dict__[f.name] for f in dataclasses.fields(self)}
        return Config(**{**fields, **changes})


SECTION_NAMES = tuple(f.name for f in dataclasses.fields(Config) if f.name != "source")


def parse_config(data: dict[str, TomlValue]) -> Config:
    """Validate a parsed TOML document; ConfigError (exit 78) naming every problem."""
    config, problems = check_document(data)
    problems.raise_if_any()
    return config


def check_document(data: dict[str, TomlValue]) -> tuple[Config, Problems]:
    """Parse a document, collecting every problem instead of stopping at the first; the
    config returned has defaults wherever a value was bad."""
    root = TableReader(data, "")

    def section(name: str) -> Any:
        table = root.table(name)
        # An absent or empty table is parsed when first read: see the module's docstring.
        return _parse(name, table) if table.data else UNREAD

    sections: dict[str, Any] = {name: section(name) for name in SECTION_NAMES}
    config = Config(**sections)
    root.finish()
    return config, root.problems
