"""Verification's pass over the stored files: merged with the catalog directory by
directory, hashed on worker threads, every stray file found wherever it is."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dockd.store.evidence import EvidenceStore
from dockd.store.ingest import Ingestor
from dockd.store.object_check import check_objects
from dockd.store.verify import verify_store

Opener = Callable[..., EvidenceStore]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]


@pytest.mark.parametrize("fanout", [1, 2])
def test_strays_anywhere_under_objects_are_extra_and_stored_files_still_check(
        open_test_store: Opener, make_tree: Tree, tmp_path: Path, store_dir: Path,
        fanout: int) -> None:
    """With one fan-out level (new stores) and with the two of stores made before."""
    files = {f"DCIM/{i}.MP4": os.urandom(1000 + i) for i in range(30)}
    src = make_tree(tmp_path / "src", files)
    if fanout == 2:  # a store from before objects.fanout: it has a catalog already
        store_dir.mkdir()
        (store_dir / "catalog.sqlite").touch()
    store = open_test_store()
    assert store.content.fanout == fanout
    assert Ingestor(store, "t").ingest(src, "REC-1").result == "completed"
    objects = store.root / "objects" / "sha256"
    shas = sorted(hashlib.sha256(d).hexdigest() for d in files.values())
    # A stored file copied to another fan-out directory (its name is a real item's), a file
    # at the top, a directory that is not hex, a directory inside a fan-out directory.
    wrong = objects / ("ff" if shas[0][:2] != "ff" else "00") / "00" / "00"
    wrong.mkdir(parents=True, exist_ok=True)
    (wrong / shas[0]).write_bytes(files["DCIM/0.MP4"])
    (objects / "README").write_bytes(b"x")
    (objects / "zz" / "zz").mkdir(parents=True)
    (objects / "zz" / "zz" / "f").write_bytes(b"x")
    nested = store.content.object_path(shas[5]).parent / "nested"
    nested.mkdir()
    (nested / "g").write_bytes(b"x")
    found: list[tuple[str, str]] = []
    tally = check_objects(store.root, store.catalog, lambda f: found.append((f.kind, f.detail)),
                          workers=2)
    assert tally.items_checked == 30 and tally.bytes_checked == sum(map(len, files.values()))
    assert sorted(detail for kind, detail in found if kind == "extra") == sorted([
        f"objects/sha256/{wrong.relative_to(objects)}/{shas[0]} is not in the catalog",
        "objects/sha256/README is not in the catalog",
        "objects/sha256/zz/zz/f is not in the catalog",
        f"objects/sha256/{nested.relative_to(objects)}/g is not in the catalog"])
    assert all(kind == "extra" for kind, _detail in found)
    assert {p.kind for p in verify_store(store, "t").problems} == {"extra"}  # paths agree


def test_a_file_altered_or_removed_is_found_in_a_large_window(open_test_store: Opener,
                                                              make_tree: Tree,
                                                              tmp_path: Path) -> None:
    """More files than the workers' window: the findings name the right files."""
    files = {f"DCIM/{i:03}.MP4": os.urandom(500 + i) for i in range(120)}
    src = make_tree(tmp_path / "src", files)
    store = open_test_store()
    Ingestor(store, "t").ingest(src, "REC-1")
    shas = sorted(hashlib.sha256(d).hexdigest() for d in files.values())
    altered, gone = store.content.object_path(shas[70]), store.content.object_path(shas[110])
    altered.chmod(0o640)
    altered.write_bytes(b"changed")
    gone.unlink()
    result = verify_store(store, "t")
    assert sorted((p.kind, p.subject) for p in result.problems
                  if p.kind in ("altered", "missing")) == sorted([("altered", shas[70]),
                                                                  ("missing", shas[110])])
    assert result.items_checked == 120  # the missing one was looked for too
