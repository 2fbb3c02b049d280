"""ASC MHL v2.0 history for an offload session folder.

Written from the digests computed during the copy (no second read). The folder gets
``ascmhl/0001_<folder>_<date>.mhl`` (process ``transfer``) and ``ascmhl/ascmhl_chain.xml``
with the manifest's c4, which the reference tool (``ascmhl-debug verify``) checks.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockd import __version__
from dockd.store.fsutil import DIR_MODE, make_dirs, write_chunks_atomic, write_file_atomic
from dockd.store.hashing import MultiHasher

MHL_DIR = "ascmhl"


@dataclass(frozen=True, slots=True)  # one per file: no __dict__ each
class MhlEntry:
    """One file of the manifest: its path relative to the folder and its digests."""

    path: str
    size: int
    modified: dt.datetime
    digests: dict[str, str]  # xxh128 and/or c4
    hashed_at: dt.datetime


class MhlSpool:
    """A session's manifest entries, kept on disk until the manifest is written (in a
    nameless temp file in ``directory``, gone when closed or when the process dies), so
    that a session of 500,000 files does not hold 500,000 entries in memory."""

    def __init__(self, directory: Path) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed in close()
        self.count = 0

    def append(self, entry: MhlEntry) -> None:
        line = json.dumps([entry.path, entry.size, entry.modified.isoformat(), entry.digests,
                           entry.hashed_at.isoformat()], separators=(",", ":"))
        self._file.write(line.encode("utf-8") + b"\n")
        self.count += 1

    def entries(self) -> Iterator[MhlEntry]:
        """The entries in the order they were appended."""
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            path, size, modified, digests, hashed_at = json.loads(line)
            yield MhlEntry(path, size, dt.datetime.fromisoformat(modified), digests,
                           dt.datetime.fromisoformat(hashed_at))
        self._file.seek(0, 2)  # appending again goes on at the end

    def close(self) -> None:
        self._file.close()


def write_session_mhl(folder: Path, entries: Iterable[MhlEntry], hash_formats: Sequence[str],
                      now: dt.datetime) -> str:
    """Write the history into ``folder/ascmhl``; return the manifest's c4 ID. The entries
    are written in the order given (an offload gives them in the volume's order)."""
    # Imported where used: xml.sax.saxutils pulls in urllib.request, http.client and ssl,
    # a fiftieth of a second at the start of every command that opens the store.
    from xml.sax.saxutils import escape

    mhl_dir = folder / MHL_DIR
    make_dirs(mhl_dir, DIR_MODE)
    stamp = now.astimezone(dt.UTC)
    name = f"0001_{folder.name}_{stamp:%Y-%m-%d_%H%M%S}Z.mhl"
    # Streamed, and hashed as it is written: a session of 10,000 files makes a manifest of
    # some megabytes, which would otherwise sit in memory three times over.
    c4 = MultiHasher(["c4"])

    def hashed(pieces: Iterator[str]) -> Iterator[bytes]:
        for piece in pieces:
            data = piece.encode("utf-8")
            c4.update(data)
            yield data

    write_chunks_atomic(mhl_dir / name, hashed(_manifest_xml(entries, hash_formats, stamp)),
                        mode=0o440)
    manifest_c4 = c4.digests()["c4"]
    chain = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ascmhldirectory xmlns="urn:ASC:MHL:DIRECTORY:v2.0">\n'
        '  <hashlist sequencenr="1">\n'
        f"    <path>{escape(name)}</path>\n"
        f"    <c4>{manifest_c4}</c4>\n"
        "  </hashlist>\n"
        "</ascmhldirectory>\n"
    )
    write_file_atomic(mhl_dir / "ascmhl_chain.xml", chain.encode("utf-8"), mode=0o440)
    return manifest_c4


def _manifest_xml(entries: Iterable[MhlEntry], hash_formats: Sequence[str],
                  now: dt.datetime) -> Iterator[str]:
    """The manifest's text, one file's ``<hash>`` element at a time."""
    from xml.sax.saxutils import escape  # see write_session_mhl

    yield "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<hashlist version="2.0" xmlns="urn:ASC:MHL:v2.0">',
        "  <creatorinfo>",
        f"    <creationdate>{_date(now)}</creationdate>",
        f"    <hostname>{escape(socket.gethostname())}</hostname>",
        f'    <tool version="{escape(__version__)}">dockd</tool>',
        "  </creatorinfo>",
        "  <processinfo>",
        "    <process>transfer</process>",
        "    <ignore>",
        "      <pattern>.DS_Store</pattern>",
        "      <pattern>ascmhl</pattern>",
        "      <pattern>ascmhl/</pattern>",
        "    </ignore>",
        "  </processinfo>",
        "  <hashes>",
        "",
    ])
    for entry in entries:
        lines = ["    <hash>",
                 f'      <path size="{entry.size}" lastmodificationdate="{_date(entry.modified)}">'
                 f"{escape(entry.path)}</path>"]
        lines += [f'      <{fmt} action="original" hashdate="{_date(entry.hashed_at, True)}">'
                  f"{entry.digests[fmt]}</{fmt}>" for fmt in hash_formats]
        lines += ["    </hash>", ""]
        yield "\n".join(lines)
    yield "  </hashes>\n</hashlist>\n"


def _date(moment: dt.datetime, micro: bool = False) -> str:
    moment = moment.astimezone(dt.UTC)
    if not micro:
        moment = moment.replace(microsecond=0)
    return moment.isoformat()
