"""Finding and reading the config file, refusing files that are not plain, small TOML text.

``--config`` may be mistyped or pointed at something hostile: a FIFO would hang the read,
``/dev/zero`` would never end, and a deeply nested document would exhaust the parser's
recursion. Each is refused with exit 78 naming the file.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

from dockd.config.reader import Problems, TomlValue
from dockd.config.root import Config, check_document
from dockd.errors import ConfigError
from dockd.i18n import _

DEFAULT_CONFIG_PATH = Path("/etc/dockd/dockd.toml")
CONFIG_ENV = "DOCKD_CONFIG"
MAX_CONFIG_BYTES = 1 << 20
MAX_NESTING = 16
"""Tables and arrays inside each other; dockd's own config needs four."""


def resolve_config_path(cli_path: str | os.PathLike[str] | None) -> Path | None:
    """``--config`` beats ``DOCKD_CONFIG`` beats the default; None when none exists."""
    if cli_path:
        return Path(cli_path)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_config(path: Path | None) -> Config:
    """Parse and validate the config at ``path``; defaults when ``path`` is None."""
    config, problems = check_config_file(path)
    problems.raise_if_any()
    return config


def check_config_file(path: Path | None) -> tuple[Config, Problems]:
    """Every problem of the config at ``path`` (the file itself is checked first: a file that
    cannot be read as TOML raises ConfigError at once)."""
    if path is None:
        return check_document({})
    config, problems = check_document(read_toml(path))
    return config.with_source(path), problems


def read_toml(path: Path) -> dict[str, TomlValue]:
    """The TOML document at ``path``: a regular file of UTF-8 text, at most 1 MiB."""
    text = _read_small_regular_file(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_("config file {path} is not valid TOML: {exc}").format(
                            path=path, exc=exc)) from None
    except RecursionError:
        raise ConfigError(_("config file {path} nests tables or arrays too deeply (at most {max_nesting} "
                            "levels)").format(path=path, max_nesting=MAX_NESTING)) from None
    if _depth(data) > MAX_NESTING:
        raise ConfigError(_("config file {path} nests tables or arrays too deeply (at most {max_nesting} "
                            "levels)").format(path=path, max_nesting=MAX_NESTING))
    return data


def _read_small_regular_file(path: Path) -> str:
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; the type check refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(_("config file {path} does not exist").format(path=path)) from None
    except OSError as exc:
        raise ConfigError(_("config file {path} cannot be read: {strerror}").format(
                            path=path, strerror=exc.strerror)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(_("config file {path} is not a regular file").format(path=path))
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(_("config file {path} is {st_size} bytes; a config is at most "
                                "{max_config_bytes} bytes").format(
                                path=path, st_size=info.st_size, max_config_bytes=MAX_CONFIG_BYTES))
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(_("config file {path} cannot be read: {strerror}").format(
                            path=path, strerror=exc.strerror)) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(_("config file {path} is over {max_config_bytes} bytes").format(
                            path=path, max_config_bytes=MAX_CONFIG_BYTES))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(_("config file {path} is not UTF-8 text").format(path=path)) from None


def _depth(value: TomlValue) -> int:
    """Nesting depth of a parsed document, without recursion (a hostile one may be deep)."""
    deepest = 0
    stack: list[tuple[TomlValue, int]] = [(value, 1)]
    while stack and deepest <= MAX_NESTING:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
