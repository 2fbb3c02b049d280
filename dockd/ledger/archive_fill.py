"""Filling the ledger's gaps from the docks' custody segments in the WORM archive."""

from __future__ import annotations

from typing import Any

from dockd.ledger.gaps import Filler


def archive_filler(section: Any) -> Filler | None:
    """A :data:`Filler` reading the archive of ``section`` (not yet built)."""
    return None
