"""The ledger's own expected errors (each with the exit code the CLI uses)."""

from __future__ import annotations

from dockd.errors import ArchiveUnavailableError


class LedgerUnavailableError(ArchiveUnavailableError):
    """PostgreSQL cannot be reached or refused us; retry later (exit 75, EX_TEMPFAIL, the
    code of :class:`~dockd.errors.ArchiveUnavailableError`: one class per exit code)."""
