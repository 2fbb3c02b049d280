"""Property tests: random trees, random config documents, random mvhd bytes, random file
heads against mutagen's own choice of container."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

import mutagen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockd.clock import SystemClock
from dockd.config import parse_config
from dockd.errors import ConfigError
from dockd.store.content_store import HEAD_BYTES
from dockd.store.evidence import open_store
from dockd.store.ingest import Ingestor
from dockd.store.metadata import (
    CONTAINERS_BY_SUFFIX,
    EMPTY,
    claimed,
    parse_mvhd_creation,
    read_metadata,
    suffix,
)
from dockd.store.queries import catalog_items
from dockd.store.verify import verify_store

# a name component: any bytes but NUL and '/', not '.' or '..', at most 255 bytes
_component = st.binary(min_size=1, max_size=40).map(
    lambda b: b.replace(b"\0", b"_").replace(b"/", b"_")).filter(lambda b: b not in (b".", b".."))
_path = st.lists(_component, min_size=1, max_size=3).map(b"/".join)
_trees = st.dictionaries(_path, st.binary(max_size=3000), min_size=1, max_size=12)


def _writable(tree: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """Drop paths where one file's path is another's directory (not a possible volume)."""
    out: dict[bytes, bytes] = {}
    for path in sorted(tree, key=len):
        if not any(path.startswith(p + b"/") for p in out):
            out[path] = tree[path]
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees.map(_writable))
def test_random_trees_ingest_verify_and_round_trip_names(tree: dict[bytes, bytes]) -> None:
    base = Path(tempfile.mkdtemp(prefix="dockd-prop-"))
    try:
        src = base / "src"
        for rel, data in tree.items():
            path = os.path.join(os.fsencode(src), rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
        store = open_store(parse_config({"dock": {"store_dir": str(base / "store")},
                                         "ingest": {"metadata": False}}), SystemClock())
        try:
            report = Ingestor(store, "prop").ingest(src, "REC-1")
            assert report.result == "completed", report.files
            got: dict[bytes, str] = {}
            for item in catalog_items(store.catalog):
                raw = base64.b64decode(item["source_path_b64"]) if "source_path_b64" in item \
                    else item["source_path"].encode()
                got[raw] = item["sha256"]
            assert got == {k: hashlib.sha256(v).hexdigest() for k, v in tree.items()}
            assert verify_store(store, "prop").ok
            again = Ingestor(store, "prop").ingest(src, "REC-1")
            assert again.count("known") == len(tree)
        finally:
            store.close()
    finally:
        shutil.rmtree(base)


_toml_scalar = st.one_of(st.integers(min_value=-2**63, max_value=2**63 - 1), st.text(max_size=20),
                         st.booleans(), st.floats(allow_nan=False), st.none())
_toml_value = st.recursive(_toml_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=10)
_keys = st.sampled_from(["id", "site", "store_dir", "signing_key", "log_level", "hashes",
                         "verify_after_copy", "readback_hash", "mhl", "mhl_hashes",
                         "checkpoint_every", "commit_batch_files",
                         "chunk_bytes", "source_change_retries", "metadata",
                         "store_reserve_bytes", "bogus"])
_sections = st.dictionaries(st.sampled_from(["dock", "ingest", "bogus", "leds"]),
                            st.one_of(st.dictionaries(_keys, _toml_value, max_size=6), _toml_value),
                            max_size=3)


@settings(max_examples=300, deadline=None)
@given(doc=_sections)
def test_random_config_documents_only_raise_config_error(doc: dict[str, object]) -> None:
    try:
        parse_config(doc)
    except ConfigError as exc:
        assert str(exc)  # an administrator gets words, not an empty message


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=120))
def test_random_mvhd_bytes_never_raise(data: bytes) -> None:
    result = parse_mvhd_creation(data)
    assert result is None or result.tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(_component.map(lambda b: b.decode("utf-8", "replace")), min_size=1,
                      max_size=4),
       dots=st.lists(st.sampled_from([".", "..", ".MP4", "x.", ".x."]), max_size=3))
def test_the_suffix_that_picks_a_media_probe_is_pathlibs(parts: list[str], dots: list[str]) -> None:
    """The probe's suffix, taken without building a path per file, is what
    ``PurePosixPath.suffix`` gives for any recorder path (names full of dots too)."""
    name = "/".join(parts) + "".join(dots)
    assert suffix(name) == PurePosixPath(name).suffix


# What a recorder's file may start with: each container's signature, or random bytes.
_SIGNATURES = [b"", b"RIFF\x00\x00\x00\x00WAVE", b"ID3", b"\xff\xfb", b"ADIF", b"fLaC",
               b"OggS\x01vorbis", b"OggSOpusHead", b"OggSFLAC", b"OggSSpeex   ",
               b"OggS\x80theora", b"\x00\x00\x00\x18ftypmp42", b"\x00\x00\x00\x08mp4 "]


@settings(max_examples=300, deadline=None)
@given(suffix=st.sampled_from(sorted(CONTAINERS_BY_SUFFIX)),
       start=st.sampled_from(_SIGNATURES), rest=st.binary(max_size=200))
def test_media_probe_from_the_kept_head_decides_as_mutagen_does(
        suffix: str, start: bytes, rest: bytes) -> None:
    """The copy keeps a file's first bytes; a file no container claims on them is passed
    over without being opened. That must be exactly the files mutagen itself would not
    parse: its answer (None, or a parse: a result or an error) from the stored object."""
    data = start + rest
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / hashlib.sha256(data).hexdigest()  # stored objects have no suffix
        obj.write_bytes(data)
        try:
            parsed = mutagen.File(obj, options=CONTAINERS_BY_SUFFIX[suffix]) is not None
        except Exception:
            parsed = True  # it tried, and the file was malformed
        probed = bool(CONTAINERS_BY_SUFFIX[suffix]) and claimed(
            CONTAINERS_BY_SUFFIX[suffix], str(obj), data[:HEAD_BYTES])
        assert probed == parsed
        if not probed:  # then read_metadata gives the empty fields without opening it
            obj.unlink()
            assert read_metadata(obj, f"DCIM/F{suffix}", data[:HEAD_BYTES]) == EMPTY
