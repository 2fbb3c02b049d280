"""The store's ownership check at open (issue 14 item 4): its cost must not grow with the store.

Builds a store's layout with N objects (one fan-out level, 256 directories) and one
session-folder link per object (session folders of 500 files, 10 recorders), and the same
with a tenth of them, then times ``check_store_tree`` as ``ContentStore.open`` calls it
(fan-out directories and recorders' session folders not listed) on both: the ratio large /
small should be near 1. ``os.walk`` over the large store's session folders (what the check
listed before it stopped at the recorders' folders) is printed beside it. Best of several
rounds, warm cache (the check runs right after the store was used), and cold (caches
dropped before each round; needs root).

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

from dockd.store.content_store import OBJECTS_DIR, not_listed_at_open
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
        folder = (root / "sessions" / f"REC-{n % 10}" / "2026-01-01" / f"S{n // PER_FOLDER}"
                  / "DCIM")
        folder.mkdir(parents=True, exist_ok=True)
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
    small, large = (Path(tempfile.mkdtemp(prefix="dockd-open-check-")) for _ in range(2))
    try:
        build(small, args.objects // 10)
        build(large, args.objects)

        def check(root: Path) -> Callable[[], None]:
            return lambda: check_store_tree(root, lambda rel: not_listed_at_open(rel, 1))

        def walk() -> None:
            for _dirpath, _dirs, _files in os.walk(large / "sessions"):
                pass

        modes = [False] + ([True] if os.geteuid() == 0 else [])
        print(f"{args.objects // 10} and {args.objects} objects (as many session-folder "
              f"links), best of {args.rounds}")
        for cold in modes:
            c_small, c_large = (best(check(root), args.rounds, cold) for root in (small, large))
            w = best(walk, args.rounds, cold)
            print(f"{'cold' if cold else 'warm'}: check_store_tree {c_small * 1000:.2f} ms at "
                  f"{args.objects // 10}, {c_large * 1000:.2f} ms at {args.objects} (ratio "
                  f"{c_large / c_small:.2f}); os.walk(sessions) at {args.objects} "
                  f"{w * 1000:.1f} ms")
    finally:
        for root in (small, large):
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
