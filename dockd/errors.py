"""One exception class per exit code.

Expected bad input raises one of these with a message a dock administrator can act on;
the CLI prints it as one line and exits with the class's code. Anything else is a bug.
"""

from __future__ import annotations


class DockdError(Exception):
    """Base of every expected error. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class IntegrityError(DockdError):
    """The store, the catalog or the custody log failed verification."""

    exit_code = 1


class UsageError(DockdError):
    """The command line is wrong (bad argument, bad recorder serial, unknown item)."""

    exit_code = 2


class IncompleteIngestError(DockdError):
    """Some files of a recorder volume could not be stored; each is named in the report."""

    exit_code = 3


class SourceUnavailableError(DockdError):
    """The recorder volume is missing or unreadable (EX_NOINPUT)."""

    exit_code = 66


class StoreUnavailableError(DockdError):
    """The store cannot be written: read-only, wrong owner, missing (EX_CANTCREAT)."""

    exit_code = 73


class StoreFullError(DockdError):
    """The store's filesystem has no room left for the file being offloaded."""

    exit_code = 3


class ConfigError(DockdError):
    """The configuration file is missing, unparsable or has a bad value (EX_CONFIG).

    ``problems`` holds every problem found when the config was checked as a whole; the
    message names the first and counts the rest.
    """

    exit_code = 78

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)

    @classmethod
    def of(cls, problems: tuple[str, ...]) -> ConfigError:
        """One error for a list of problems (at least one)."""
        more = len(problems) - 1
        message = problems[0] if not more else \
            f"{problems[0]} (and {more} more: dockd check-config lists them all)"
        return cls(message, problems)


class DeviceError(DockdError):
    """A recorder answered wrongly, not at all, or refused a command."""

    exit_code = 69
