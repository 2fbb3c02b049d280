"""Filling the ledger's gaps from the docks' custody segments in the WORM archive.

For a hole ``lo..hi`` of a dock, the segments whose range overlaps it are read (the
bucket's list of ``<prefix>/custody/``), each checked on its own against the dock's
*enrolled* key (:func:`parse_segment`: record hashes, chain, signed checkpoint), and its
records in the hole go through the very same judging and planning as records from MQTT,
with ``source = 'archive'``. A segment that does not check out is an alert, never kept.
The archive is read-only to the ledger: its key needs only ``s3:ListBucket`` and
``s3:GetObject``.
"""

from __future__ import annotations

import logging
from typing import Any

from dockd.clock import SystemClock
from dockd.config.ledger import LedgerSection
from dockd.errors import DockdError
from dockd.ledger import notes
from dockd.ledger.db import LedgerDb
from dockd.ledger.gaps import Filler, Hole
from dockd.ledger.judge import judge
from dockd.ledger.plan import ALERT_REJECTED, Alert
from dockd.records.archive.custody_segments import parse_segment, segment_range
from dockd.store.canonical import canonical_json

log = logging.getLogger(__name__)


def archive_filler(section: LedgerSection) -> Filler:
    """A :data:`Filler` reading the bucket of ``[ledger.archive]``."""
    from dockd.records.archive.credentials import load_credentials
    from dockd.records.archive.objectstore import S3Archive

    archive_section = section.archive
    assert archive_section is not None
    archive = S3Archive(archive_section, load_credentials(archive_section.credentials_file),
                        str(archive_section.credentials_file))
    return ArchiveFiller(section, archive).fill


class ArchiveFiller:
    """Fills holes of one ledger database from one bucket."""

    def __init__(self, section: LedgerSection, archive: Any) -> None:
        self.section = section
        self.archive = archive

    def fill(self, db: LedgerDb, dock: str, hole: Hole) -> int:
        """Keep what the archive has of ``hole``; how many records it filled."""
        row = db.conn.execute("SELECT public_key, coalesce(archive_prefix, dock), site FROM docks"
                              " WHERE dock = %s", (dock,)).fetchone()
        db.conn.commit()
        if row is None:
            return 0
        key, prefix, site = row
        try:
            keys = self.archive.list_keys(f"{prefix}/custody/")
        except DockdError as exc:
            log.warning("archive unreachable for gap filling", extra={"dock": dock,
                                                                     "error": str(exc)})
            return 0
        filled = 0
        for name in keys:
            span = segment_range(name)
            if span is None or span[1] < hole.lo or span[0] > hole.hi:
                continue
            try:
                segment = parse_segment(self.archive.get_bytes(name), key, dock)
            except (ValueError, DockdError) as exc:
                now = SystemClock().now()
                with db.conn.transaction():
                    db.write_alerts([Alert(dock, ALERT_REJECTED, f"archive:{name}",
                                           notes.SEGMENT_REFUSED(name=name,
                                                                 error=str(exc)[:300]),
                                           span[0], span[1])], now)
                continue
            topic = f"{self.section.mqtt.prefix}/{site or '-'}/{dock}/custody"
            wanted = [r for r in segment.records if hole.lo <= r["seq"] <= hole.hi]
            items = [judge(self.section.mqtt.prefix, topic, canonical_json(r),
                           self.section.max_payload_bytes) for r in wanted]
            cp_topic = f"{self.section.mqtt.prefix}/{site or '-'}/{dock}/checkpoint"
            items.append(judge(self.section.mqtt.prefix, cp_topic,
                               canonical_json(segment.checkpoint.to_json_dict()),
                               self.section.max_payload_bytes))
            result = db.apply_batch(items, SystemClock().now(), source="archive")
            filled += result.kept
            log.info("gap filled from the archive", extra={"dock": dock, "segment": name,
                                                           "kept": result.kept})
        return filled
