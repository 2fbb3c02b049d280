"""The TOML config as typed, validated objects: one module per section, one :class:`Config`.

Every bad value is reported by its dotted key with what would be accepted; loading raises
:class:`~dockd.errors.ConfigError` (exit 78) when any problem was found, and
:func:`check_config_file` lists them all (``dockd check-config``).
"""

from dockd.config.loading import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    check_config_file,
    load_config,
    read_toml,
    resolve_config_path,
)
from dockd.config.reader import Problems, TableReader
from dockd.config.root import Config, check_document, parse_config

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "Config",
    "Problems",
    "TableReader",
    "check_config_file",
    "check_document",
    "load_config",
    "parse_config",
    "read_toml",
    "resolve_config_path",
]
