"""FAT32 recorder disk images built without mounting (sfdisk + mkfs.vfat --offset + mtools).

A recorder's storage as a dock sees it: an MBR disk with one FAT32 partition at 1 MiB carrying a
volume label and DCIM/ files. Nothing is mounted, so this works without root and without a vfat
driver on the host (this host's kernel has none).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PARTITION_OFFSET = 1 << 20  # 1 MiB, sector 2048: what cameras and sfdisk use by default
_MIN_FAT32_BYTES = 40 << 20  # mkfs.vfat -F 32 refuses much smaller volumes with 512-byte clusters


class ImageError(RuntimeError):
    """An image could not be built; the message carries the failing tool's output."""


@dataclass(frozen=True)
class RecorderImage:
    """What was written: the image path, its label and volume id, and each file's size."""

    path: Path
    label: str
    volume_id: str
    files: Mapping[str, int]


def build_fat32_image(
    path: Path,
    *,
    label: str,
    files: Mapping[str, int | bytes],
    size_mib: int = 64,
    volume_id: str = "1234ABCD",
    seed: int = 0,
) -> RecorderImage:
    """Write an MBR disk image with one FAT32 partition (label `label`, serial `volume_id`).

    `files` maps paths inside the volume ("DCIM/100MEDIA/VID0001.MP4") to either a size (filled
    with deterministic pseudo-random bytes derived from `seed` and the path) or the exact bytes.
    Raises ImageError if a tool fails or the files do not fit.
    """
    if len(label) > 11 or label != label.upper():
        raise ImageError(f"FAT volume label must be <= 11 upper-case characters, got {label!r}")
    size = size_mib << 20
    if size < _MIN_FAT32_BYTES + PARTITION_OFFSET:
        raise ImageError(f"FAT32 image must be at least {(_MIN_FAT32_BYTES >> 20) + 1} MiB")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)
    _tool(["sfdisk", "--quiet", str(path)], stdin=b"label: dos\nstart=2048, type=c\n")
    part_kib = (size - PARTITION_OFFSET) // 1024
    _tool(
        [
            "mkfs.vfat",
            "-F",
            "32",
            "-n",
            label,
            "-i",
            volume_id,
            f"--offset={PARTITION_OFFSET // 512}",
            str(path),
            str(part_kib),
        ]
    )
    sizes: dict[str, int] = {}
    target = f"{path}@@{PARTITION_OFFSET}"
    with tempfile.TemporaryDirectory(prefix="hil-img-") as tmp:
        for rel, content in sorted(files.items()):
            data = content if isinstance(content, bytes) else _filler(seed, rel, content)
            staged = Path(tmp) / "f"
            staged.write_bytes(data)
            _mkdirs(target, rel)
            _tool(["mcopy", "-i", target, str(staged), "::/" + rel])
            sizes[rel] = len(data)
    return RecorderImage(path=path, label=label, volume_id=volume_id, files=sizes)


def list_image(path: Path) -> list[str]:
    """Paths of all files in the image's FAT partition (mdir -/ -b), for checks."""
    out = _tool(["mdir", "-i", f"{path}@@{PARTITION_OFFSET}", "-/", "-b", "::/"])
    return sorted(line.removeprefix("::/") for line in out.splitlines() if line and not line.endswith("/"))


def read_image_file(path: Path, rel: str) -> bytes:
    """The exact bytes of one file in the image's FAT partition (mcopy to stdout)."""
    proc = subprocess.run(
        ["mcopy", "-n", "-i", f"{path}@@{PARTITION_OFFSET}", "::/" + rel, "-"],
        capture_output=True,
        env=_env(),
    )
    if proc.returncode != 0:
        raise ImageError(f"cannot read {rel} from {path}: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def _mkdirs(target: str, rel: str) -> None:
    parts = rel.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        directory = "::/" + "/".join(parts[:depth])
        probe = subprocess.run(["mdir", "-i", target, directory], capture_output=True, env=_env())
        if probe.returncode != 0:
            _tool(["mmd", "-i", target, directory])


def _filler(seed: int, rel: str, size: int) -> bytes:
    # Deterministic content so a test can recompute expected hashes without keeping the bytes.
    import random

    return random.Random(f"{seed}:{rel}").randbytes(size)


def _tool(argv: list[str], stdin: bytes = b"") -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, env=_env())
    if proc.returncode != 0:
        raise ImageError(
            f"{argv[0]} failed rc={proc.returncode}: {proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout.decode(errors="replace")


def _env() -> dict[str, str]:
    # mtools refuses an offset partition whose geometry it cannot verify unless told not to.
    return {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
