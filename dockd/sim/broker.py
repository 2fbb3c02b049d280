"""A throw-away local Mosquitto for the demo (loopback only, free port, own directory)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from dockd.errors import UsageError
from dockd.i18n import _


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_local_mosquitto(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start mosquitto on 127.0.0.1:<free port>; returns the process and the port."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise UsageError(_("mosquitto is not installed (apt-get install mosquitto), "
                           "or pass --broker URL"))
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    log = open(workdir / "mosquitto.log", "wb")  # noqa: SIM115 - lives as long as the broker
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise UsageError(_("mosquitto did not start; see {log}").format(
        log=workdir / "mosquitto.log"))
