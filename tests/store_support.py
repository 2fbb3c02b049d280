"""Helpers shared by the store's tests."""

from __future__ import annotations

from collections.abc import Callable

from dockd.store.content_store import ContentStore, Published, Rejected, StoredObject, ToPublish


def publish_one(store: ContentStore, fd: int,
                progress: Callable[[int], None] | None = None) -> StoredObject:
    """One file through the real path (stage, then publish_batch): the stored object, or
    the read-back's IntegrityError raised."""
    staged = store.stage(fd, progress)
    done: list[Published] = []
    rejected: list[Rejected] = []

    def commit(published: list[Published], bad: list[Rejected]) -> None:
        done.extend(published)
        rejected.extend(bad)

    store.publish_batch([ToPublish(staged, None)], None, commit)
    if rejected:
        raise rejected[0].error
    (item,) = done
    return item.obj
