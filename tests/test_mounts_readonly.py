"""A recorder's volume is truly read-only: its block device is held read-only in the kernel
(BLKROSET) and a journaled file system is mounted without journal recovery, so not one byte
of the recorder's disk changes, even when its journal needs replaying.

ext4 and xfs images with a dirty journal are real loop devices (root). vfat and exfat cannot
be mounted by this host's kernel (only inside the QEMU guest of the HIL tests): their
options are checked by :func:`test_every_file_system_is_mounted_read_only_without_replay`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockd.devices.events import DeviceEvent
from dockd.devices.mounts import ALLOWED_FS, NO_RECOVERY, MountError, SystemMounter, mount_options
from dockd.sim.runner import DaemonRunner

FILES = {"DCIM/100MEDIA/VID0001.MP4": 300_000, "DCIM/100MEDIA/VID0002.MP4": 120_000,
         "DCIM/100MEDIA/IMG0003.JPG": 4_000}
SIZE_MIB = {"ext4": 64, "ext2": 64, "xfs": 300}  # mkfs.xfs wants 300 MiB at least


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.strip()}"
    return done.stdout


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _content(n: int, size: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest() * (size // 32) + b"x" * (size % 32)


def _getro(device: str) -> str:
    return _run("blockdev", "--getro", device).strip()


def _mount_line(target: Path) -> list[str]:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(target):
            return fields
    raise AssertionError(f"{target} is not mounted")


def _needs_recovery(image: Path, fs: str) -> bool:
    if fs == "ext4":
        return "needs_recovery" in _run("dumpe2fs", "-h", str(image))
    if fs == "xfs":
        return "state: <DIRTY>" in _run("xfs_logprint", "-t", str(image))
    return False


class Images:
    """Recorder disk images: made, attached as loop devices, and cleaned up (flag included:
    a loop device keeps its read-only flag after it is detached)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.devices: list[str] = []
        self.mounts: list[Path] = []

    def make(self, fs: str, dirty: bool) -> Path:
        """An ``fs`` image holding FILES; ``dirty``: copied while mounted, after a write and
        a sync, so that its journal (log) still has to be replayed."""
        for tool in ("mkfs." + fs, "dumpe2fs", "xfs_logprint", "losetup", "blockdev"):
            if shutil.which(tool) is None:
                pytest.fail(f"{tool} is not installed; ./dev installs it")
        image = self.base / f"{fs}.img"
        with open(image, "wb") as fh:
            fh.truncate(SIZE_MIB[fs] << 20)
        _run(*({"xfs": ["mkfs.xfs", "-q", "-f"]}.get(fs, [f"mkfs.{fs}", "-q", "-F"])), str(image))
        mnt = self.base / "build"
        mnt.mkdir(exist_ok=True)
        # First the recordings, on a clean unmount: they sit in their home blocks.
        self._mount(image, mnt)
        for n, (rel, size) in enumerate(FILES.items()):
            (mnt / rel).parent.mkdir(parents=True, exist_ok=True)
            (mnt / rel).write_bytes(_content(n, size))
        self._umount(mnt)
        if not dirty:
            return image
        # Then one more write, committed to the journal only: the copy taken now needs recovery.
        self._mount(image, mnt)
        (mnt / "DCIM" / "LAST.TXT").write_text("written just before the recorder was pulled\n")
        _run("sync")
        dirty_image = self.base / f"{fs}-dirty.img"
        shutil.copyfile(image, dirty_image)
        self._umount(mnt)
        assert _needs_recovery(dirty_image, fs), f"the {fs} copy does not need journal recovery"
        return dirty_image

    def attach(self, image: Path) -> str:
        device = _run("losetup", "--find", "--show", str(image)).strip()
        self.devices.append(device)
        assert _getro(device) == "0"
        return device

    def cleanup(self) -> None:
        for mnt in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)
        for device in self.devices:
            subprocess.run(["blockdev", "--setrw", device], capture_output=True, check=False)
            subprocess.run(["losetup", "-d", device], capture_output=True, check=False)

    def _mount(self, image: Path, mnt: Path) -> None:
        _run("mount", "-o", "loop", str(image), str(mnt))
        self.mounts.append(mnt)

    def _umount(self, mnt: Path) -> None:
        _run("umount", str(mnt))
        self.mounts.remove(mnt)


@pytest.fixture
def images(tmp_path: Path) -> Iterator[Images]:
    made = Images(tmp_path / "images")
    made.base.mkdir()
    try:
        yield made
    finally:
        made.cleanup()


def test_every_file_system_is_mounted_read_only_without_replay() -> None:
    for fs in ALLOWED_FS:
        options = mount_options(fs).split(",")
        assert options[0] == "ro" and "rw" not in options
        assert {"nosuid", "nodev", "noexec"} <= set(options)
    assert {fs: NO_RECOVERY.get(fs) for fs in ALLOWED_FS} == {
        "vfat": None, "exfat": None, "ext2": None, "ntfs3": None,  # nothing to replay
        "ext3": "noload", "ext4": "noload", "xfs": "norecovery", "btrfs": "rescue=nologreplay"}
    for fs, option in NO_RECOVERY.items():
        assert option in mount_options(fs).split(",")
    # FAT and exFAT (not mountable on this host): read-only, names as UTF-8, files ours only.
    assert mount_options("vfat") == "ro,nosuid,nodev,noexec,utf8,shortname=mixed,fmask=0227,dmask=0227"
    assert mount_options("exfat") == "ro,nosuid,nodev,noexec,iocharset=utf8,fmask=0227,dmask=0227"


