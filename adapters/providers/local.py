"""The local provider: each instance's runtime is an OS process on this machine, serving the
runtime contract on a free loopback port. Pause is SIGSTOP, resume SIGCONT, stop SIGTERM (then
SIGKILL after a grace period), start and restart a new process, destroy all of that plus the
instance's folder. The runtime keeps its own state (config, conversations) in that folder, so it
survives a restart of the process.

What a runtime is lives on disk (`<runtime_dir>/<instance_id>/runtime.json`) and in the process
table (each runtime's command line names its instance), so a restarted Lifeline finds its
runtimes again, and a provisioner killed halfway never leaves two runtimes for one instance.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psutil

from adapters.providers.base import (
    HTTP_ERROR,
    Provider,
    ProvisionFailedError,
    RuntimeInfo,
    RuntimeUnavailableError,
    StageReporter,
)
from adapters.runtime_client import TIMEOUT, contract_call
from adapters.telemetry import HealthSample

RUNTIME_MODULE = "adapters.reference_runtime"
START_TIMEOUT = 10.0
PROBE_TIMEOUT = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # As the runtime's server binds: a port lingering in TIME_WAIT is free to it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalProvider(Provider):
    name = "local"

    def __init__(self, runtime_dir: str | Path, grace: float = 3.0) -> None:
        self.root = Path(runtime_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.grace = grace
        self.http = httpx.Client(timeout=PROBE_TIMEOUT)
        self.contract = httpx.Client(timeout=TIMEOUT)
        # Children we started, so they can be reaped instead of lingering as zombies.
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._locks: dict[UUID, threading.Lock] = {}
        self._guard = threading.Lock()

    # -- bookkeeping ------------------------------------------------------------------------

    def _dir(self, instance_id: UUID) -> Path:
        return self.root / str(instance_id)

    @contextlib.contextmanager
    def _locked(self, instance_id: UUID) -> Iterator[Path]:
        """One actor per instance at a time, across threads and processes."""
        with self._guard:
            lock = self._locks.setdefault(instance_id, threading.Lock())
        folder = self._dir(instance_id)
        folder.mkdir(parents=True, exist_ok=True)
        with lock, (folder / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _record(self, instance_id: UUID) -> dict[str, Any]:
        path = self._dir(instance_id) / "runtime.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data

    def _write(self, instance_id: UUID, record: dict[str, Any]) -> None:
        folder = self._dir(instance_id)
        temporary = folder / "runtime.json.tmp"
        temporary.write_text(json.dumps(record))
        temporary.replace(folder / "runtime.json")  # atomic: a crash leaves old or new

    def processes(self, instance_id: UUID, *, scan: bool = False) -> list[psutil.Process]:
        """The instance's live runtime processes. Without `scan`, the one its record names
        (cheap); with it, every process on the machine whose command line names the instance,
        which also finds one that a crash left unrecorded."""
        marker = str(instance_id)
        if not scan:
            pid = self._record(instance_id).get("pid")
            try:
                process = psutil.Process(int(pid)) if pid else None
                if process is None or marker not in process.cmdline():
                    return []
                if process.status() == psutil.STATUS_ZOMBIE:
                    self._reap(process.pid)
                    return []
            except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
                return []
            return [process]
        found = []
        for process in psutil.process_iter(["cmdline", "status"]):
            try:
                cmdline = process.info["cmdline"] or []
                if RUNTIME_MODULE in cmdline and marker in cmdline:
                    if process.info["status"] == psutil.STATUS_ZOMBIE:
                        self._reap(process.pid)
                        continue
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def _reap(self, pid: int) -> None:
        child = self._children.pop(pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(1)

    def _spawn(self, instance_id: UUID, port: int) -> subprocess.Popen[bytes]:
        folder = self._dir(instance_id)
        # Recorded before the process exists, so a crash right after the spawn is still seen
        # (the next provision then scans the process table).
        self._write(instance_id, {"pid": None, "port": port, "spawning": True})
        with (folder / "runtime.log").open("ab") as log:
            child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", RUNTIME_MODULE, "--port", str(port), "--instance",
                 str(instance_id), "--state-dir", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Its own session: a runtime outlives a restart of Lifeline.
                start_new_session=True,
            )  # fmt: skip
        self._children[child.pid] = child
        self._write(instance_id, {"pid": child.pid, "port": port, "started": time.time()})
        return child

    def _wait_ready(self, instance_id: UUID, child: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if child.poll() is not None:
                log = (self._dir(instance_id) / "runtime.log").read_text(errors="replace")
                last = log.strip().splitlines()[-1] if log.strip() else "no output"
                raise ProvisionFailedError(
                    "install_runtime",
                    "runtime_exited",
                    f"the runtime exited with code {child.returncode} while starting: {last}",
                )
            # A bare connect until something listens: refused at once and far cheaper than an
            # HTTP request, which matters when many runtimes start together.
            if listening(port) and self._answers(port):
                return
            time.sleep(0.01)
        self._terminate([psutil.Process(child.pid)])
        raise ProvisionFailedError(
            "install_runtime",
            "runtime_start_timeout",
            f"the runtime did not answer on port {port} within {START_TIMEOUT:g}s",
        )

    def _answers(self, port: int) -> bool:
        try:
            return self.http.get(f"http://127.0.0.1:{port}/api/status").status_code == 200  # noqa: PLR2004
        except httpx.HTTPError:
            return False

    def _terminate(self, processes: list[psutil.Process]) -> None:
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
                process.terminate()
        _, alive = psutil.wait_procs(processes, timeout=self.grace)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=self.grace)
        for process in processes:
            self._reap(process.pid)

    def _info(self, instance_id: UUID, pid: int, port: int) -> RuntimeInfo:
        return RuntimeInfo(
            hostname=f"{instance_id.hex[:12]}.runtime.local", address=f"127.0.0.1:{port}", pid=pid
        )

    # -- the provider's actions -------------------------------------------------------------

    def provision(
        self, instance_id: UUID, configuration: dict[str, Any], report: StageReporter
    ) -> RuntimeInfo:
        with self._locked(instance_id):
            report("allocate", "reserving a loopback port and a runtime folder")
            record = self._record(instance_id)
            # Only an instance with a record can have a runtime already (from an attempt a
            # crash interrupted); scanning the whole process table is for that case alone.
            running = self.processes(instance_id, scan=True) if record else []
            keep = next((p for p in running if p.pid == record.get("pid")), None)
            self._terminate([p for p in running if p is not keep])
            if keep is not None and self._answers(int(record["port"])):
                # Found from an earlier attempt (a provisioner that died halfway): reuse it.
                port, pid = int(record["port"]), keep.pid
                report("boot", f"found the runtime already running as process {pid}")
            else:
                if keep is not None:
                    self._terminate([keep])
                port = free_port()
                report("boot", f"starting the runtime process on port {port}")
                child = self._spawn(instance_id, port)
                pid = child.pid
                report("install_runtime", "waiting for the runtime contract to answer")
                self._wait_ready(instance_id, child, port)
            report("configure", "sending the instance's configuration to the runtime")
            self._configure(instance_id, port, configuration)
            report("health_check", "checking the runtime's status")
            if not self._answers(port):
                raise ProvisionFailedError(
                    "health_check", "unhealthy", "the runtime stopped answering after configure"
                )
            return self._info(instance_id, pid, port)

    def _configure(self, instance_id: UUID, port: int, configuration: dict[str, Any]) -> None:
        try:
            response = self.http.post(f"http://127.0.0.1:{port}/api/config", json=configuration)
        except httpx.HTTPError as e:
            raise ProvisionFailedError("configure", "configure_failed", str(e)) from None
        if response.status_code >= HTTP_ERROR:
            raise ProvisionFailedError("configure", "configure_failed", response.text[:300])
        self.remember_config(instance_id, configuration)

    def _signal(self, instance_id: UUID, sig: signal.Signals) -> None:
        with self._locked(instance_id):
            processes = self.processes(instance_id)
            if not processes:
                raise RuntimeUnavailableError(instance_id, "stopped", "no runtime process")
            for process in processes:
                process.send_signal(sig)

    def pause(self, instance_id: UUID) -> None:
        self._signal(instance_id, signal.SIGSTOP)

    def resume(self, instance_id: UUID) -> None:
        self._signal(instance_id, signal.SIGCONT)

    def stop(self, instance_id: UUID) -> None:
        with self._locked(instance_id):
            self._terminate(self.processes(instance_id, scan=True))

    def start(self, instance_id: UUID) -> RuntimeInfo:
        with self._locked(instance_id):
            running = self.processes(instance_id)
            record = self._record(instance_id)
            if running and self._answers(int(record.get("port", 0))):
                return self._info(instance_id, running[0].pid, int(record["port"]))
            self._terminate(running)
            # The same port when it is still free, so the instance's address stays true.
            previous = int(record.get("port", 0))
            port = previous if previous and port_free(previous) else free_port()
            child = self._spawn(instance_id, port)
            self._wait_ready(instance_id, child, port)
            config = record.get("config")
            # A runtime that kept its own state has the newer configuration; the recorded one
            # is only for a runtime that lost it.
            if isinstance(config, dict) and not (self._dir(instance_id) / "state.json").exists():
                self._configure(instance_id, port, config)
            return self._info(instance_id, child.pid, port)

    def restart(self, instance_id: UUID) -> RuntimeInfo:
        self.stop(instance_id)
        return self.start(instance_id)

    def destroy(self, instance_id: UUID) -> None:
        with self._locked(instance_id) as folder:
            self._terminate(self.processes(instance_id, scan=True))
            shutil.rmtree(folder, ignore_errors=True)
        with self._guard:
            self._locks.pop(instance_id, None)

    # -- what the runtime is like -----------------------------------------------------------

    def base_url(self, instance_id: UUID) -> str:
        """Checked against the process table first: a paused (SIGSTOPped) runtime would accept
        the connection and never answer, so the caller would only learn it from a timeout."""
        record = self._record(instance_id)
        processes = self.processes(instance_id)
        if not record or not processes:
            raise RuntimeUnavailableError(instance_id, "stopped", "no runtime process")
        try:
            if processes[0].status() == psutil.STATUS_STOPPED:
                raise RuntimeUnavailableError(instance_id, "paused", "the process is suspended")
        except psutil.NoSuchProcess:
            raise RuntimeUnavailableError(instance_id, "stopped", "the process ended") from None
        return f"http://127.0.0.1:{record['port']}"

    def call(
        self,
        instance_id: UUID,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        base = self.base_url(instance_id)
        return contract_call(self.contract, instance_id, base, method, path, body, params)

    def find(self, instance_id: UUID) -> RuntimeInfo | None:
        record = self._record(instance_id)
        if not record:
            return None  # the record is written before any process starts: no record, no runtime
        # A record without a pid is a crash between recording and spawning: look for the process.
        processes = self.processes(instance_id, scan=not record.get("pid"))
        if not processes or not record.get("port"):
            return None
        return self._info(instance_id, processes[0].pid, int(record["port"]))

    def health(self, instance_id: UUID) -> HealthSample:
        record = self._record(instance_id)
        processes = self.processes(instance_id)
        if not processes:
            return HealthSample(health_status="unreachable", detail="no runtime process")
        process = processes[0]
        try:
            with process.oneshot():
                cpu = process.cpu_percent(interval=None)
                memory = process.memory_info().rss / 1_048_576
                uptime = time.time() - process.create_time()
                stopped = process.status() == psutil.STATUS_STOPPED
        except psutil.NoSuchProcess:
            return HealthSample(health_status="unreachable", detail="the runtime process ended")
        disk = sum(f.stat().st_size for f in self._dir(instance_id).glob("*") if f.is_file())
        answers = not stopped and self._answers(int(record.get("port", 0)))
        return HealthSample(
            health_status="healthy" if answers else ("degraded" if stopped else "unreachable"),
            cpu_percent=cpu,
            memory_mb=round(memory, 2),
            disk_mb=round(disk / 1_048_576, 3),
            uptime_secs=round(uptime, 1),
            last_heartbeat=datetime.now(UTC) if answers else None,
            detail="paused" if stopped else None,
        )

    def known(self) -> list[UUID]:
        found = []
        for folder in self.root.iterdir():
            with contextlib.suppress(ValueError):
                found.append(UUID(folder.name))
        return found

    def remember_config(self, instance_id: UUID, configuration: dict[str, Any]) -> None:
        """Kept so a later start can configure a fresh process the same way."""
        record = self._record(instance_id)
        if record:
            record["config"] = configuration
            self._write(instance_id, record)

    def close(self) -> None:
        self.http.close()
        self.contract.close()


def pid_alive(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
