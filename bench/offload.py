"""Offload benchmark of the evidence core: ``dockd ingest`` against ``cp -r`` baselines.

    .venv/bin/python bench/offload.py [--workdir DIR] [--scale 1.0] [--rounds 3] [--fs ext4|workdir]
        [--targets-only] [--baseline-code DIR ...]

Builds recorder-like files (4 x 256 MiB + 1,000 x 1 MiB = 2 GiB at scale 1) in a source
directory. With ``--fs ext4`` (the default as root) the source is on a loop-mounted ext4 of
its own (a recorder's card is another device) and the store's file system is a fresh ext4
made with mkfs's defaults (so with a journal) in an image under the workdir, loop-mounted
with direct I/O: what a dock's store partition would be (both made with ext4's lazy
initialisation off, ``fsbench.loop_fs``: it would write in the background during the first
rounds).
(The project machine's root file system is ext4 *without* a journal, where every new inode
makes ext4 scan for recently deleted ones: perf showed it as a sixth of a small-file run.)
``--fs workdir`` uses the workdir's own file system. Then it times, each after ``sync`` and
``echo 3 > /proc/sys/vm/drop_caches`` (root only; so every run starts from the disk):

* ``cp -r`` + ``sync``                        (a copy, nothing hashed)
* ``cp -r`` + ``sha256sum`` of the copy + ``sync`` (two passes, the naive way)
* ``dockd ingest`` with verify_after_copy = "none", "destination", and with SM3 added
* 10,000 files of 64 KiB through ``dockd ingest`` (files per second)

and ``dockd verify`` of the 2 GiB store against ``sha256sum`` over its objects,
in several interleaved rounds (the machine is shared, so only ratios within one round are
meaningful) and prints the median of each round's ratio and each dockd run's peak RSS
(``wait4``). A last dockd mode drops c4 from the MHL hashes, to show what c4 costs.
Targets (issue "Evidence core"): none >= 0.9x cp+sync; both verify modes >= 1.5x
cp+sha256sum; >= 1,000 small files/s; peak RSS <= 80 MB. The SM3 and xxh128-only runs are
configurations reported for comparison. With ``--baseline-code DIR`` (a ``git archive``
export of other dockd code, e.g. main before a change; may be given more than once) the
issue's two modes of that code are timed in the same rounds too, and their ratios printed
beside this code's. Each dockd run's CPU time (user + system) is printed with its wall time.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fsbench  # bench/ is not a package: found through sys.path

REPO_ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


@dataclass(frozen=True)
class Run:
    """One timed run."""

    name: str
    seconds: float
    max_rss_mb: float | None = None
    cpu_seconds: float | None = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where source and stores go (default: a temp dir under /var/tmp)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the data set")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds; ratios are per round, the median is reported")
    parser.add_argument("--fs", choices=("ext4", "workdir"),
                        default="ext4" if os.geteuid() == 0 and shutil.which("mkfs.ext4")
                        else "workdir",
                        help="run on a fresh loop-mounted ext4 (default as root), or in the workdir")
    parser.add_argument("--targets-only", action="store_true",
                        help="only the issue's two modes and verify (no reported-only modes, no"
                             " 10k small files: bench/small_files.py measures those)")
    parser.add_argument("--baseline-code", type=Path, action="append", default=[],
                        help="an export of other dockd code whose two target modes are timed in"
                             " the same rounds (repeatable)")
    args = parser.parse_args()
    # As installed: pip byte-compiles a package; without it every run pays for compiling.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "dockd")],
                   check=True, stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="dockd-bench-", dir=args.workdir or "/var/tmp"))
    try:
        baselines = [code.resolve() for code in args.baseline_code]
        for code in baselines:
            if not (code / "dockd" / "cli.py").is_file():
                raise SystemExit(f"--baseline-code {code}: no dockd/cli.py there")
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(code / "dockd")],
                           check=True, stdout=subprocess.DEVNULL)
        if args.fs == "workdir":
            return run_all(work, work, args.scale, args.rounds, args.targets_only, baselines)
        # The recorder's volume is another device: a file system of its own.
        card_gib, store_gib = max(3, int(3 * args.scale) + 1), max(4, int(10 * args.scale) + 2)
        with fsbench.loop_fs(work / "card.img", work / "card", card_gib << 30) as card, \
                fsbench.loop_fs(work / "store.img", work / "store", store_gib << 30) as mnt:
            print(f"file systems: fresh journaled ext4 on direct-I/O loops, card {card_gib} GiB,"
                  f" store {store_gib} GiB")
            return run_all(mnt, card, args.scale, args.rounds, args.targets_only, baselines)
    finally:
        shutil.rmtree(work, ignore_errors=True)


MODES = {
    "dockd verify=none": 'verify_after_copy = "none"',
    "dockd verify=destination": 'verify_after_copy = "destination"',
    "dockd destination + sm3": 'verify_after_copy = "destination"\nhashes = ["sha256", "sm3"]',
    "dockd none, MHL xxh128 only": 'verify_after_copy = "none"\nmhl_hashes = ["xxh128"]',
}
TARGET_MODES = ("dockd verify=none", "dockd verify=destination")  # the two modes
SMALL_MODES = {
    "10k x 64 KiB verify=destination": 'verify_after_copy = "destination"',
    "10k x 64 KiB verify=none": 'verify_after_copy = "none"',
}


def run_all(work: Path, card: Path, scale: float, rounds: int, targets_only: bool = False,
            baselines: list[Path] | None = None) -> int:
    big_n, big_size = 4, int(256 * MiB * scale)
    small_n = int(1000 * scale)
    src = card / "src"
    make_files(src / "DCIM" / "BIG", big_n, big_size, seed=1)
    make_files(src / "DCIM" / "SMALL", small_n, MiB, seed=2)
    total = big_n * big_size + small_n * MiB
    n_small = 0 if targets_only else int(10_000 * scale)
    if n_small:
        make_files(card / "small" / "DCIM", n_small, 64 << 10, seed=3)
    modes = {m: MODES[m] for m in TARGET_MODES} if targets_only else MODES
    small_modes = {} if targets_only else SMALL_MODES
    print(f"data set: {big_n} x {big_size // MiB} MiB + {small_n} x 1 MiB = {total / MiB:.0f} MiB;"
          f" then {n_small} x 64 KiB")
    print(f"cpu: {os.cpu_count()} cores; caches dropped before each run: {can_drop_caches()};"
          f" {rounds} interleaved rounds (the machine is shared: only same-round ratios count);"
          f" load average at start {_load()}", flush=True)

    ratios: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    rss: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    rates: dict[str, list[float]] = {}

    def note(run: Run) -> Run:
        seconds.setdefault(run.name, []).append(run.seconds)
        if run.max_rss_mb is not None:
            rss.setdefault(run.name, []).append(run.max_rss_mb)
        if run.cpu_seconds is not None:
            cpu.setdefault(run.name, []).append(run.cpu_seconds)
        return run

    for i in range(rounds):
        cp_sync = note(timed_shell("cp -r + sync", f"cp -r {src} {work}/cp1 && sync")).seconds
        shutil.rmtree(work / "cp1")
        cp_sha = note(timed_shell(
            "cp -r + sha256sum + sync",
            f"cp -r {src} {work}/cp2 && find {work}/cp2 -type f -print0 | xargs -0 sha256sum"
            " > /dev/null && sync")).seconds
        shutil.rmtree(work / "cp2")
        # This code's modes and each baseline's two, in an order turned by one each round
        # (whatever runs first after the cp runs meets the disk in another state).
        runs: list[tuple[Path | None, str]] = [(None, name) for name in modes]
        runs += [(code, name) for code in baselines or [] for name in TARGET_MODES]
        shift = i * len(modes) % len(runs)
        for code, name in runs[shift:] + runs[:shift]:
            label = name if code is None else f"{code.name}: {name}"
            run = note(timed_dockd(label, work, src, MODES[name], code=code or REPO_ROOT))
            if code is not None:
                base = "cp+sync" if "none" in name else "cp+sha256sum"
                ratios.setdefault(f"{label} vs {base}", []).append(
                    (cp_sync if "none" in name else cp_sha) / run.seconds)
                continue
            target = "(>= 1.5)" if name in TARGET_MODES else "(reported)"
            ratios.setdefault(f"{name} vs cp+sha256sum {target}", []).append(cp_sha / run.seconds)
            if "none" in name:
                target = "(>= 0.9)" if name in TARGET_MODES else "(reported)"
                ratios.setdefault(f"{name} vs cp+sync {target}", []).append(cp_sync / run.seconds)
        for code in baselines or []:
            for name in TARGET_MODES:
                ratios.setdefault(f"{name}: {code.name} time / this code's", []).append(
                    seconds[f"{code.name}: {name}"][-1] / seconds[name][-1])
        for name, ingest in small_modes.items():
            run = note(timed_dockd(name, work, card / "small", ingest))
            rates.setdefault(f"{name}, files/s (>= 1000)", []).append(n_small / run.seconds)

        # verify of the 2 GiB store (default mode) against sha256sum over its objects
        store = work / "verify-store"
        keep = timed_dockd("dockd default (kept for verify)", work, src,
                           'verify_after_copy = "destination"', keep=store)
        del keep
        sha = note(timed_shell("sha256sum over the objects",
                               f"find {store}/objects -type f -print0 | xargs -0 sha256sum"
                               " > /dev/null")).seconds
        ver = note(timed_verify("dockd verify", work, store))
        ratios.setdefault("dockd verify vs sha256sum (>= 1.5)", []).append(sha / ver.seconds)
        shutil.rmtree(store)
        # Each round as it ends: a run cut short (the shared lock's time) still says something.
        print(f"{time.strftime('%H:%M:%S')} round {i + 1}: "
              + "; ".join(f"{name} {values[-1]:.2f}" for name, values in ratios.items())
              + f"; load average {_load()}", flush=True)

    for name, values in seconds.items():
        peak = f"  peak RSS {max(rss[name]):.0f} MB" if name in rss else ""
        used = f"  CPU {fmt_range(cpu[name], '.2f')} s" if name in cpu else ""
        print(f"{name:<34} {fmt_range(values, '.2f')} s{peak}{used}")
    for name, values in ratios.items():
        print(f"ratio {name:<58} median {statistics.median(values):.2f}  "
              f"(runs {fmt_range(values, '.2f')})")
    for name, values in rates.items():
        print(f"{name:<52} median {statistics.median(values):.0f}  (runs {fmt_range(values, '.0f')})")
    none = statistics.median(seconds["dockd verify=none"])
    dest = statistics.median(seconds["dockd verify=destination"])
    print(f"cost of destination read-back (medians): {dest - none:+.2f} s"
          f" ({(dest / none - 1) * 100:+.0f}%); load average at the end {_load()}")
    return 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def fmt_range(values: list[float], spec: str) -> str:
    return " / ".join(format(v, spec) for v in values)


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


def timed_shell(name: str, command: str) -> Run:
    drop_caches()
    t0 = time.perf_counter()
    subprocess.run(command, shell=True, check=True)
    return Run(name, time.perf_counter() - t0)


def timed_verify(name: str, work: Path, store: Path) -> Run:
    config = work / "verify.toml"
    config.write_text(f'[dock]\nstore_dir = "{store}"\n')
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    cmd = [sys.executable, "-m", "dockd.cli", "verify", "--config", str(config)]
    drop_caches()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=REPO_ROOT)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: dockd verify failed")
    return Run(name, seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def timed_dockd(name: str, work: Path, src: Path, ingest_toml: str,
                keep: Path | None = None, code: Path = REPO_ROOT) -> Run:
    store = keep or work / f"store-{abs(hash(name))}"
    config = work / f"{store.name}.toml"
    config.write_text(f'[dock]\nstore_dir = "{store}"\n[ingest]\n{ingest_toml}\n')
    env = dict(os.environ, PYTHONPATH=str(code))
    cmd = [sys.executable, "-m", "dockd.cli", "ingest", str(src), "--recorder", "BENCH-1",
           "--config", str(config)]
    drop_caches()
    t0 = time.perf_counter()
    # From the code's own directory: `python -m` puts the working directory first on
    # sys.path, so a run started in another checkout would import that one's dockd.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=code)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: dockd ingest failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    if keep is None:
        shutil.rmtree(store)
    return Run(name, seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def can_drop_caches() -> bool:
    return os.access("/proc/sys/vm/drop_caches", os.W_OK)


SETTLE_S = 6.0


def drop_caches() -> None:
    """Write everything out, then empty the page cache, so no run reads another's cache.
    Then wait a few seconds: ext4 will not reuse an inode freed less than 5 s ago and
    scans past each one (recently_deleted), so a run right after the previous run's
    rm -r would pay for that rm (seen with perf; it hits cp and dockd alike)."""
    subprocess.run(["sync"], check=True)
    time.sleep(SETTLE_S)
    if can_drop_caches():
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


if __name__ == "__main__":
    sys.exit(main())
