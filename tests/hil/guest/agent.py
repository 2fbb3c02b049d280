"""Command agent inside the HIL guest: JSON lines over a virtio-serial port.

Started by the guest's init (tests/hil/guest/init.sh) chrooted into the overlay of the host root,
with the project venv's interpreter. Stdlib only, except pyudev, imported when a udev monitor is
started (udevd must be running by then).

Protocol (one JSON object per line, both ways):
  host -> guest  {"id": n, "op": "run", "argv": [...], "timeout": s, "env": {...}, "stdin_b64": ...}
                 {"id": n, "op": "spawn", "argv": [...], "log": "/path", "env": {...}}
                 {"id": n, "op": "signal", "pid": p, "sig": 15}
                 {"id": n, "op": "wait", "pid": p, "timeout": s}
                 {"id": n, "op": "monitor", "subsystems": [...]}     start streaming udev events
                 {"id": n, "op": "state_wait", "socket": "/run/dockd/status.sock", "bay": b,
                  "states": [...], "skip": snapshot, "timeout": s}   wait on dockd's state channel
                 {"id": n, "op": "gadget", "action": "create", "spec": {...}}  guest/gadget.py
                 {"id": n, "op": "poweroff"}                          sync and power off
  guest -> host  {"id": n, "ok": true, ...result} | {"id": n, "ok": false, "error": "..."}
                 {"event": "hello", "uptime": s, "kernel": "..."}
                 {"event": "udev", "uptime": s, "device": {...capture format...}}
Outputs are base64 so any byte a command prints arrives intact.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PORT_NAME = "org.dockd.hil.agent"
_RB_POWER_OFF = 0x4321FEDC


def main() -> int:
    """Serve requests until the port is closed or a poweroff request arrives."""
    os.environ.setdefault("SYSTEMD_IGNORE_CHROOT", "1")
    os.environ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    Agent(_open_port()).serve()
    return 0


def _open_port() -> int:
    for name_file in Path("/sys/class/virtio-ports").glob("*/name"):
        if name_file.read_text().strip() == PORT_NAME:
            return os.open(f"/dev/{name_file.parent.name}", os.O_RDWR)
    raise SystemExit(f"agent: no virtio-serial port named {PORT_NAME}")


class Agent:
    """Dispatches each request to its own thread so a long command never blocks the channel."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._write_lock = threading.Lock()
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def serve(self) -> None:
        self._send({"event": "hello", "uptime": _uptime(), "kernel": os.uname().release})
        buf = b""
        while True:
            chunk = os.read(self._fd, 65536)
            if not chunk:
                # The host end is not connected (yet, or any more): virtio-console reads return 0.
                time.sleep(0.05)
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                request = json.loads(line)
                threading.Thread(target=self._handle, args=(request,), daemon=True).start()

    def _handle(self, request: dict[str, Any]) -> None:
        try:
            result = getattr(self, "_op_" + request["op"])(request)
            reply = {"id": request["id"], "ok": True, **result}
        except Exception as exc:  # reported to the host, which raises it there
            reply = {"id": request["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        self._send(reply)

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\n"
        with self._write_lock:
            while data:
                try:
                    data = data[os.write(self._fd, data) :]
                except BrokenPipeError:
                    time.sleep(0.05)  # host side not connected yet

    def _op_run(self, req: dict[str, Any]) -> dict[str, Any]:
        env = {**os.environ, **req.get("env", {})}
        stdin = base64.b64decode(req["stdin_b64"]) if req.get("stdin_b64") else b""
        started = time.monotonic()
        proc = subprocess.Popen(
            req["argv"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=req.get("cwd") or "/",
            start_new_session=True,
        )
        timed_out = False
        try:
            out, err = proc.communicate(stdin, timeout=req["timeout"])
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        return {
            "returncode": proc.returncode,
            "timed_out": timed_out,
            "stdout_b64": base64.b64encode(out).decode(),
            "stderr_b64": base64.b64encode(err).decode(),
            "duration": time.monotonic() - started,
        }

    def _op_spawn(self, req: dict[str, Any]) -> dict[str, Any]:
        log = open(req["log"], "ab")  # noqa: SIM115 - handed to the child, closed right after
        try:
            proc = subprocess.Popen(
                req["argv"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **req.get("env", {})},
                cwd=req.get("cwd") or "/",
                start_new_session=True,
            )
        finally:
            log.close()
        self._children[proc.pid] = proc
        return {"pid": proc.pid}

    def _op_signal(self, req: dict[str, Any]) -> dict[str, Any]:
        os.killpg(req["pid"], req["sig"])
        return {}

    def _op_wait(self, req: dict[str, Any]) -> dict[str, Any]:
        proc = self._children[req["pid"]]
        try:
            rc = proc.wait(timeout=req["timeout"])
        except subprocess.TimeoutExpired:
            return {"returncode": None}
        return {"returncode": rc}

    def _op_monitor(self, req: dict[str, Any]) -> dict[str, Any]:
        import pyudev  # only once udevd runs; the agent itself must start without it

        context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(context, source="udev")
        for subsystem in req.get("subsystems") or []:
            monitor.filter_by(subsystem)
        monitor.start()

        def pump() -> None:
            for device in iter(monitor.poll, None):
                self._send({"event": "udev", "uptime": _uptime(), "device": describe(device)})

        threading.Thread(target=pump, daemon=True).start()
        return {}

    def _op_state_wait(self, req: dict[str, Any]) -> dict[str, Any]:
        """The first snapshot dockd's state channel sends that is not `skip` and, when `bay`
        is given, shows that bay in one of `states`. The channel pushes every change, so
        every line is looked at and a short-lived state is seen; waiting costs no process
        start in the guest (a `dockd status` is a Python start, seconds under emulation).
        Until the socket answers (dockd starting) it is tried again every 0.1 s."""
        deadline = time.monotonic() + req["timeout"]
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            try:
                for snapshot in _snapshots(req["socket"], deadline):
                    last = snapshot
                    if snapshot != req.get("skip") and _bay_matches(snapshot, req):
                        return {"matched": True, "snapshot": snapshot}
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.1)
            except (ConnectionResetError, BrokenPipeError, EOFError):
                time.sleep(0.1)  # dockd stopped or dropped us: a restarted one answers again
        return {"matched": False, "snapshot": last}

    def _op_gadget(self, req: dict[str, Any]) -> dict[str, Any]:
        """A gadget.py action run here rather than as `python gadget.py`: a Python start in
        the guest costs seconds under emulation, and the actions are plain configfs writes."""
        import gadget  # beside this file (sys.path[0]); stdlib only

        {"create": gadget.create, "bind": gadget.bind, "unbind": gadget.unbind,
         "remove": gadget.remove}[req["action"]](req["spec"])
        return {}

    def _op_poweroff(self, req: dict[str, Any]) -> dict[str, Any]:
        for proc in self._children.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._children.values():
            try:
                proc.wait(timeout=req.get("grace", 10))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        os.sync()

        def later() -> None:
            time.sleep(0.2)  # let the reply reach the host first
            libc = ctypes.CDLL(None, use_errno=True)
            libc.reboot(_RB_POWER_OFF)

        threading.Thread(target=later, daemon=True).start()
        return {}


def describe(device: Any) -> dict[str, Any]:
    """One udev event in the capture format of tests/data/udev/*.json."""
    chain = []
    parent = device.parent
    while parent is not None:
        chain.append(
            {
                "subsystem": parent.subsystem,
                "sys_path": parent.sys_path,
                "properties": dict(parent.properties),
            }
        )
        parent = parent.parent
    return {
        "action": device.action,
        "sys_path": device.sys_path,
        "subsystem": device.subsystem,
        "device_type": device.device_type,
        "device_node": device.device_node,
        "properties": dict(device.properties),
        "parent_chain": chain,
    }


def _snapshots(path: str, deadline: float) -> Iterator[dict[str, Any]]:
    """Every JSON line of the state channel at `path` until `deadline` (then it returns);
    EOFError when the daemon closes the connection."""
    with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as sock:
        sock.connect(path)
        buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            sock.settimeout(left)
            try:
                chunk = sock.recv(1 << 16)
            except TimeoutError:
                return
            if not chunk:
                raise EOFError("the state channel closed")
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.strip():
                    yield json.loads(line)


def _bay_matches(snapshot: dict[str, Any], req: dict[str, Any]) -> bool:
    if req.get("bay") is None:
        return True
    bay = next((b for b in snapshot.get("bays", []) if b.get("bay") == req["bay"]), None)
    return bay is not None and bay.get("state") in req["states"]


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


if __name__ == "__main__":
    sys.exit(main())