@pytest.mark.root
@pytest.mark.parametrize("fs", ["ext4", "xfs"])
def test_a_plain_ro_mount_would_replay_the_journal_onto_the_recorder(
        images: Images, fs: str) -> None:
    """What the fix is for (and proof that the images below really are dirty)."""
    image = images.make(fs, dirty=True)
    before = _sha(image)
    device = images.attach(image)
    mnt = images.base / "plain"
    mnt.mkdir()
    _run("mount", "-t", fs, "-o", "ro", device, str(mnt))
    images.mounts.append(mnt)
    _run("umount", str(mnt))
    images.mounts.remove(mnt)
    assert _sha(image) != before and not _needs_recovery(image, fs)


@pytest.mark.root
@pytest.mark.parametrize("fs", ["ext4", "xfs"])
def test_a_dirty_volume_is_mounted_read_only_and_not_one_byte_changes(
        images: Images, tmp_path: Path, fs: str) -> None:
    image = images.make(fs, dirty=True)
    before = _sha(image)
    device = images.attach(image)
    mounter = SystemMounter(tmp_path / "bays")

    mnt = mounter.mount(device, "bay1", fs)
    assert _getro(device) == "1"
    options = _mount_line(mnt)[3].split(",")
    assert "ro" in options and "norecovery" in options, options  # ext4 shows noload so
    for n, (rel, _size) in enumerate(FILES.items()):
        assert (mnt / rel).read_bytes() == _content(n, FILES[rel])
    with pytest.raises(MountError, match=f"{fs} volume mounted without journal recovery"):
        mounter.remount(mnt, writable=True)
    assert _getro(device) == "1" and "ro" in _mount_line(mnt)[3].split(",")
    mounter.unmount(mnt)

    assert _getro(device) == "0"  # the device as it was found
    assert _sha(image) == before and _needs_recovery(image, fs)


@pytest.mark.root
def test_a_volume_without_journal_is_writable_only_while_an_action_needs_it(
        images: Images, tmp_path: Path) -> None:
    image = images.make("ext2", dirty=False)
    device = images.attach(image)
    mounter = SystemMounter(tmp_path / "bays")
    mnt = mounter.mount(device, "bay1", "ext2")
    assert _getro(device) == "1"
    with pytest.raises(OSError):
        (mnt / "x").write_text("no")
    mounter.remount(mnt, writable=True)  # clearing, or a recorder's clock file
    assert _getro(device) == "0"
    (mnt / "TIME.TXT").write_text("2026-12-07 13:00:00\n")
    mounter.remount(mnt, writable=False)
    assert _getro(device) == "1" and "ro" in _mount_line(mnt)[3].split(",")
    mounter.unmount(mnt)
    assert _getro(device) == "0"


@pytest.mark.root
def test_a_disk_already_read_only_stays_so(images: Images, tmp_path: Path) -> None:
    device = images.attach(images.make("ext4", dirty=False))
    _run("blockdev", "--setro", device)
    mounter = SystemMounter(tmp_path / "bays")
    mounter.unmount(mounter.mount(device, "bay1", "ext4"))
    assert _getro(device) == "1"


def test_a_node_that_cannot_be_made_read_only_is_never_mounted(tmp_path: Path) -> None:
    fake = tmp_path / "sdz1"
    fake.write_bytes(b"\0" * 4096)
    mounter = SystemMounter(tmp_path / "bays")
    with pytest.raises(MountError, match=r"cannot make the recorder's disk read-only .*not mounted"):
        mounter.mount(str(fake), "bay1", "ext4")
    assert not any(f[1] == str(tmp_path / "bays" / "bay1")
                   for f in (line.split() for line in Path("/proc/self/mounts").read_text().splitlines()))
    with pytest.raises(MountError, match="not a recorder volume dockd mounted"):
        mounter.remount(tmp_path, writable=True)


@pytest.mark.root
@pytest.mark.parametrize("fs", ["ext4", "xfs"])
def test_a_whole_dock_session_leaves_a_dirty_recorder_disk_unchanged(
        images: Images, tmp_path: Path, fs: str) -> None:
    image = images.make(fs, dirty=True)
    before = _sha(image)
    device = images.attach(image)
    h = DaemonRunner(tmp_path / "dock", mounter="mount")
    h.start()
    try:
        usb = "/sys/devices/sim/usb1/1-1.1"
        h.dock.spool.post(DeviceEvent("add", "usb", "1-1.1", usb, vendor_id="2ca3",
                                      product_id="0100", usb_serial="RODISK1"))
        h.dock.spool.post(DeviceEvent("add", "block", "1-1.1", f"{usb}/1-1.1:1.0/host0/block/sdx",
                                      device_node=device, vendor_id="2ca3", product_id="0100",
                                      usb_serial="RODISK1", fs_type=fs))
        h.wait_bay(1, "ready_unchecked", timeout=60)  # a plain disk: no battery, no clock
        out = h.dockd("catalog", "--recorder", "RODISK1", "--json")
        assert out.returncode == 0, out.stderr
        stored = {i["source_path"]: i["sha256"] for i in json.loads(out.stdout)}
        expected = {rel: hashlib.sha256(_content(n, size)).hexdigest()
                    for n, (rel, size) in enumerate(FILES.items())}
        assert {k: v for k, v in stored.items() if k in expected} == expected
        h.dock.spool.post(DeviceEvent("remove", "block", "1-1.1", f"{usb}/1-1.1:1.0/host0/block/sdx"))
        h.dock.spool.post(DeviceEvent("remove", "usb", "1-1.1", usb))
        h.wait_bay(1, "empty")
        # The bay worker unmounted (it shows ready a moment before) and gave the flag back.
        assert _getro(device) == "0"
        verify = h.dockd("verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        h.close()
    assert _sha(image) == before and _needs_recovery(image, fs)
