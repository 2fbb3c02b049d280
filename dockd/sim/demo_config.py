"""The dock config of the demo and of simulator-driven tests: a real dock's TOML,
pointed at the simulator (spool device source, directory "mounts")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dockd.sim.dock import KINDS, SIM_IDS

ADMIN_PASSWORD = "123456"


@dataclass(frozen=True)
class DemoPaths:
    root: Path
    store: Path
    config: Path
    spool: Path
    socket: Path
    cards: Path


def demo_paths(root: Path, store: Path | None) -> DemoPaths:
    return DemoPaths(root, store or root / "store", root / "dockd.toml", root / "spool",
                     root / "status.sock", root / "cards")


def write_demo_config(paths: DemoPaths, recorders: int, broker_url: str | None,
                      clock_sync: str = "assume_synced", storage_wait_s: float = 30,
                      extra: str = "", daemon_extra: str = "", mqtt_extra: str = "",
                      dock_id: str = "demo-dock", site: str = "demo-site",
                      mounter: str = "directory",
                      model_extra: Mapping[str, str] | None = None,
                      ingest_extra: str = "") -> None:
    """The TOML a real dock would have, pointed at the simulator (``extra`` is appended,
    ``ingest_extra`` added to ``[ingest]``;
    ``model_extra`` adds lines to the model of a recorder kind; ``dock_id``/``site`` let
    several simulated docks share one broker; ``mounter = "mount"`` for events naming real
    block devices)."""
    (paths.root / "admin.pw").write_text(ADMIN_PASSWORD + "\n")
    os.chmod(paths.root / "admin.pw", 0o400)
    lines = [
        "[dock]", f'id = "{dock_id}"', f'site = "{site}"', f'store_dir = "{paths.store}"', "",
        "[ingest]", "store_reserve_bytes = 0", ingest_extra, "",
        "[daemon]", 'device_source = "spool"', f'spool_dir = "{paths.spool}"',
        f'mounter = "{mounter}"', f'mount_root = "{paths.root / "bays"}"',
        f'status_socket = "{paths.socket}"',
        f'clock_sync = "{clock_sync}"  # the demo machine may have no NTP; a real dock uses "auto"',
        f"storage_wait_s = {storage_wait_s}", daemon_extra, "",
    ]
    for n in range(1, recorders + 1):
        lines += ["[[daemon.bays]]", f'port = "1-1.{n}"', f"number = {n}", f'label = "Bay {n}"', ""]
    for kind in KINDS:
        vid, pid, svid, spid = SIM_IDS[kind]
        lines += ["[[daemon.models]]", f'name = "sim-{kind}"', f'vendor_id = "{vid}"',
                  f'product_id = "{pid}"', f'driver = "{kind}"', f'brand = "Simulated {kind}"']
        if kind != "msc":
            # The simulator's pty: B1 frames, or the GA/T 947 test framing (no recorder speaks
            # it). Real recorders: control = "sg" (GA/T 947 DV16), "usb" / "usb-a9" (Ambarella).
            lines += ['control = "test-serial"', f'storage_vendor_id = "{svid}"',
                      f'storage_product_id = "{spid}"',
                      f'password_file = "{paths.root / "admin.pw"}"', 'timezone = "Asia/Shanghai"']
        if model_extra and kind in model_extra:
            lines.append(model_extra[kind])
        lines.append("")
    if broker_url:
        lines += ["[mqtt]", "enabled = true", f'broker = "{broker_url}"', mqtt_extra, ""]
    paths.config.write_text("\n".join(lines) + "\n" + extra)
