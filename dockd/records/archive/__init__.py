"""The central WORM archive: the store synced to an S3 bucket with Object Lock.

Public entry points: :func:`dockd.records.archive.status.is_archived` (re-exported here),
:func:`dockd.records.archive.sync.sync_archive` and
:func:`dockd.records.archive.status.archive_status`. See ``docs/archive.md``.
"""

from __future__ import annotations

from dockd.records.archive.status import is_archived

__all__ = ["is_archived"]
