"""Options and helpers shared by the command modules."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockd.clock import SystemClock
from dockd.config import Config, load_config, resolve_config_path
from dockd.i18n import _
from dockd.logs import setup_logging
from dockd.store.catalog import Catalog, catalog_errors, catalog_path
from dockd.store.queries import open_catalog_read_only

if TYPE_CHECKING:
    from dockd.store.evidence import EvidenceStore


def add_config_options(parser: argparse.ArgumentParser, store: bool = True) -> None:
    """``--config PATH`` (and ``--store DIR`` to override the config's store_dir)."""
    parser.add_argument("--config", metavar="PATH",
                        help=_("config file (default: $DOCKD_CONFIG or /etc/dockd/dockd.toml)"))
    if store:
        parser.add_argument("--store", metavar="DIR", type=Path,
                            help=_("evidence store directory (overrides dock.store_dir)"))


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help=_("machine-readable JSON output"))


def config_from_args(args: argparse.Namespace) -> Config:
    """Load the config named by the arguments, apply ``--store``, set the log level."""
    config = load_config(resolve_config_path(getattr(args, "config", None)))
    store = getattr(args, "store", None)
    if store is not None:
        config = config.with_store(store)
    setup_logging(config.dock.log_level)
    return config


@contextlib.contextmanager
def reading_catalog(config: Config) -> Iterator[Catalog]:
    """The store's catalog, read-only (works on a read-only file system); closed after. An
    SQLite error in the block is the administrator's error (damaged, locked…)."""
    catalog = open_catalog_read_only(config.dock.store_dir)
    try:
        with catalog_errors(catalog.path):
            yield catalog
    finally:
        catalog.close()


@contextlib.contextmanager
def writing_store(config: Config, recover: bool = True) -> Iterator[EvidenceStore]:
    """The store opened for writing with the system clock (``recover``: close sessions a
    crash left open); closed after. An SQLite error in the block is the administrator's error
    (damaged, full, locked…)."""
    # Imported here: the store's writing side (content store, custody log, signing key,
    # event classes) is two thirds of a command's start, and reading commands never use it.
    from dockd.store.evidence import open_store

    with catalog_errors(catalog_path(config.dock.store_dir), write=True):
        store = open_store(config, SystemClock(), recover=recover)
        try:
            yield store
        finally:
            store.close()


def print_json(value: Any) -> None:
    """Pretty JSON on stdout, UTF-8 kept readable."""
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2, sort_keys=False)
    sys.stdout.write("\n")
