"""Recording metadata read from a stored file: container, start, end, duration.

mutagen parses the container in-process (no subprocess per file, so offload speed does
not suffer). A file it cannot read gets empty fields, never guessed values. The start
time is the MP4/MOV movie header's creation time, as the recorder wrote it.
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import mutagen
import mutagen.aac
import mutagen.flac
import mutagen.mp3
import mutagen.mp4
import mutagen.oggflac
import mutagen.oggopus
import mutagen.oggspeex
import mutagen.oggtheora
import mutagen.oggvorbis
import mutagen.wave

from dockd.store.content_store import HEAD_BYTES

log = logging.getLogger(__name__)

_MP4_FAMILY: list[type[mutagen.FileType]] = [mutagen.mp4.MP4]
# The containers worth trying for each recorder file name: asking mutagen to score every
# format it knows costs 4-5 times as much per file (54 against 12 µs for a small MP4).
# AMR is a recording format mutagen cannot read: such files get empty fields.
CONTAINERS_BY_SUFFIX: dict[str, list[type[mutagen.FileType]]] = {
    ".mp4": _MP4_FAMILY, ".mov": _MP4_FAMILY, ".m4v": _MP4_FAMILY, ".3gp": _MP4_FAMILY,
    ".m4a": _MP4_FAMILY,
    ".wav": [mutagen.wave.WAVE],
    ".mp3": [mutagen.mp3.MP3],
    ".aac": [mutagen.aac.AAC],
    ".ogg": [mutagen.oggvorbis.OggVorbis, mutagen.oggopus.OggOpus, mutagen.oggflac.OggFLAC,
             mutagen.oggspeex.OggSpeex, mutagen.oggtheora.OggTheora],
    ".flac": [mutagen.flac.FLAC],
    ".amr": [],
}
MEDIA_SUFFIXES = set(CONTAINERS_BY_SUFFIX)
_MP4_EPOCH = dt.datetime(1904, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class RecordingMetadata:
    """What could be read; None where the file does not say."""

    format: str | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    duration_s: float | None = None
    extractor: str = "none"


EMPTY = RecordingMetadata()


def read_metadata(path: str | Path, name_hint: str,
                  head: bytes | None = None) -> RecordingMetadata:
    """Metadata of the stored file at ``path``; ``name_hint`` (the recorder's name) picks
    whether to look at all. ``head``, the file's first :data:`HEAD_BYTES` bytes kept from
    its copy, lets a file that no container claims be passed over without opening it.
    Never raises for a malformed file."""
    containers = CONTAINERS_BY_SUFFIX.get(suffix(name_hint).lower())
    if not containers:
        return EMPTY
    if head is not None and not claimed(containers, str(path), head[:HEAD_BYTES]):
        return EMPTY
    try:
        media = mutagen.File(path, options=containers)
    except Exception as exc:  # mutagen raises many types on hostile input; all mean "unreadable"
        log.debug("metadata unreadable", extra={"path": str(path), "error": repr(exc)})
        return EMPTY
    if media is None or media.info is None:
        return EMPTY
    fmt = type(media).__name__.lower()
    length = getattr(media.info, "length", None)
    duration = float(length) if isinstance(length, int | float) and length > 0 else None
    start = _mp4_creation_time(path) if isinstance(media, mutagen.mp4.MP4) else None
    end = start + dt.timedelta(seconds=duration) if start and duration else None
    return RecordingMetadata(fmt, start, end, duration, "mutagen")


def suffix(name: str) -> str:
    """``PurePosixPath(name).suffix`` of a recorder path (no ``.`` component: the walk never
    gives one) without building a path (once per stored file)."""
    last = name.rstrip("/").rpartition("/")[2]
    dot = last.rfind(".")
    return last[dot:] if 0 < dot < len(last) - 1 else ""


def claimed(containers: list[type[mutagen.FileType]], name: str, head: bytes) -> bool:
    """Whether ``mutagen.File`` would parse the file: it scores each container on the
    file's name and first 128 bytes and parses only when one scores above zero. Deciding
    that from the bytes kept at the copy spares an open and a read of every small file
    named like media that is not (a sixth of the committer's time on 64 KiB files)."""
    try:
        return max(kind.score(name, None, head) for kind in containers) > 0
    except Exception:  # a score that wants more than name and header: let mutagen decide
        return True


def _mp4_creation_time(path: str | Path) -> dt.datetime | None:
    try:
        with open(path, "rb") as fh:
            atoms = mutagen.mp4.Atoms(fh)  # type: ignore[attr-defined]
            mvhd = atoms.path(b"moov", b"mvhd")[-1]
            ok, data = mvhd.read(fh)
    except Exception:  # any malformed box tree: no creation time
        return None
    if not ok:
        return None
    return parse_mvhd_creation(data)


def parse_mvhd_creation(data: bytes) -> dt.datetime | None:
    """Creation time from an mvhd box body (version 0: 32-bit, version 1: 64-bit seconds
    since 1904); None when absent, zero or out of range."""
    if len(data) < 8:
        return None
    version = data[0]
    if version == 1 and len(data) >= 12:
        seconds = struct.unpack(">Q", data[4:12])[0]
    elif version == 0:
        seconds = struct.unpack(">I", data[4:8])[0]
    else:
        return None
    if seconds == 0:
        return None
    try:
        return _MP4_EPOCH + dt.timedelta(seconds=seconds)
    except OverflowError:
        return None
