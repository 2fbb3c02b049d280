"""Every exit code of dockd, one exception class each.

Expected bad input raises one of these (or a narrower subclass that keeps its code) with a
message a dock administrator can act on; the CLI prints it as one line and exits with the
class's code. Anything else is a bug. The codes follow sysexits(3) where one fits; the table
in docs/store.md lists them and a test keeps it in step with this module.
"""

from __future__ import annotations

from typing import ClassVar


class DockdError(Exception):
    """Base of every expected error. ``exit_code`` is what the CLI exits with."""

    exit_code: ClassVar[int] = 1


class IntegrityError(DockdError):
    """The store, the catalog, the custody log or an export failed verification."""

    exit_code = 1


class UsageError(DockdError):
    """The command line is wrong (bad argument, bad recorder serial, unknown item)."""

    exit_code = 2


class IncompleteIngestError(DockdError):
    """Some files of a recorder volume were not stored; each is named in the report."""

    exit_code = 3


class StoreFullError(IncompleteIngestError):
    """The store's file system has no room left for the file being offloaded."""


class SourceUnavailableError(DockdError):
    """The recorder volume is missing or unreadable (EX_NOINPUT)."""

    exit_code = 66


class UnavailableError(DockdError):
    """A device or service dockd needs does not answer or refuses: a recorder, the MQTT
    broker, the daemon's state channel (EX_UNAVAILABLE)."""

    exit_code = 69


class DeviceError(UnavailableError):
    """A recorder answered wrongly, not at all, or refused a command."""


class SoftwareError(DockdError):
    """dockd itself did not reach the state it promised: the demo or a simulated dock did not
    get every bay ready, or the daemon it ran died (EX_SOFTWARE)."""

    exit_code = 70


class StoreUnavailableError(DockdError):
    """The store cannot be written or read: read-only, wrong owner, damaged, locked (EX_CANTCREAT)."""

    exit_code = 73


class CatalogDamagedError(StoreUnavailableError):
    """The catalog database is damaged (not SQLite any more, malformed pages, undecodable
    rows). ``dockd verify`` reports it as an integrity problem (exit 1) instead."""


class ArchiveUnavailableError(DockdError):
    """The archive endpoint did not answer or answered with an unexpected error; try again
    later (EX_TEMPFAIL). Wrong credentials, a missing bucket or one without Object Lock are
    ConfigErrors; bytes the bucket received differently from the store are IntegrityErrors."""

    exit_code = 75


class NotPermittedError(DockdError):
    """The user running the command lacks the role it needs (EX_NOPERM)."""

    exit_code = 77


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


def exit_code_classes() -> dict[int, type[DockdError]]:
    """The class of each exit code (the classes that set ``exit_code`` themselves)."""
    found: dict[int, type[DockdError]] = {}
    pending: list[type[DockdError]] = [DockdError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not DockdError and "exit_code" in cls.__dict__:
            if cls.exit_code in found:
                raise RuntimeError(f"exit code {cls.exit_code} is set by both "
                                   f"{found[cls.exit_code].__name__} and {cls.__name__}")
            found[cls.exit_code] = cls
    return dict(sorted(found.items()))
