"""The whole configuration: one typed, validated section per TOML table."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from dockd.config.archive import ArchiveSection, parse_archive
from dockd.config.daemon import DaemonSection, parse_daemon
from dockd.config.dock import DockSection, parse_dock
from dockd.config.health import HealthSection, parse_health
from dockd.config.ingest import IngestSection, parse_ingest
from dockd.config.ledger import LedgerSection, parse_ledger
from dockd.config.leds import LedsSection, parse_leds
from dockd.config.metrics import MetricsSection, parse_metrics
from dockd.config.mqtt import MqttSection, parse_mqtt
from dockd.config.reader import Problems, TableReader, TomlValue
from dockd.config.records import RecordsSection, parse_records

S = TypeVar("S")


@dataclass(frozen=True)
class Config:
    """The whole validated configuration. ``source`` is the file it came from, if any."""

    dock: DockSection = field(default_factory=DockSection)
    ingest: IngestSection = field(default_factory=IngestSection)
    daemon: DaemonSection = field(default_factory=DaemonSection)
    health: HealthSection = field(default_factory=HealthSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    leds: LedsSection = field(default_factory=LedsSection)
    records: RecordsSection = field(default_factory=RecordsSection)
    archive: ArchiveSection | None = None
    ledger: LedgerSection | None = None  # the bureau's central ledger; None on a dock
    metrics: MetricsSection = field(default_factory=MetricsSection)
    source: Path | None = None

    def with_store(self, store_dir: Path) -> Config:
        """The same config with another store directory (``--store``)."""
        return dataclasses.replace(self, dock=dataclasses.replace(self.dock, store_dir=store_dir))

    def with_source(self, source: Path | None) -> Config:
        """The same config, remembered as read from ``source``."""
        return dataclasses.replace(self, source=source)


def parse_config(data: dict[str, TomlValue]) -> Config:
    """Validate a parsed TOML document; ConfigError (exit 78) naming every problem."""
    config, problems = check_document(data)
    problems.raise_if_any()
    return config


def check_document(data: dict[str, TomlValue]) -> tuple[Config, Problems]:
    """Parse a document, collecting every problem instead of stopping at the first; the
    config returned has defaults wherever a value was bad."""
    root = TableReader(data, "")

    def section(name: str, parse: Callable[[TableReader], S]) -> S:
        table = root.table(name)
        parsed = parse(table)
        table.finish()
        return parsed

    config = Config(
        dock=section("dock", parse_dock),
        ingest=section("ingest", parse_ingest),
        daemon=section("daemon", parse_daemon),
        health=section("health", parse_health),
        mqtt=section("mqtt", parse_mqtt),
        leds=section("leds", parse_leds),
        records=section("records", parse_records),
        archive=section("archive", parse_archive),
        ledger=section("ledger", parse_ledger),
        metrics=section("metrics", parse_metrics),
    )
    root.finish()
    return config, root.problems
