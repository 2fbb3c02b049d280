"""Which items are under a hold now: the one place the archive asks about holds.

Holds (rule art. 12(3): kept longer when there is a complaint or petition) belong to
:mod:`dockd.records.holds`; the archive only mirrors them onto the bucket's legal hold
(ON while held, OFF once released). Callers may pass their own :data:`HeldItems`; the
default asks :func:`dockd.records.holds.held_items`, which resolves item, case and
recorder holds. The archive never reads the ``holds`` table itself.
"""

from __future__ import annotations

from collections.abc import Callable

from dockd.store.catalog import Catalog

HeldItems = Callable[[Catalog], frozenset[str]]


def held_items_from_catalog(catalog: Catalog) -> frozenset[str]:
    """SHA-256 of every stored item an active hold covers now."""
    # Imported here so the archive's core does not load the holds CLI's dependencies
    # until a sync actually runs.
    from dockd.records.holds import held_items

    return held_items(catalog)
