"""Real recordings for the simulated recorders: copies of one short MP4 (``demo-clip.mp4``,
see README.md here), each with its own start time in the movie header (``mvhd``), so the
dock reads format, length, start and end from them as from a recorder's files, and each
copy has its own SHA-256."""

from __future__ import annotations

import datetime as dt
import io
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import mutagen.mp4

CLIP = Path(__file__).resolve().parent / "demo-clip.mp4"
CLIP_SECONDS = 6
_MP4_EPOCH = dt.datetime(1904, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Recording:
    """One recording put on a card: its path on the card and when it starts."""

    relpath: str
    start: dt.datetime


def clip_starting_at(start: dt.datetime) -> bytes:
    """The demo clip with ``start`` (aware) as its movie header's creation and modification
    time."""
    data = bytearray(CLIP.read_bytes())
    atoms = mutagen.mp4.Atoms(io.BytesIO(bytes(data)))  # type: ignore[attr-defined]
    mvhd = atoms.path(b"moov", b"mvhd")[-1]
    body = mvhd.offset + 8  # after the box's size and type
    seconds = int((start - _MP4_EPOCH).total_seconds())
    if data[body] == 1:  # version 1: 64-bit times
        struct.pack_into(">QQ", data, body + 4, seconds, seconds)
    else:
        struct.pack_into(">II", data, body + 4, seconds, seconds)
    return bytes(data)


def fill_card(card: Path, serial: str, starts: list[dt.datetime]) -> list[Recording]:
    """Write one clip per start time into ``card`` (a recorder's card directory) under
    ``DCIM/100MEDIA/``, named after the serial and the start (UTC) as recorders do."""
    made = []
    for start in starts:
        relpath = f"DCIM/100MEDIA/{serial}_{start.astimezone(dt.UTC):%Y%m%d_%H%M%S}.MP4"
        target = card.joinpath(*PurePosixPath(relpath).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(clip_starting_at(start))
        made.append(Recording(relpath, start))
    return made
