"""Health telemetry: the latest sample per instance, kept in memory. Samples are not events;
only a change of health status is recorded in the store."""

from __future__ import annotations

import threading
from datetime import datetime
from uuid import UUID

import msgspec


class HealthSample(msgspec.Struct, frozen=True, kw_only=True):
    health_status: str
    cpu_percent: float | None = None
    memory_mb: float | None = None
    disk_mb: float | None = None
    uptime_secs: float | None = None
    last_heartbeat: datetime | None = None
    failures: int = 0
    detail: str | None = None


class TelemetryBook:
    def __init__(self) -> None:
        self._samples: dict[UUID, HealthSample] = {}
        self._lock = threading.Lock()

    def record(self, instance_id: UUID, sample: HealthSample) -> None:
        with self._lock:
            self._samples[instance_id] = sample

    def get(self, instance_id: UUID) -> HealthSample | None:
        return self._samples.get(instance_id)

    def forget(self, instance_id: UUID) -> None:
        with self._lock:
            self._samples.pop(instance_id, None)
