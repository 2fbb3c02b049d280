"""Mounting a recorder's volume: read-only, nosuid, nodev, noexec, under
``<mount_root>/<bay>``; read-write only for the moment an action needs it."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Protocol

from dockd.errors import DeviceError

SAFE_OPTIONS = "nosuid,nodev,noexec"
# vfat/exfat: show the recorder's names as UTF-8, and keep every file readable by us only.
FS_OPTIONS = {"vfat": "utf8,shortname=mixed,fmask=0227,dmask=0227",
              "exfat": "iocharset=utf8,fmask=0227,dmask=0227"}
ALLOWED_FS = ("vfat", "exfat", "ext4", "ext3", "ext2", "ntfs3", "xfs", "btrfs")
log = logging.getLogger(__name__)


class MountError(DeviceError):
    """The volume could not be mounted (not a file system, unsupported, busy)."""


class Mounter(Protocol):
    """The edge that turns a block device into a directory and back."""

    def mount(self, device_node: str, name: str, fs_type: str | None) -> Path: ...

    def remount(self, path: Path, writable: bool) -> None: ...

    def unmount(self, path: Path, lazy: bool = False) -> None: ...


class SystemMounter:
    """mount(8)/umount(8) under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mount(self, device_node: str, name: str, fs_type: str | None) -> Path:
        if not fs_type:
            raise MountError(f"{device_node} holds no file system udev recognises; not mounted")
        if fs_type not in ALLOWED_FS:
            raise MountError(f"{device_node} has file system {fs_type!r}, which a recorder does not "
                             f"use; not mounted (allowed: {', '.join(ALLOWED_FS)})")
        target = self.root / name
        target.mkdir(parents=True, exist_ok=True, mode=0o750)
        options = ",".join(filter(None, ["ro", SAFE_OPTIONS, FS_OPTIONS.get(fs_type, "")]))
        _run(["mount", "-t", fs_type, "-o", options, device_node, str(target)],
             f"mounting {device_node}")
        return target

    def remount(self, path: Path, writable: bool) -> None:
        mode = "rw" if writable else "ro"
        _run(["mount", "-o", f"remount,{mode},{SAFE_OPTIONS}", str(path)], f"remounting {path} {mode}")

    def unmount(self, path: Path, lazy: bool = False) -> None:
        _run(["umount", *(["-l"] if lazy else []), str(path)], f"unmounting {path}")
        # Not empty or already gone: left for the administrator to look at.
        with contextlib.suppress(OSError):
            os.rmdir(path)


class DirectoryMounter:
    """For simulated recorders whose "device node" is already a directory."""

    def mount(self, device_node: str, name: str, fs_type: str | None) -> Path:
        path = Path(device_node)
        if not path.is_dir():
            raise MountError(f"{device_node} is not a file system (not a directory)")
        return path

    def remount(self, path: Path, writable: bool) -> None:
        return None

    def unmount(self, path: Path, lazy: bool = False) -> None:
        return None


def _run(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MountError(f"{what} failed: {exc}") from None
    if result.returncode != 0:
        raise MountError(f"{what} failed: {result.stderr.strip() or result.returncode}")
