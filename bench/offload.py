"""Offload benchmark of the evidence core: ``dockd ingest`` against ``cp -r`` baselines.

    .venv/bin/python bench/offload.py [--workdir DIR] [--scale 1.0]

Builds recorder-like files (4 x 256 MiB + 1,000 x 1 MiB = 2 GiB at scale 1) in a source
directory on the same file system as the store, then times, each after ``sync`` and
``echo 3 > /proc/sys/vm/drop_caches`` (root only; so every run starts from the disk):

* ``cp -r`` + ``sync``                        (a copy, nothing hashed)
* ``cp -r`` + ``sha256sum`` of the copy + ``sync`` (two passes, the naive way)
* ``dockd ingest`` with verify_after_copy = "none", "destination", and with SM3 added
* 10,000 files of 64 KiB through ``dockd ingest`` (files per second)

and prints the ratios measured in this run and each dockd run's peak RSS (``wait4``).
Targets (issue "Evidence core"): none >= 0.9x cp+sync; every mode >= 1.5x cp+sha256sum;
>= 1,000 small files/s; peak RSS <= 80 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


@dataclass(frozen=True)
class Run:
    """One timed run."""

    name: str
    seconds: float
    max_rss_mb: float | None = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where source and stores go (default: a temp dir under /var/tmp)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the data set")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dockd-bench-", dir=args.workdir or "/var/tmp"))
    try:
        return run_all(work, args.scale)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_all(work: Path, scale: float) -> int:
    big_n, big_size = 4, int(256 * MiB * scale)
    small_n = int(1000 * scale)
    src = work / "src"
    make_files(src / "DCIM" / "BIG", big_n, big_size, seed=1)
    make_files(src / "DCIM" / "SMALL", small_n, MiB, seed=2)
    total = big_n * big_size + small_n * MiB
    print(f"data set: {big_n} x {big_size // MiB} MiB + {small_n} x 1 MiB = {total / MiB:.0f} MiB")
    print(f"cpu: {os.cpu_count()} cores; caches dropped before each run: {can_drop_caches()}")

    runs: list[Run] = []
    runs.append(timed_shell("cp -r + sync", f"cp -r {src} {work}/cp1 && sync", work / "cp1"))
    runs.append(timed_shell(
        "cp -r + sha256sum + sync",
        f"cp -r {src} {work}/cp2 && find {work}/cp2 -type f -print0 | xargs -0 sha256sum"
        " > /dev/null && sync", work / "cp2"))
    modes = {
        "dockd verify=none": 'verify_after_copy = "none"',
        "dockd verify=destination": 'verify_after_copy = "destination"',
        "dockd destination + sm3": 'verify_after_copy = "destination"\nhashes = ["sha256", "sm3"]',
    }
    for name, ingest in modes.items():
        runs.append(timed_dockd(name, work, src, ingest))
    by = {r.name: r for r in runs}
    for r in runs:
        rss = f"  peak RSS {r.max_rss_mb:.0f} MB" if r.max_rss_mb is not None else ""
        print(f"{r.name:<28} {r.seconds:7.2f} s  {total / MiB / r.seconds:7.0f} MiB/s{rss}")
    cp_sync, cp_sha = by["cp -r + sync"].seconds, by["cp -r + sha256sum + sync"].seconds
    none, dest = by["dockd verify=none"].seconds, by["dockd verify=destination"].seconds
    print(f"ratio dockd(none) speed / cp+sync speed:           {cp_sync / none:.2f} (target >= 0.9)")
    for name in modes:
        print(f"ratio {name} speed / cp+sha256sum speed: "
              f"{cp_sha / by[name].seconds:.2f} (target >= 1.5)")
    print(f"cost of destination read-back: {dest - none:+.2f} s ({(dest / none - 1) * 100:+.0f}%)")

    shutil.rmtree(src)
    for d in ("cp1", "cp2"):
        shutil.rmtree(work / d, ignore_errors=True)
    n_small = int(10_000 * scale)
    make_files(work / "small" / "DCIM", n_small, 64 << 10, seed=3)
    for name, ingest in (("10k x 64 KiB verify=destination", 'verify_after_copy = "destination"'),
                         ("10k x 64 KiB verify=none", 'verify_after_copy = "none"')):
        r = timed_dockd(name, work, work / "small", ingest)
        print(f"{name:<34} {r.seconds:6.2f} s  {n_small / r.seconds:7.0f} files/s (target >= 1000)"
              f"  peak RSS {r.max_rss_mb:.0f} MB")
    return 0


def make_files(directory: Path, count: int, size: int, seed: int) -> None:
    """``count`` files of ``size`` pseudo-random (incompressible) bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    block = rng.randbytes(min(size, 4 * MiB))
    for i in range(count):
        with open(directory / f"{i:05}.MP4", "wb") as fh:
            left = size
            # vary each block so no two files (or blocks) deduplicate
            while left:
                chunk = block[: min(left, len(block))]
                fh.write(i.to_bytes(8, "little") + left.to_bytes(8, "little") + chunk[16:])
                left -= len(chunk)
    subprocess.run(["sync"], check=True)


def timed_shell(name: str, command: str, cleanup: Path) -> Run:
    drop_caches()
    t0 = time.perf_counter()
    subprocess.run(command, shell=True, check=True)
    return Run(name, time.perf_counter() - t0)


def timed_dockd(name: str, work: Path, src: Path, ingest_toml: str) -> Run:
    store = work / f"store-{abs(hash(name))}"
    config = work / f"{store.name}.toml"
    config.write_text(f'[dock]\nstore_dir = "{store}"\n[ingest]\n{ingest_toml}\n')
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    cmd = [sys.executable, "-m", "dockd.cli", "ingest", str(src), "--recorder", "BENCH-1",
           "--config", str(config)]
    drop_caches()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: dockd ingest failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    shutil.rmtree(store)
    return Run(name, seconds, usage.ru_maxrss / 1024)


def can_drop_caches() -> bool:
    return os.access("/proc/sys/vm/drop_caches", os.W_OK)


def drop_caches() -> None:
    """Write everything out, then empty the page cache, so no run reads another's cache."""
    subprocess.run(["sync"], check=True)
    if can_drop_caches():
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


if __name__ == "__main__":
    sys.exit(main())
