"""What Lifeline asks of a runtime provider: make, suspend, resume, stop, start, restart and
tear down an instance's runtime, say how it is, and where its runtime contract is served."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any
from uuid import UUID

import msgspec

from adapters.telemetry import HealthSample

# Reports a provisioning stage as it starts: (stage, message).
StageReporter = Callable[[str, str], None]
STAGES = ("allocate", "boot", "install_runtime", "configure", "health_check")


class RuntimeInfo(msgspec.Struct, frozen=True, kw_only=True):
    hostname: str
    address: str
    pid: int | None = None


class ProviderError(Exception):
    """A provider could not do what was asked."""


class RuntimeUnavailableError(ProviderError):
    """The runtime cannot take calls: paused, stopped, gone or not answering."""

    def __init__(self, instance_id: UUID, reason: str) -> None:
        super().__init__(f"the runtime of instance {instance_id} is {reason}")
        self.reason = reason


class ProvisionFailedError(ProviderError):
    def __init__(self, stage: str, code: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.code = code
        self.message = message


class Provider(ABC):
    name: str

    @abstractmethod
    def provision(
        self, instance_id: UUID, configuration: dict[str, Any], report: StageReporter
    ) -> RuntimeInfo:
        """Creates the runtime, or finds the one made before: never two for one instance."""

    @abstractmethod
    def pause(self, instance_id: UUID) -> None: ...

    @abstractmethod
    def resume(self, instance_id: UUID) -> None: ...

    @abstractmethod
    def stop(self, instance_id: UUID) -> None: ...

    @abstractmethod
    def start(self, instance_id: UUID) -> RuntimeInfo: ...

    @abstractmethod
    def restart(self, instance_id: UUID) -> RuntimeInfo: ...

    @abstractmethod
    def destroy(self, instance_id: UUID) -> None:
        """Tears the runtime down and frees what it held; nothing to do is not an error."""

    @abstractmethod
    def health(self, instance_id: UUID) -> HealthSample: ...

    @abstractmethod
    def base_url(self, instance_id: UUID) -> str:
        """Where the runtime contract is served; RuntimeUnavailableError when it cannot be."""

    @abstractmethod
    def known(self) -> list[UUID]:
        """Instances this provider holds a runtime for."""

    def close(self) -> None:  # noqa: B027 - an optional hook, not every provider holds anything
        """Releases the provider's own resources (runtimes keep running)."""
