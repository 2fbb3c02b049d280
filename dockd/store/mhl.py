"""ASC MHL v2.0 history for an offload session folder.

Written from the digests computed during the copy (no second read). The folder gets
``ascmhl/0001_<folder>_<date>.mhl`` (process ``transfer``) and ``ascmhl/ascmhl_chain.xml``
with the manifest's c4, which the reference tool (``ascmhl-debug verify``) checks.
"""

from __future__ import annotations

import codecs
import datetime as dt
import html
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
    """A session's manifest entries, kept on disk as their finished ``<hash>`` elements
    until the manifest is written (in a nameless temp file in ``directory``, gone when
    closed or when the process dies), so that a session of 500,000 files does not hold
    500,000 entries in memory. Each is formatted as it is appended (on the committer,
    beside the copy), so writing the manifest at the session's end is a copy of text."""

    def __init__(self, directory: Path, hash_formats: Sequence[str]) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed in close()
        self._formats = tuple(hash_formats)
        self.count = 0

    def append(self, entry: MhlEntry) -> None:
        self._file.write(hash_element(entry, self._formats).encode("utf-8"))
        self.count += 1

    def elements(self) -> Iterator[str]:
        """The elements' text in the order they were appended, a block at a time."""
        self._file.flush()
        self._file.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()  # a block may end inside a character
        while block := self._file.read(1 << 20):
            yield decoder.decode(block)
        yield decoder.decode(b"", final=True)
        self._file.seek(0, 2)  # appending again goes on at the end

    def close(self) -> None:
        self._file.close()


def write_session_mhl(folder: Path, entries: Iterable[MhlEntry], hash_formats: Sequence[str],
                      now: dt.datetime) -> str:
    """Write the history into ``folder/ascmhl``; return the manifest's c4 ID. The entries
    are written in the order given (an offload gives them in the volume's order)."""
    return _write_mhl(folder, (hash_element(e, hash_formats) for e in entries), now)


def write_spooled_mhl(folder: Path, spool: MhlSpool, now: dt.datetime) -> str:
    """:func:`write_session_mhl` of the entries appended to ``spool``."""
    return _write_mhl(folder, spool.elements(), now)


def _escape(text: str) -> str:
    """XML character data: ``&``, ``<`` and ``>`` escaped, as ``xml.sax.saxutils.escape``
    does, from the light ``html`` module (xml.sax pulls in urllib.request, http.client and
    ssl: a tenth of a second at the end of every offload session)."""
    return html.escape(text, quote=False)


def _write_mhl(folder: Path, elements: Iterable[str], now: dt.datetime) -> str:
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

    write_chunks_atomic(mhl_dir / name, hashed(_manifest_xml(elements, stamp)), mode=0o440)
    manifest_c4 = c4.digests()["c4"]
    chain = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ascmhldirectory xmlns="urn:ASC:MHL:DIRECTORY:v2.0">\n'
        '  <hashlist sequencenr="1">\n'
        f"    <path>{_escape(name)}</path>\n"
        f"    <c4>{manifest_c4}</c4>\n"
        "  </hashlist>\n"
        "</ascmhldirectory>\n"
    )
    write_file_atomic(mhl_dir / "ascmhl_chain.xml", chain.encode("utf-8"), mode=0o440)
    return manifest_c4


def _manifest_xml(elements: Iterable[str], now: dt.datetime) -> Iterator[str]:
    """The manifest's text around the files' ``<hash>`` elements."""
    yield "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<hashlist version="2.0" xmlns="urn:ASC:MHL:v2.0">',
        "  <creatorinfo>",
        f"    <creationdate>{_date(now)}</creationdate>",
        f"    <hostname>{_escape(socket.gethostname())}</hostname>",
        f'    <tool version="{_escape(__version__)}">dockd</tool>',
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
    yield from elements
    yield "  </hashes>\n</hashlist>\n"


def hash_element(entry: MhlEntry, hash_formats: Sequence[str]) -> str:
    """One file's ``<hash>`` element of the manifest, with its line end."""
    hashed_at = _date(entry.hashed_at, True)
    lines = ["    <hash>",
             f'      <path size="{entry.size}" lastmodificationdate="{_date(entry.modified)}">'
             f"{_escape(entry.path)}</path>"]
    lines += [f'      <{fmt} action="original" hashdate="{hashed_at}">'
              f"{entry.digests[fmt]}</{fmt}>" for fmt in hash_formats]
    lines += ["    </hash>", ""]
    return "\n".join(lines)


def _date(moment: dt.datetime, micro: bool = False) -> str:
    moment = moment.astimezone(dt.UTC)
    if not micro:
        moment = moment.replace(microsecond=0)
    return moment.isoformat()
