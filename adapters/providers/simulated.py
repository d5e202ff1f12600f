"""A provider that stands in for a cloud API in tests and demos: runtimes exist only in memory,
provisioning passes its stages at once, and a configuration can ask it to fail a stage
(`{"simulate_failure": "boot"}`), so failure paths can be exercised without a cloud.

Each simulated runtime is the reference runtime's `Runtime` run in memory, so chat, config,
conversations and updates behave as on a real runtime (paused or stopped ones refuse)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import msgspec

from adapters.providers.base import (
    STAGES,
    Provider,
    ProvisionFailedError,
    RuntimeInfo,
    RuntimeUnavailableError,
    StageReporter,
)
from adapters.reference_runtime import Runtime
from adapters.telemetry import HealthSample


class SimulatedRuntime(msgspec.Struct, kw_only=True):
    n: int
    state: str
    started: float
    runtime: Runtime


class SimulatedProvider(Provider):
    name = "simulated"

    def __init__(self) -> None:
        self.runtimes: dict[UUID, SimulatedRuntime] = {}
        self.lock = threading.Lock()
        self.provisions = 0
        # A stage to fail at, per instance or for every instance (key None): tests set and
        # clear it, like an outage of the cloud they stand for.
        self.fail_stages: dict[UUID | None, str] = {}

    def provision(
        self, instance_id: UUID, configuration: dict[str, Any], report: StageReporter
    ) -> RuntimeInfo:
        failing = configuration.get("simulate_failure") or self.fail_stages.get(
            instance_id, self.fail_stages.get(None)
        )
        for stage in STAGES:
            report(stage, f"simulated {stage.replace('_', ' ')}")
            if stage == failing:
                raise ProvisionFailedError(stage, "simulated_failure", f"{stage} failed as asked")
            if stage == "configure":
                with self.lock:
                    found = self.runtimes.get(instance_id)
                    if found is None:
                        self.provisions += 1
                        found = SimulatedRuntime(
                            n=self.provisions,
                            state="running",
                            started=time.time(),
                            runtime=Runtime(str(instance_id)),
                        )
                        self.runtimes[instance_id] = found
                    found.runtime.config.update(configuration)
        return self._info(instance_id, self.runtimes[instance_id])

    @staticmethod
    def _info(instance_id: UUID, found: SimulatedRuntime) -> RuntimeInfo:
        n = found.n
        return RuntimeInfo(
            hostname=f"{instance_id.hex[:12]}.sim",
            address=f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
            handle=f"sim-{n}",
        )

    def _set(self, instance_id: UUID, state: str) -> SimulatedRuntime:
        with self.lock:
            found = self.runtimes.get(instance_id)
            if found is None:
                raise RuntimeUnavailableError(instance_id, "stopped", "not provisioned")
            found.state = state
            return found

    def pause(self, instance_id: UUID) -> None:
        self._set(instance_id, "paused")

    def resume(self, instance_id: UUID) -> None:
        self._set(instance_id, "running")

    def stop(self, instance_id: UUID) -> None:
        self._set(instance_id, "stopped")

    def start(self, instance_id: UUID) -> RuntimeInfo:
        return self._info(instance_id, self._set(instance_id, "running"))

    def restart(self, instance_id: UUID) -> RuntimeInfo:
        found = self._set(instance_id, "running")
        found.started = time.time()
        return self._info(instance_id, found)

    def destroy(self, instance_id: UUID) -> None:
        with self.lock:
            self.runtimes.pop(instance_id, None)

    def health(self, instance_id: UUID) -> HealthSample:
        found = self.runtimes.get(instance_id)
        if found is None:
            return HealthSample(health_status="unreachable", detail="not provisioned")
        running = found.state == "running"
        return HealthSample(
            health_status="healthy" if running else "degraded",
            cpu_percent=1.0,
            memory_mb=64.0,
            disk_mb=1.0,
            uptime_secs=round(time.time() - found.started, 1),
            last_heartbeat=datetime.now(UTC) if running else None,
            detail=None if running else found.state,
        )

    def find(self, instance_id: UUID) -> RuntimeInfo | None:
        found = self.runtimes.get(instance_id)
        return None if found is None or found.state == "stopped" else self._info(instance_id, found)

    def known(self) -> list[UUID]:
        return list(self.runtimes)

    def call(
        self,
        instance_id: UUID,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        found = self.runtimes.get(instance_id)
        if found is None:
            raise RuntimeUnavailableError(instance_id, "stopped", "not provisioned")
        if found.state != "running":
            raise RuntimeUnavailableError(instance_id, found.state)
        query = {k: [str(v)] for k, v in (params or {}).items()}
        data = msgspec.json.encode(body) if body is not None else b""
        status, answer = found.runtime.handle(method.upper(), urlsplit(path).path, query, data)
        # As over HTTP: plain JSON values, not the runtime's own structs.
        return status, msgspec.to_builtins(answer)
