"""The archive's one error of its own: the bucket cannot be reached just now.

Wrong credentials, a missing bucket or one without Object Lock are configuration errors
(:class:`dockd.errors.ConfigError`, exit 78); bytes the bucket received differently from
the store are an :class:`dockd.errors.IntegrityError` (exit 1). What is left is temporary:
the network, the endpoint, or an answer we do not know — try again later (EX_TEMPFAIL).
"""

from __future__ import annotations

from dockd.errors import DockdError


class ArchiveUnavailableError(DockdError):
    """The archive endpoint did not answer or answered with an unexpected error (EX_TEMPFAIL)."""

    exit_code = 75
