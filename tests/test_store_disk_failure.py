"""The store's disk failing mid-offload, with real kernel I/O errors: the store is an ext4
on a loop device whose backing file lives on a small tmpfs, so once the tmpfs is full the
loop device fails writes with EIO, ext4 aborts its journal and turns read-only -- what a
worn-out eMMC or a dying disk does under a dock."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]
Tree = Callable[[Path, Mapping[str | bytes, bytes]], Path]


def _run(cmd: list[str | Path]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed (the suite runs as root with loop "
                    f"devices): {done.stderr.strip()}")
    return done


class FailingDisk:
    """An ext4 whose writes start failing once ``backing_mib`` of data reached its disk."""

    def __init__(self, base: Path, backing_mib: int) -> None:
        self.backing, self.mnt = base / "backing", base / "store-fs"
        self.backing.mkdir(parents=True)
        self.mnt.mkdir()
        _run(["mount", "-t", "tmpfs", "-o", f"size={backing_mib}M", "tmpfs", self.backing])
        self.image = self.backing / "disk.img"
        with open(self.image, "wb") as fh:
            fh.truncate(400 << 20)
        self.device = _run(["losetup", "-f", "--show", self.image]).stdout.strip()
        _run(["mkfs.ext4", "-q", "-F", self.device])
        _run(["mount", self.device, self.mnt])

    def replace_and_repair(self) -> subprocess.CompletedProcess[str]:
        """The administrator's fix: unmount, give the disk room, fsck, mount again."""
        _run(["umount", self.mnt])
        _run(["mount", "-o", "remount,size=700M", self.backing])
        fsck = subprocess.run(["e2fsck", "-fy", self.device], capture_output=True, text=True)
        _run(["mount", self.device, self.mnt])
        return fsck

    def cleanup(self) -> None:
        for cmd in (["umount", "-l", str(self.mnt)], ["losetup", "-d", self.device],
                    ["umount", "-l", str(self.backing)]):
            subprocess.run(cmd, capture_output=True, check=False)


@pytest.fixture
def failing_disk(tmp_path: Path) -> Iterator[FailingDisk]:
    disk = FailingDisk(tmp_path / "disk", backing_mib=48)
    try:
        yield disk
    finally:
        disk.cleanup()


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_disk_failing_mid_offload_is_one_clear_error_and_loses_nothing(
        dockd_cli: Cli, make_tree: Tree, tmp_path: Path, failing_disk: FailingDisk) -> None:
    files = {f"DCIM/{i:03}.MP4": os.urandom(4 << 20) for i in range(40)}  # 160 MiB > 48 MiB
    src = make_tree(tmp_path / "src", files)
    before = _snapshot(src)
    config = tmp_path / "dockd.toml"
    config.write_text(f"[dock]\nstore_dir = '{failing_disk.mnt / 'store'}'\n")

    failed = dockd_cli(["ingest", src, "--recorder", "R1", "--config", config])
    assert failed.returncode == 73, failed.stderr  # EX_CANTCREAT, not a crash
    assert "Traceback" not in failed.stderr
    error_lines = [ln for ln in failed.stderr.splitlines() if ln.startswith("dockd: error:")]
    assert len(error_lines) == 1 and "evidence store" in error_lines[0]
    assert "fsck" in error_lines[0]  # what the administrator does next
    assert _snapshot(src) == before  # the recorder's files are untouched

    fsck = failing_disk.replace_and_repair()
    assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr  # 1: errors corrected

    again = dockd_cli(["ingest", src, "--recorder", "R1", "--config", config, "--json"])
    assert again.returncode == 0, again.stderr
    items = json.loads(dockd_cli(["catalog", "--config", config, "--json"]).stdout)
    stored = {item["source_path"]: item["sha256"] for item in items}
    assert stored == {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    assert dockd_cli(["verify", "--config", config]).returncode == 0
    log = json.loads(dockd_cli(["log", "--config", config, "--json"]).stdout)
    sessions = [(e["type"], e["payload"].get("reason")) for e in log
                if e["type"].startswith("session.")]
    # The failed session is closed in the log: by itself if the store still took the
    # record, else by the next start's recovery; then the repeat offload completes.
    assert sessions[0] == ("session.started", None)
    assert sessions[1] in (("session.interrupted", "store_unavailable"),
                           ("session.interrupted", "crash_recovery"))
    assert sessions[2:] == [("session.started", None), ("session.completed", None)]
