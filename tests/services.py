"""Real Redis and PostgreSQL for the tests, whether or not the machine already runs them.

Redis is always a throwaway `redis-server` on a free port, so fault tests can stop
and restart it without touching anyone else's. PostgreSQL is reused when one is
reachable (MIGRABOT_TEST_POSTGRES_URL, else the standard local port) because a
cluster costs seconds to create; otherwise a throwaway cluster is started from
the OS binaries. Each test gets its own uniquely named database, so parallel
xdist workers never collide.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL_ENV = "MIGRABOT_TEST_POSTGRES_URL"
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready, what: str, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s")
        time.sleep(0.05)


class RedisServer:
    """A private redis-server subprocess: no persistence, its own directory and port."""

    def __init__(self) -> None:
        self._binary = shutil.which("redis-server")
        if self._binary is None:
            raise RuntimeError("redis-server not found on PATH: install the OS package redis-server")
        self._dir = Path(tempfile.mkdtemp(prefix="migrabot-redis-"))
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers PING."""
        if self._process is not None:
            return
        with open(self._dir / "redis.log", "ab") as log:
            self._process = subprocess.Popen(
                [
                    self._binary, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no",
                    "--dir", str(self._dir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._answers_ping, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _answers_ping(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            log = (self._dir / "redis.log").read_text(errors="replace")
            raise RuntimeError(f"redis-server exited with {self._process.returncode}:\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def postgres_accepts(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def find_or_start_postgres(tmpdir: Path) -> Iterator[str]:
    """Yield an admin URL: the configured or local server, else a throwaway cluster."""
    configured = os.environ.get(POSTGRES_URL_ENV)
    if configured:
        yield configured
    elif postgres_accepts(DEFAULT_POSTGRES_URL):
        yield DEFAULT_POSTGRES_URL
    else:
        cluster = PostgresCluster(tmpdir)
        try:
            yield cluster.start()
        finally:
            cluster.stop()


def postgres_binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(
            f"{name} not found on PATH or in /usr/lib/postgresql/*/bin: install the OS package postgresql"
        )
    return found


class PostgresCluster:
    """A throwaway cluster: trust auth, 127.0.0.1 on a free port, no fsync."""

    def __init__(self, tmpdir: Path) -> None:
        self._as_root = os.geteuid() == 0
        # pytest's tmp dirs are private to root; the postgres user needs its own.
        self._base = Path(tempfile.mkdtemp(prefix="migrabot-pg-", dir=None if self._as_root else tmpdir))
        self._data = self._base / "data"
        self.port = free_port()
        self._initdb, self._pg_ctl = postgres_binary("initdb"), postgres_binary("pg_ctl")
        postgres_binary("postgres")  # pg_ctl needs it; fail with its name now rather than later

    def start(self) -> str:
        if self._as_root:
            shutil.chown(self._base, user="postgres", group="postgres")
        self._run(self._initdb, "-D", str(self._data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self._base} -c fsync=off"
        self._run(self._pg_ctl, "-D", str(self._data), "-o", options, "-l", str(self._base / "log"), "-w", "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if (self._data / "postmaster.pid").exists():
            self._run(self._pg_ctl, "-D", str(self._data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self._base, ignore_errors=True)

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        completed = subprocess.run([*prefix, *argv], capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{completed.stdout}{completed.stderr}")


def create_database(admin_url: str) -> str:
    """Create a uniquely named empty database and return its URL."""
    name = f"migrabot_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def drop_database(admin_url: str, name: str) -> None:
    """Drop it even if a test left connections open (PostgreSQL 13+)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def control_plane_environment() -> dict[str, str]:
    """Variables that point the control plane at a private SQLite file for this test process."""
    home = Path(tempfile.mkdtemp(prefix="migrabot-controlplane-"))
    return {"MIGRABOT_HOME": str(home), "DATABASE_URL": f"sqlite:///{home / 'controlplane.sqlite3'}"}
