"""What the store's benchmarks share: loop-mounted file systems, cold caches, timed runs of
shell baselines and of ``dockd`` as a real subprocess (with its peak RSS), data sets.

Measured the way issue 17 asks: the recorder's volume on a loop-mounted file system of
its own (a card is another device), the store on a fresh journaled ext4, ``sync`` and
``drop_caches`` before every timed run.
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


@dataclass(frozen=True)
class Run:
    """One timed run."""

    name: str
    seconds: float
    max_rss_mb: float | None = None
    cpu_seconds: float | None = None  # user + system: what the machine's load does not inflate
    tree_rss_mb: float | None = None  # the peak of the process's and its children's RSS summed
    tree_pss_mb: float | None = None  # the same in PSS: pages the processes share counted once
    stolen_seconds: float = 0.0  # CPU the hypervisor gave other machines during the run


def stolen_cpu_seconds() -> float:
    """The machine's CPU time stolen by the hypervisor so far (``/proc/stat``'s steal, all
    CPUs): a run it grew during ran on less CPU than the others (issue 17, seventh session:
    the same offload took 5.2 s with none and 6.7 s with 1 s stolen)."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


class TreeRss:
    """Samples a process's memory plus its children's (dockd's copier process) every 50 ms:
    the kernel's peak RSS of a process is its own, or its largest child's, never their
    sum. RSS counts the pages two processes share (the interpreter, OpenSSL) in each;
    PSS splits them between them, so its sum is the memory they use together."""

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self.peak_pss = 0
        self._pid = pid
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> tuple[float, float]:
        """The peaks, RSS and PSS summed, in MB."""
        self._done.set()
        self._thread.join()
        return self.peak / (1 << 20), self.peak_pss / (1 << 20)

    def _sample(self) -> None:
        try:
            proc = psutil.Process(self._pid)
        except psutil.NoSuchProcess:
            return
        while not self._done.wait(0.05):
            try:
                tree = [proc, *proc.children(recursive=True)]
                full = [p.memory_full_info() for p in tree]
            except psutil.Error:
                continue  # a child just ended, or the process
            self.peak = max(self.peak, sum(m.rss for m in full))
            self.peak_pss = max(self.peak_pss, sum(m.pss for m in full))


@contextlib.contextmanager
def loop_fs(image: Path, mnt: Path, size_bytes: int, fstype: str = "ext4",
            inodes: int | None = None) -> Iterator[Path]:
    """A new file system (``mkfs`` defaults: ext4 is journaled) in a sparse image,
    loop-mounted with direct I/O so its data is not cached twice; unmounted, detached and
    deleted afterwards. ext4's lazy inode-table and journal initialisation is turned off:
    it would write in the background during the timed runs."""
    with open(image, "wb") as fh:
        fh.truncate(size_bytes)
    if fstype == "ext4":
        cmd = ["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"]
        if inodes:
            cmd += ["-N", str(inodes)]
        subprocess.run([*cmd, str(image)], check=True)
    else:
        subprocess.run([f"mkfs.{fstype}", str(image)], check=True, capture_output=True)
    device = subprocess.run(["losetup", "--direct-io=on", "-f", "--show", str(image)],
                            check=True, capture_output=True, text=True).stdout.strip()
    try:
        mnt.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", device, str(mnt)], check=True)
        try:
            yield mnt
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
    finally:
        subprocess.run(["losetup", "-d", device], check=True)
        image.unlink()


