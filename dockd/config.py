"""The TOML config as typed, validated objects.

Every bad value is reported by its dotted key with what would be accepted, and raises
:class:`ConfigError` (exit 78). Unknown keys are errors too: a misspelt key silently
ignored is a setting the administrator believes is on.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dockd.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/dockd/dockd.toml")
CONFIG_ENV = "DOCKD_CONFIG"
SERIAL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DOCK_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

T = TypeVar("T")


class TableReader:
    """Reads one TOML table, checking types and rejecting keys nobody asked for."""

    def __init__(self, data: Any, prefix: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{prefix}: must be a table, got {_type_name(data)}")
        self.data: dict[str, Any] = data
        self.prefix = prefix
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        """The dotted name of a key, for messages."""
        return f"{self.prefix}.{name}" if self.prefix else name

    def get(self, name: str, kind: type[T] | tuple[type, ...], default: T) -> T:
        """The value of ``name`` if it has the right type, else ``default`` when absent."""
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a config that says `port = true` is wrong.
        if isinstance(value, bool) and bool not in kinds:
            raise ConfigError(f"{self.key(name)}: expected {_kinds(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise ConfigError(f"{self.key(name)}: expected {_kinds(kinds)}, got {_type_name(value)}")
        return value  # type: ignore[return-value]

    def string(self, name: str, default: str, pattern: re.Pattern[str] | None = None,
               hint: str = "") -> str:
        value = self.get(name, str, default)
        if pattern is not None and not pattern.match(value):
            raise ConfigError(f"{self.key(name)}: {value!r} is not valid; expected {hint}")
        return value

    def integer(self, name: str, default: int, minimum: int | None = None,
                maximum: int | None = None) -> int:
        value = self.get(name, int, default)
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self.key(name)}: {value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{self.key(name)}: {value} is above the maximum {maximum}")
        return value

    def number(self, name: str, default: float, minimum: float | None = None,
               maximum: float | None = None) -> float:
        value = float(self.get(name, (int, float), default))
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self.key(name)}: {value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{self.key(name)}: {value} is above the maximum {maximum}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return self.get(name, bool, default)

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        value = self.get(name, str, default)
        if value not in choices:
            raise ConfigError(
                f"{self.key(name)}: {value!r} is not one of {', '.join(repr(c) for c in choices)}"
            )
        return value

    def path(self, name: str, default: Path | None) -> Path | None:
        value = self.get(name, (str, type(None)), None if default is None else str(default))
        if value is None:
            return None
        if not value:
            raise ConfigError(f"{self.key(name)}: must be a path, got an empty string")
        return Path(value)

    def string_list(self, name: str, default: Sequence[str],
                    choices: Sequence[str] | None = None) -> tuple[str, ...]:
        value = self.get(name, list, list(default))
        for item in value:
            if not isinstance(item, str):
                raise ConfigError(f"{self.key(name)}: every entry must be a string")
            if choices is not None and item not in choices:
                raise ConfigError(
                    f"{self.key(name)}: {item!r} is not one of "
                    f"{', '.join(repr(c) for c in choices)}"
                )
        return tuple(value)

    def table(self, name: str) -> TableReader:
        """A sub-table (absent = empty)."""
        return TableReader(self.get(name, dict, {}), self.key(name))

    def tables(self, name: str) -> list[TableReader]:
        """An array of tables (``[[name]]``)."""
        value = self.get(name, list, [])
        return [TableReader(item, f"{self.key(name)}[{i}]") for i, item in enumerate(value)]

    def finish(self) -> None:
        """Raise on the first key that no reader asked for."""
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            known = ", ".join(sorted(self.seen)) or "none"
            raise ConfigError(f"{self.key(unknown[0])}: unknown key (known keys here: {known})")


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


HASH_ALGORITHMS = ("sha256", "sm3")
MHL_HASHES = ("xxh128", "c4")


@dataclass(frozen=True)
class IngestSection:
    """How files are copied and hashed into the store."""

    hashes: tuple[str, ...] = ("sha256",)
    verify_after_copy: str = "destination"
    readback_hash: str = "xxh128"
    mhl: bool = True
    mhl_hashes: tuple[str, ...] = MHL_HASHES
    checkpoint_every: int = 100
    chunk_bytes: int = 1 << 20
    source_change_retries: int = 2
    metadata: bool = True
    store_reserve_bytes: int = 64 << 20
    commit_batch_files: int = 256
    commit_batch_bytes: int = 256 << 20


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    dock: DockSection = field(default_factory=DockSection)
    ingest: IngestSection = field(default_factory=IngestSection)
    source: Path | None = None
    extra_sections: dict[str, Any] = field(default_factory=dict)

    def with_store(self, store_dir: Path) -> Config:
        """The same config with another store directory (``--store``)."""
        dock = DockSection(self.dock.id, self.dock.site, store_dir, self.dock.signing_key,
                           self.dock.log_level)
        return Config(dock, self.ingest, self.source, self.extra_sections)


# Sections owned by other modules register a parser here, so config.py stays the one place
# that knows the file's shape without importing the whole daemon.
SectionParser = Callable[[TableReader], Any]
SECTION_PARSERS: dict[str, SectionParser] = {}


def register_section(name: str, parser: SectionParser) -> None:
    """Let a module own the parsing of ``[name]``; its result lands in ``extra_sections``."""
    SECTION_PARSERS[name] = parser


def resolve_config_path(cli_path: str | os.PathLike[str] | None) -> Path | None:
    """``--config`` beats ``DOCKD_CONFIG`` beats the default; None when none exists."""
    if cli_path:
        return Path(cli_path)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_config(path: Path | None) -> Config:
    """Parse and validate the config at ``path``; defaults when ``path`` is None."""
    if path is None:
        return parse_config({})
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    config = parse_config(data)
    return Config(config.dock, config.ingest, path, config.extra_sections)


def parse_config(data: dict[str, Any]) -> Config:
    """Validate a parsed TOML document."""
    _import_section_owners()
    root = TableReader(data, "")
    dock = _parse_dock(root.table("dock"))
    ingest = _parse_ingest(root.table("ingest"))
    extra = {}
    for name, parser in SECTION_PARSERS.items():
        section = root.table(name)
        extra[name] = parser(section)
        section.finish()
    root.finish()
    return Config(dock=dock, ingest=ingest, extra_sections=extra)


def _import_section_owners() -> None:
    """Import the modules that register config sections (kept lazy for a fast CLI)."""
    import importlib

    for module in _SECTION_OWNER_MODULES:
        importlib.import_module(module)


# Modules that call register_section() at import time.
_SECTION_OWNER_MODULES: list[str] = [
    "dockd.dock.settings",
    "dockd.report.leds.config",
    "dockd.report.mqtt.config",
    "dockd.records.settings",
    "dockd.records.archive.config",
]


def _parse_dock(t: TableReader) -> DockSection:
    section = DockSection(
        id=t.string("id", DockSection.id, DOCK_ID_PATTERN,
                    "letters, digits, '-' or '_', at most 64 characters"),
        site=t.string("site", DockSection.site, DOCK_ID_PATTERN,
                      "letters, digits, '-' or '_', at most 64 characters"),
        store_dir=t.path("store_dir", DockSection.store_dir) or DockSection.store_dir,
        signing_key=t.path("signing_key", None),
        log_level=t.choice("log_level", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
    )
    t.finish()
    return section


def _parse_ingest(t: TableReader) -> IngestSection:
    hashes = t.string_list("hashes", ("sha256",), HASH_ALGORITHMS)
    if "sha256" not in hashes:
        raise ConfigError(f"{t.key('hashes')}: must include 'sha256' (the store's address)")
    section = IngestSection(
        hashes=hashes,
        verify_after_copy=t.choice("verify_after_copy", "destination", ("destination", "none")),
        readback_hash=t.choice("readback_hash", "xxh128", ("xxh128", "sha256")),
        mhl=t.boolean("mhl", True),
        mhl_hashes=t.string_list("mhl_hashes", MHL_HASHES, MHL_HASHES),
        checkpoint_every=t.integer("checkpoint_every", 100, minimum=1, maximum=1_000_000),
        chunk_bytes=t.integer("chunk_bytes", 1 << 20, minimum=64 << 10, maximum=256 << 20),
        source_change_retries=t.integer("source_change_retries", 2, minimum=0, maximum=10),
        metadata=t.boolean("metadata", True),
        store_reserve_bytes=t.integer("store_reserve_bytes", 64 << 20, minimum=0),
        commit_batch_files=t.integer("commit_batch_files", 256, minimum=1, maximum=10_000),
        commit_batch_bytes=t.integer("commit_batch_bytes", 256 << 20, minimum=1 << 20),
    )
    if section.mhl and not section.mhl_hashes:
        raise ConfigError(f"{t.key('mhl_hashes')}: ASC MHL needs at least one of xxh128, c4")
    t.finish()
    return section


def _kinds(kinds: tuple[type, ...]) -> str:
    return " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "an array", dict: "a table", type(None): "nothing"}


def _type_name(value: Any) -> str:
    return _KIND_NAMES.get(type(value), type(value).__name__)
