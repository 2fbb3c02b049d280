"""CPU of starting one ``dockd`` command: this tree against a baseline tree (issue 12 item 6).

The test suite starts the CLI as a real subprocess some thousands of times, so what one
start costs (the interpreter, dockd's imports, the parser) is a large share of its CPU.
Each round runs every command once with this tree's ``dockd``, once with the baseline's
(``--baseline DIR``, e.g. a ``git worktree`` of main; both with this interpreter), and
``python -c pass`` (the interpreter alone), interleaved so that the machine's load falls
on both alike; CPU is user + system of the child (``getrusage``), the median over rounds. Both
trees are byte-compiled first, as ``./dev test`` does.

    .venv/bin/python bench/cli_start.py --baseline /work/main [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def cpu_of(argv: list[str], tree: Path) -> float:
    """CPU-seconds of one run of ``argv`` with ``tree``'s dockd first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("DOCKD_CONFIG", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} (in {tree}) failed: {done.stderr.decode()[-500:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the tree to compare with")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    trees = {"this tree": HERE, "baseline": args.baseline.resolve()}
    for tree in trees.values():  # byte-code, as ./dev test makes it before the tests
        subprocess.run([sys.executable, "-m", "compileall", "-q", "dockd"], cwd=tree, check=True,
                       stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as tmp:
        src, store = Path(tmp) / "src", Path(tmp) / "store"
        (src / "DCIM").mkdir(parents=True)
        for n in range(3):
            (src / "DCIM" / f"clip{n}.mp4").write_bytes(os.urandom(4096))
        dockd = [sys.executable, "-m", "dockd.cli"]
        cpu_of([*dockd, "ingest", str(src), "--recorder", "REC-1", "--store", str(store)], HERE)
        commands = {
            "dockd --version": [*dockd, "--version"],
            "dockd log --json": [*dockd, "log", "--json", "--store", str(store)],
            "dockd catalog --json": [*dockd, "catalog", "--json", "--store", str(store)],
            "dockd verify": [*dockd, "verify", "--store", str(store)],
        }
        interpreter: list[float] = []
        cpu: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            interpreter.append(cpu_of([sys.executable, "-c", "pass"], HERE))
            for name, argv in commands.items():
                for tree_name, tree in trees.items():
                    cpu.setdefault((name, tree_name), []).append(cpu_of(argv, tree))
    base = statistics.median(interpreter)
    print(f"python -c pass: {base * 1000:.0f} ms CPU (median of {args.rounds})")
    print(f"{'command':24} {'this tree':>10} {'baseline':>10} {'ratio':>6}")
    for name in commands:
        mine = statistics.median(cpu[name, "this tree"])
        theirs = statistics.median(cpu[name, "baseline"])
        print(f"{name:24} {mine * 1000:8.0f}ms {theirs * 1000:8.0f}ms {mine / theirs:6.2f}")


if __name__ == "__main__":
    main()
