"""Helpers of the records tests: a store whose clock the test sets, recordings made with
ffmpeg, dock-runtime events, and snapshots proving that a refused command changed nothing."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dockd.clock import utc_iso
from dockd.config import parse_config
from dockd.store.events import BayFault, RecorderDocked
from dockd.store.evidence import EvidenceStore, open_store
from dockd.store.ingest import Ingestor, IngestReport

T0 = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in UTC+8, week 2026-W48


class SettableClock:
    """A clock the test moves; the store and its custody log share it."""

    def __init__(self, now: dt.datetime) -> None:
        self.t = now

    def now(self) -> dt.datetime:
        return self.t

    def monotonic(self) -> float:
        return self.t.timestamp()


def open_clocked_store(store_dir: Path, clock: SettableClock, **sections: dict[str, object]
                       ) -> EvidenceStore:
    """The real store at ``store_dir`` with ``clock``; ``sections`` adds config tables."""
    config = parse_config({"dock": {"id": "dock-test", "store_dir": str(store_dir)},
                           **sections})
    return open_store(config, clock)


def make_mp4(path: Path, seconds: int = 2, creation: str = "2026-11-23T00:30:00Z") -> Path:
    """A real small H.264/AAC MP4 with a movie-header creation time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc=duration={seconds}:size=64x48:rate=5", "-f", "lavfi", "-i",
                    f"sine=duration={seconds}", "-shortest", "-metadata",
                    f"creation_time={creation}", "-c:v", "libx264", "-c:a", "aac", "-y",
                    str(path)], check=True, capture_output=True)
    return path


def ingest(store: EvidenceStore, source: Path, files: dict[str, bytes],
           recorder: str = "CAM001") -> IngestReport:
    """Write ``files`` under ``source`` and offload them for ``recorder``."""
    for rel, data in files.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)
    report = Ingestor(store, "test").ingest(source, recorder)
    assert report.result == "completed", report.summary()
    return report


def enrol(store: EvidenceStore, serial: str, brand: str, model: str, officer_id: str,
          officer_name: str) -> None:
    """A registry entry as the dock runtime's enrolment writes it."""
    from dockd.store.registry import enroll

    enroll(store, "test", serial, brand, model, officer_id, officer_name, "执法大队")


def docked_event(store: EvidenceStore, serial: str, officer_id: str | None,
                 officer_name: str | None) -> None:
    """``recorder.docked`` with the payload the dock runtime writes (dockd/dock/bay.py)."""
    store.custody.append(RecorderDocked(1, "1-1", serial, "msc", None, officer_id, officer_name,
                                        True, "in_service", None), "test")


def fault_event(store: EvidenceStore, serial: str, reason: str) -> None:
    """``bay.fault`` as the dock runtime writes it."""
    store.custody.append(BayFault(1, "Bay 1", "1-1", reason, reason, serial, False), "test")


@dataclass(frozen=True)
class Snapshot:
    """The custody log length and every path under some directories."""

    custody: int
    paths: frozenset[str]


def snapshot(store_dir: Path, *dirs: Path) -> Snapshot:
    """What a refused command must leave exactly as it was."""
    import sqlite3

    conn = sqlite3.connect(f"file:{store_dir / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        count = conn.execute("SELECT COUNT(*) FROM custody").fetchone()[0]
    finally:
        conn.close()
    paths = set()
    for d in dirs:
        for dirpath, dirnames, names in os.walk(d):
            for n in dirnames + names:
                paths.add(os.path.join(dirpath, n))
    return Snapshot(count, frozenset(paths))


def iso(moment: dt.datetime) -> str:
    return utc_iso(moment)
