"""The ``[ingest]`` section: how files are copied and hashed into the store."""

from __future__ import annotations

from dataclasses import dataclass

from dockd.config.reader import TableReader
from dockd.i18n import _

HASH_ALGORITHMS = ("sha256", "sm3")
MHL_HASHES = ("xxh128", "c4")


@dataclass(frozen=True)
class IngestSection:
    """How files are copied and hashed into the store."""

    hashes: tuple[str, ...] = ("sha256",)
    verify_after_copy: str = "destination"
    readback_hash: str = "xxh128"
    mhl: bool = True
    mhl_hashes: tuple[str, ...] = MHL_HASHES
    checkpoint_every: int = 100
    chunk_bytes: int = 1 << 20
    source_change_retries: int = 2
    metadata: bool = True
    store_reserve_bytes: int = 64 << 20
    commit_batch_files: int = 1024
    commit_batch_bytes: int = 256 << 20
    copier_min_files: int = 512


def parse_ingest(t: TableReader) -> IngestSection:
    """Validate ``[ingest]``."""
    d = IngestSection
    hashes = t.string_list("hashes", d.hashes, HASH_ALGORITHMS)
    if "sha256" not in hashes:
        t.problem("hashes", _("must include 'sha256' (the store's address)"))
        hashes = d.hashes
    section = IngestSection(
        hashes=hashes,
        verify_after_copy=t.choice("verify_after_copy", d.verify_after_copy, ("destination", "none")),
        readback_hash=t.choice("readback_hash", d.readback_hash, ("xxh128", "sha256")),
        mhl=t.boolean("mhl", d.mhl),
        mhl_hashes=t.string_list("mhl_hashes", MHL_HASHES, MHL_HASHES),
        checkpoint_every=t.integer("checkpoint_every", d.checkpoint_every, minimum=1,
                                   maximum=1_000_000),
        chunk_bytes=t.integer("chunk_bytes", d.chunk_bytes, minimum=64 << 10, maximum=256 << 20),
        source_change_retries=t.integer("source_change_retries", d.source_change_retries,
                                        minimum=0, maximum=10),
        metadata=t.boolean("metadata", d.metadata),
        store_reserve_bytes=t.integer("store_reserve_bytes", d.store_reserve_bytes, minimum=0),
        commit_batch_files=t.integer("commit_batch_files", d.commit_batch_files, minimum=1,
                                     maximum=10_000),
        commit_batch_bytes=t.integer("commit_batch_bytes", d.commit_batch_bytes, minimum=1 << 20),
        copier_min_files=t.integer("copier_min_files", d.copier_min_files, minimum=0),
    )
    if section.mhl and not section.mhl_hashes:
        t.problem("mhl_hashes", _("ASC MHL needs at least one of xxh128, c4"))
    return section
