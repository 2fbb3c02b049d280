"""The store's ownership check at open (issue 14 item 4) against ``os.walk`` of the same tree.

Builds a store's layout with N objects (one fan-out level, 256 directories) and one
session-folder link per object (session folders of 500 files), then times
``check_store_tree`` as ``ContentStore.open`` calls it (fan-out directories not listed)
and, as the baseline in the same run, ``os.walk`` over the session folders alone (the part
the check has to list). Best of several rounds, warm cache (the check runs right after
the store was used), and cold (caches dropped before each round; needs root).

    python bench/store_open_check.py [--objects 50000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dockd.store.content_store import OBJECTS_DIR
from dockd.store.guard import check_store_tree

PER_FOLDER = 500
MAX_LINKS = 60000  # ext4 allows 65,000 links to one inode


def build(root: Path, objects: int) -> None:
    """Empty files linked as objects and as session-folder entries."""
    for i in range(256):
        (root / OBJECTS_DIR / f"{i:02x}").mkdir(parents=True)
    seed = root / "seed"
    for n in range(objects):
        if n % (MAX_LINKS // 2) == 0:
            seed = root / f"seed-{n}"
            seed.write_bytes(b"")
        name = f"{n:064x}"[::-1]
        os.link(seed, root / OBJECTS_DIR / name[:2] / name)
        folder = root / "sessions" / f"REC-{n // 5000}" / "2026-01-01" / f"S{n // PER_FOLDER}" / "DCIM"
        if n % PER_FOLDER == 0:
            folder.mkdir(parents=True)
        os.link(seed, folder / f"F{n % PER_FOLDER:04d}.MP4")
    for path in root.glob("seed-*"):
        path.unlink()
    os.system(f"chmod -R go-w {root}")


def best(fn: Callable[[], object], rounds: int, cold: bool) -> float:
    times = []
    for _ in range(rounds):
        if cold:
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--objects", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dockd-open-check-"))
    try:
        build(root, args.objects)
        levels = OBJECTS_DIR.count("/") + 1

        def check() -> None:
            check_store_tree(root, lambda rel: rel.startswith(f"{OBJECTS_DIR}/")
                             and rel.count("/") == levels)

        def walk() -> None:
            for _dirpath, _dirs, _files in os.walk(root / "sessions"):
                pass

        modes = [False] + ([True] if os.geteuid() == 0 else [])
        print(f"{args.objects} objects, {args.objects} session-folder links, "
              f"best of {args.rounds}")
        for cold in modes:
            c, w = best(check, args.rounds, cold), best(walk, args.rounds, cold)
            print(f"{'cold' if cold else 'warm'}: check_store_tree {c * 1000:.1f} ms, "
                  f"os.walk(sessions) {w * 1000:.1f} ms, ratio {c / w:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
