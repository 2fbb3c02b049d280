"""Find recorder drivers through the ``dockd.recorders`` entry-point group."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points

from dockd.devices.recorders.base import RecorderDriver
from dockd.errors import ConfigError
from dockd.i18n import _

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
        raise ConfigError(_("unknown recorder driver {name!r}; installed drivers: {value}").format(
                            name=name, value=', '.join(known) or _('none (is dockd installed?)')))
    return _instantiate(matches[0])


def _instantiate(ep: EntryPoint) -> RecorderDriver:
    try:
        factory = ep.load()
        driver: RecorderDriver = factory()
    except Exception as exc:
        raise ConfigError(_("recorder driver plugin {name!r} ({value}) cannot be loaded: {exc}").format(
                            name=ep.name, value=ep.value, exc=exc)) from exc
    if getattr(driver, "name", None) != ep.name:
        raise ConfigError(_("recorder driver plugin {name!r} ({value}) calls itself {driver_name!r}; the "
                            "names must agree").format(
                            name=ep.name, value=ep.value, driver_name=getattr(driver, 'name', None)))
    log.debug("loaded recorder driver %s from %s", ep.name, ep.value)
    return driver
