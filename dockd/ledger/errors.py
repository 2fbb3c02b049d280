"""The ledger's own expected errors (each with the exit code the CLI uses)."""

from __future__ import annotations

from dockd.errors import DockdError


class LedgerUnavailableError(DockdError):
    """PostgreSQL cannot be reached or refused us; retry later (EX_TEMPFAIL)."""

    exit_code = 75
