"""Mounting a recorder's volume: read-only, nosuid, nodev, noexec, under
``<mount_root>/<bay>``; read-write only for the moment an action needs it.

Read-only means the recorder's disk is not written at all, not only that the file system
is mounted ``ro``: a journaled file system mounted ``ro`` still replays its journal onto the
disk. So the block device is first made read-only in the kernel (``BLKROSET``), and a
journaled file system is mounted without journal recovery (what the recorder had last
committed to its home blocks is what is offloaded)."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dockd.devices.block_readonly import GONE, set_read_only
from dockd.errors import DeviceError
from dockd.i18n import _

SAFE_OPTIONS = "nosuid,nodev,noexec"
# vfat/exfat: show the recorder's names as UTF-8, and keep every file readable by us only.
FS_OPTIONS = {"vfat": "utf8,shortname=mixed,fmask=0227,dmask=0227",
              "exfat": "iocharset=utf8,fmask=0227,dmask=0227"}
# Each journaled file system's option not to replay its journal (or log) on mount: without
# it a read-only mount still writes, and on a read-only block device it is refused.
NO_RECOVERY = {"ext3": "noload", "ext4": "noload", "xfs": "norecovery",
               "btrfs": "rescue=nologreplay"}
ALLOWED_FS = ("vfat", "exfat", "ext4", "ext3", "ext2", "ntfs3", "xfs", "btrfs")
log = logging.getLogger(__name__)


class MountError(DeviceError):
    """The volume could not be mounted (not a file system, unsupported, busy)."""


class Mounter(Protocol):
    """The edge that turns a block device into a directory and back."""

    def mount(self, device_node: str, name: str, fs_type: str | None) -> Path: ...

    def remount(self, path: Path, writable: bool) -> None: ...

    def unmount(self, path: Path, lazy: bool = False) -> None: ...


def mount_options(fs_type: str) -> str:
    """The ``-o`` options a recorder's ``fs_type`` volume is first mounted with."""
    return ",".join(filter(None, ["ro", SAFE_OPTIONS, NO_RECOVERY.get(fs_type, ""),
                                  FS_OPTIONS.get(fs_type, "")]))


@dataclass(frozen=True)
class _Mounted:
    device_node: str
    fs_type: str
    was_read_only: bool  # the device's flag before we set it: restored after the unmount


class SystemMounter:
    """mount(8)/umount(8) under ``root``, the block device held read-only while mounted."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._mounted: dict[Path, _Mounted] = {}
        self._lock = threading.Lock()

    def mount(self, device_node: str, name: str, fs_type: str | None) -> Path:
        if not fs_type:
            raise MountError(_("{device_node} holds no file system udev recognises; not mounted").format(
                               device_node=device_node))
        if fs_type not in ALLOWED_FS:
            raise MountError(_("{device_node} has file system {fs_type!r}, which a recorder does not "
                               "use; not mounted (allowed: {join})").format(
                               device_node=device_node, fs_type=fs_type, join=', '.join(ALLOWED_FS)))
        target = self.root / name
        target.mkdir(parents=True, exist_ok=True, mode=0o750)
        try:
            was_read_only = _set_read_only(device_node, True, _("make the recorder's disk read-only"))
        except MountError as exc:
            raise MountError(_("{exc}; not mounted").format(exc=exc)) from None
        try:
            _run(["mount", "-t", fs_type, "-o", mount_options(fs_type), device_node, str(target)],
                 _("mounting {device_node}").format(device_node=device_node))
        except MountError:
            if not was_read_only:
                _set_read_only(device_node, False, _("give the disk back its write flag"))
            raise
        with self._lock:
            self._mounted[target] = _Mounted(device_node, fs_type, was_read_only)
        return target

    def remount(self, path: Path, writable: bool) -> None:
        mounted = self._mounted.get(path)
        if mounted is None:
            raise MountError(_("{path} is not a recorder volume dockd mounted").format(path=path))
        if not writable:
            _run(["mount", "-o", f"remount,ro,{SAFE_OPTIONS}", str(path)],
                 _("remounting {path} ro").format(path=path))
            _set_read_only(mounted.device_node, True, _("make the recorder's disk read-only"))
            return
        if mounted.fs_type in NO_RECOVERY:
            # Writing to a journaled volume whose journal was not replayed could corrupt it.
            raise MountError(_("{path} holds a {fs_type} volume mounted without journal recovery; dockd "
                               "never writes to it").format(path=path, fs_type=mounted.fs_type))
        _set_read_only(mounted.device_node, False, _("make the recorder's disk writable"))
        try:
            _run(["mount", "-o", f"remount,rw,{SAFE_OPTIONS}", str(path)],
                 _("remounting {path} rw").format(path=path))
        except MountError:
            _set_read_only(mounted.device_node, True, _("make the recorder's disk read-only again"))
            raise

    def unmount(self, path: Path, lazy: bool = False) -> None:
        _run(["umount", *(["-l"] if lazy else []), str(path)], _("unmounting {path}").format(path=path))
        # Not empty or already gone: left for the administrator to look at.
        with contextlib.suppress(OSError):
            os.rmdir(path)
        with self._lock:
            mounted = self._mounted.pop(path, None)
        if mounted is not None and not mounted.was_read_only:
            # The disk as we found it (a loop device keeps the flag after it is detached).
            _set_read_only(mounted.device_node, False, _("give the disk back its write flag"),
                           gone_ok=True)


class DirectoryMounter:
    """For simulated recorders whose "device node" is already a directory."""

    def mount(self, device_node: str, name: str, fs_type: str | None) -> Path:
        path = Path(device_node)
        if not path.is_dir():
            raise MountError(_("{device_node} is not a file system (not a directory)").format(
                               device_node=device_node))
        return path

    def remount(self, path: Path, writable: bool) -> None:
        return None

    def unmount(self, path: Path, lazy: bool = False) -> None:
        return None


def _set_read_only(device_node: str, read_only: bool, what: str, gone_ok: bool = False) -> bool:
    """set_read_only, its failure a MountError; ``gone_ok``: a device that left is no error."""
    try:
        return set_read_only(device_node, read_only)
    except OSError as exc:
        if gone_ok and exc.errno in GONE:
            log.info("disk gone before its write flag was restored", extra={"device": device_node})
            return read_only
        raise MountError(_("cannot {what} ({device_node}: {strerror})").format(
                           what=what, device_node=device_node, strerror=exc.strerror)) from None


def _run(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MountError(_("{what} failed: {exc}").format(what=what, exc=exc)) from None
    if result.returncode != 0:
        raise MountError(_("{what} failed: {value}").format(
                           what=what, value=result.stderr.strip() or result.returncode))
