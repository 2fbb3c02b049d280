"""Find recorder drivers through the ``dockd.recorders`` entry-point group."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points

from dockd.devices.recorders.base import RecorderDriver
from dockd.errors import ConfigError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "dockd.recorders"


def load_drivers() -> dict[str, RecorderDriver]:
    """Instantiate every installed driver, keyed by entry-point name.

    A plugin that fails to import is a broken installation, not a recorder fault, so it raises
    ``ConfigError`` naming the plugin rather than being skipped silently.
    """
    drivers: dict[str, RecorderDriver] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        drivers[ep.name] = _instantiate(ep)
    return drivers


def get_driver(name: str) -> RecorderDriver:
    """The driver registered as ``name``; ``ConfigError`` listing the known ones otherwise."""
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        raise ConfigError(f"unknown recorder driver {name!r}; installed drivers: "
                          f"{', '.join(known) or 'none (is dockd installed?)'}")
    return _instantiate(matches[0])


def _instantiate(ep: EntryPoint) -> RecorderDriver:
    try:
        factory = ep.load()
        driver: RecorderDriver = factory()
    except Exception as exc:
        raise ConfigError(f"recorder driver plugin {ep.name!r} ({ep.value}) cannot be loaded: "
                          f"{exc}") from exc
    if getattr(driver, "name", None) != ep.name:
        raise ConfigError(f"recorder driver plugin {ep.name!r} ({ep.value}) calls itself "
                          f"{getattr(driver, 'name', None)!r}; the names must agree")
    log.debug("loaded recorder driver %s from %s", ep.name, ep.value)
    return driver
