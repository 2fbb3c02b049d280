"""A real PostgreSQL server for tests: Debian's binaries, a temp cluster, a free loopback port.

The server refuses to run as root, so the cluster belongs to the ``postgres`` system user
(created by Debian's package) and every server command runs through ``runuser``. One server
serves the whole test session; :meth:`PostgresServer.new_database` gives each test a fresh
database. The server can be SIGKILLed and started again on the same port and data (a crash
the way a power cut makes one).

Use the fixtures by importing them into a test module::

    from tests.postgres_server import postgres, ledger_dsn  # noqa: F401
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt_broker import free_port

PG_USER = "postgres"
START_TIMEOUT_S = 30.0


def pg_bindir() -> Path:
    """Where Debian put the server binaries (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        pytest.fail("PostgreSQL server is not installed: run ./dev test (it apt-installs "
                    "postgresql)")
    return Path(found[-1]).parent


class PostgresServer:
    """One postgres process on 127.0.0.1:<port>, data in its own temp directory."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self.bindir = pg_bindir()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = base / "postgres.log"
        user = pwd.getpwnam(PG_USER)
        os.chown(base, user.pw_uid, user.pw_gid)
        self._as_pg([str(self.bindir / "initdb"), "-D", str(self.data), "-U", PG_USER,
                     "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        with (self.data / "postgresql.conf").open("a") as conf:
            # Loopback only; a socket dir of its own so no system cluster is disturbed.
            # fsync off is safe for what the tests do (kill the server, never the machine:
            # the page cache survives); synchronous_commit stays on, because the ledger acks
            # MQTT messages after COMMIT and a killed server must not lose a committed batch.
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{base}'\nfsync = off\n"
                       "max_connections = 200\nshared_buffers = 128MB\n")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        log = self.log.open("ab")
        user = pwd.getpwnam(PG_USER)
        os.chown(self.log, user.pw_uid, user.pw_gid)
        # Started directly as the postgres user (not through runuser) so that this process
        # is the postmaster's parent and reaps it: a zombie postmaster would keep its pid
        # "alive" and block the restart after kill().
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data)], user=user.pw_uid,
            group=user.pw_gid, extra_groups=[], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.base)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            done = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p",
                                   str(self.port), "-U", PG_USER, "-q"], check=False)
            if done.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("postgres did not accept connections in time")

    def kill(self) -> None:
        """SIGKILL the whole server (postmaster and backends): a crash, no shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        # Backends of a killed postmaster exit on their own; wait until the port is free.
        self._wait_port_free()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def new_database(self) -> str:
        """A fresh, empty database; its DSN."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def sql(self, statement: str, dbname: str = "postgres") -> str:
        """Run one statement with psql; its output."""
        done = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               self.dsn(dbname), "-c", statement],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def _as_pg(self, cmd: list[str]) -> None:
        done = subprocess.run(["runuser", "-u", PG_USER, "--", *cmd], capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {done.stderr.strip()}")

    def _wait_port_free(self) -> None:
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session."""
    if shutil.which("runuser") is None:
        pytest.fail("runuser (util-linux) is missing: run ./dev test")
    base = Path(tempfile.mkdtemp(prefix="dockd-pg-", dir="/tmp"))
    server = PostgresServer(base)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def ledger_dsn(postgres: PostgresServer) -> str:
    """A fresh empty database of the session's server, for one test."""
    if postgres.proc is None:  # a test that killed it left it down
        postgres.start()
    return postgres.new_database()
