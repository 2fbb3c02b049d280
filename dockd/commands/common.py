"""Options and helpers shared by the command modules."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dockd.config import Config, load_config, resolve_config_path
from dockd.logs import setup_logging


def add_config_options(parser: argparse.ArgumentParser, store: bool = True) -> None:
    """``--config PATH`` (and ``--store DIR`` to override the config's store_dir)."""
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default: $DOCKD_CONFIG or /etc/dockd/dockd.toml)")
    if store:
        parser.add_argument("--store", metavar="DIR", type=Path,
                            help="evidence store directory (overrides dock.store_dir)")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")


def config_from_args(args: argparse.Namespace) -> Config:
    """Load the config named by the arguments, apply ``--store``, set the log level."""
    config = load_config(resolve_config_path(getattr(args, "config", None)))
    store = getattr(args, "store", None)
    if store is not None:
        config = config.with_store(store)
    setup_logging(config.dock.log_level)
    return config


def print_json(value: Any) -> None:
    """Pretty JSON on stdout, UTF-8 kept readable."""
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2, sort_keys=False)
    sys.stdout.write("\n")