def make_files(directory: Path, count: int, size: int, seed: int, per_dir: int = 0) -> None:
    """``count`` files of ``size`` pseudo-random (incompressible, never duplicate) bytes,
    named like a recorder's; with ``per_dir``, spread over ``100MEDIA``, ``101MEDIA``…"""
    rng = random.Random(seed)
    block = rng.randbytes(min(max(size, 16), 4 * MiB))
    made: set[Path] = set()
    for i in range(count):
        folder = directory / f"{100 + i // per_dir}MEDIA" if per_dir else directory
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        with open(folder / f"F{i:06}.MP4", "wb") as fh:
            left = size
            while left:  # vary each block so no two files (or blocks) deduplicate
                chunk = block[: min(left, len(block))]
                head = (i.to_bytes(8, "little") + left.to_bytes(8, "little"))[:len(chunk)]
                fh.write(head + chunk[len(head):])
                left -= len(chunk)
    subprocess.run(["sync"], check=True)


def can_drop_caches() -> bool:
    return os.access("/proc/sys/vm/drop_caches", os.W_OK)


def drop_caches() -> None:
    """Write everything out, then empty the page cache, so no run reads another's cache."""
    subprocess.run(["sync"], check=True)
    if can_drop_caches():
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def timed_shell(name: str, command: str) -> Run:
    drop_caches()
    stolen = stolen_cpu_seconds()
    t0 = time.perf_counter()
    subprocess.run(command, shell=True, check=True)
    return Run(name, time.perf_counter() - t0, stolen_seconds=stolen_cpu_seconds() - stolen)


def timed_python(name: str, code: str, *args: str) -> Run:
    """A Python baseline run as its own process (``python -c code args…``), with its RSS."""
    return timed_process(name, [sys.executable, "-c", code, *args])


def timed_process(name: str, cmd: Sequence[str], env: dict[str, str] | None = None,
                  stdout: int | None = subprocess.DEVNULL, drop: bool = True) -> Run:
    """``cmd`` timed, with its peak RSS and CPU. Run from the directory of the code it
    imports (``env``'s PYTHONPATH): ``python -m`` puts the working directory first on
    ``sys.path``, so run from a checkout it would import that checkout's dockd instead."""
    if drop:
        drop_caches()
    stolen = stolen_cpu_seconds()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE,
                            cwd=code_dir(env))
    tree = TreeRss(proc.pid)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    tree_rss, tree_pss = tree.stop()
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{name}: {' '.join(map(str, cmd))} failed: {err[-2000:]}")
    return Run(name, seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime,
               max(tree_rss, usage.ru_maxrss / 1024), tree_pss, stolen_cpu_seconds() - stolen)


def code_dir(env: Mapping[str, str] | None) -> str:
    """Where a process importing ``env``'s dockd must start (see :func:`timed_process`)."""
    return (env or os.environ).get("PYTHONPATH") or str(REPO_ROOT)


def dockd_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("DOCKD_CONFIG", None)
    return env


def write_config(path: Path, store: Path, ingest_toml: str = "") -> Path:
    path.write_text(f'[dock]\nstore_dir = "{store}"\n[ingest]\n{ingest_toml}\n')
    return path


def dockd(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "dockd.cli", *map(str, args)]


def byte_compile(code: Path = REPO_ROOT) -> None:
    """As installed: pip byte-compiles a package; without it every run pays for compiling."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(code / "dockd")],
                   check=True, stdout=subprocess.DEVNULL)


NAIVE_COPY = r'''
import hashlib, os, sys
src, dst = sys.argv[1], sys.argv[2]
for dirpath, dirs, files in os.walk(src):
    dirs.sort()
    out = os.path.join(dst, os.path.relpath(dirpath, src))
    os.makedirs(out, exist_ok=True)
    for name in sorted(files):
        h = hashlib.sha256()
        with open(os.path.join(dirpath, name), "rb") as fi, open(os.path.join(out, name), "wb") as fo:
            while chunk := fi.read(1 << 20):
                h.update(chunk)
                fo.write(chunk)
        h.hexdigest()
os.sync()
'''
"""The issue's naive single-pass baseline: copy + SHA-256 in one loop, one sync at the
end (no per-file fsync: the faster, so the harder, of the two readings)."""


def fmt_range(values: Sequence[float], spec: str) -> str:
    return " / ".join(format(v, spec) for v in values)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
