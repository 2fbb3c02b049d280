"""The central WORM archive: the store synced to an S3 bucket with Object Lock.

Public entry points: :func:`dockd.records.archive.sync.sync_archive` and
:func:`dockd.records.archive.status.archive_status`; whether one item is archived is
:func:`dockd.store.queries.is_archived`. See ``docs/archive.md``.
"""
