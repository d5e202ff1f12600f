"""A provider that stands in for a cloud API in tests and demos: runtimes exist only in memory,
provisioning passes its stages at once, and a configuration can ask it to fail a stage
(`{"simulate_failure": "boot"}`), so failure paths can be exercised without a cloud."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from adapters.providers.base import (
    STAGES,
    Provider,
    ProvisionFailedError,
    RuntimeInfo,
    RuntimeUnavailableError,
    StageReporter,
)
from adapters.telemetry import HealthSample


class SimulatedProvider(Provider):
    name = "simulated"

    def __init__(self) -> None:
        self.runtimes: dict[UUID, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.provisions = 0

    def provision(
        self, instance_id: UUID, configuration: dict[str, Any], report: StageReporter
    ) -> RuntimeInfo:
        failing = configuration.get("simulate_failure")
        for stage in STAGES:
            report(stage, f"simulated {stage.replace('_', ' ')}")
            if stage == failing:
                raise ProvisionFailedError(stage, "simulated_failure", f"{stage} failed as asked")
        with self.lock:
            runtime = self.runtimes.get(instance_id)
            if runtime is None:
                self.provisions += 1
                runtime = {"state": "running", "started": time.time(), "n": self.provisions}
                self.runtimes[instance_id] = runtime
        return self._info(instance_id, runtime)

    @staticmethod
    def _info(instance_id: UUID, runtime: dict[str, Any]) -> RuntimeInfo:
        n = int(runtime["n"])
        return RuntimeInfo(
            hostname=f"{instance_id.hex[:12]}.sim",
            address=f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
        )

    def _set(self, instance_id: UUID, state: str) -> dict[str, Any]:
        with self.lock:
            runtime = self.runtimes.get(instance_id)
            if runtime is None:
                raise RuntimeUnavailableError(instance_id, "not provisioned")
            runtime["state"] = state
            return runtime

    def pause(self, instance_id: UUID) -> None:
        self._set(instance_id, "paused")

    def resume(self, instance_id: UUID) -> None:
        self._set(instance_id, "running")

    def stop(self, instance_id: UUID) -> None:
        self._set(instance_id, "stopped")

    def start(self, instance_id: UUID) -> RuntimeInfo:
        return self._info(instance_id, self._set(instance_id, "running"))

    def restart(self, instance_id: UUID) -> RuntimeInfo:
        runtime = self._set(instance_id, "running")
        runtime["started"] = time.time()
        return self._info(instance_id, runtime)

    def destroy(self, instance_id: UUID) -> None:
        with self.lock:
            self.runtimes.pop(instance_id, None)

    def health(self, instance_id: UUID) -> HealthSample:
        runtime = self.runtimes.get(instance_id)
        if runtime is None:
            return HealthSample(health_status="unreachable", detail="not provisioned")
        running = runtime["state"] == "running"
        return HealthSample(
            health_status="healthy" if running else "degraded",
            cpu_percent=1.0,
            memory_mb=64.0,
            disk_mb=1.0,
            uptime_secs=round(time.time() - float(runtime["started"]), 1),
            last_heartbeat=datetime.now(UTC) if running else None,
            detail=None if running else str(runtime["state"]),
        )

    def base_url(self, instance_id: UUID) -> str:
        raise RuntimeUnavailableError(instance_id, "simulated: it serves no runtime contract")

    def known(self) -> list[UUID]:
        return list(self.runtimes)
