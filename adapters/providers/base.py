"""What Lifeline asks of a runtime provider: make, suspend, resume, stop, start, restart and
tear down an instance's runtime, say how it is, find it again after a restart, and carry calls
to the runtime contract (status, chat, config, conversations, updates) to it.

The lifecycle actions are called by the provisioner only (they must be idempotent: it redoes
unfinished work after a crash). The runtime calls are for the API, which should use `call`
for proxying (it gets the runtime's status code and body) or the typed helpers, which raise
`RuntimeCallError` when the runtime refuses. Every runtime call either answers or raises
`RuntimeUnavailableError` within a bounded time.
"""

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
HTTP_ERROR = 400


class RuntimeInfo(msgspec.Struct, frozen=True, kw_only=True):
    hostname: str
    # Where the runtime contract is served, host:port for the local provider.
    address: str
    # The OS process (local provider) or the cloud's handle; None when there is neither.
    pid: int | None = None
    handle: str | None = None


class ProviderError(Exception):
    """A provider could not do what was asked."""


class RuntimeUnavailableError(ProviderError):
    """The runtime cannot take calls. `reason` is one word the API can map: "paused",
    "stopped" (no runtime process, or never provisioned) or "unreachable" (it exists but
    does not answer in time); `detail` says more."""

    def __init__(self, instance_id: UUID, reason: str, detail: str | None = None) -> None:
        more = f" ({detail})" if detail else ""
        super().__init__(f"the runtime of instance {instance_id} is {reason}{more}")
        self.instance_id = instance_id
        self.reason = reason
        self.detail = detail


class RuntimeCallError(ProviderError):
    """The runtime answered, but with an error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the runtime answered {status}: {detail}")
        self.status = status
        self.detail = detail


class ProvisionFailedError(ProviderError):
    def __init__(self, stage: str, code: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.code = code
        self.message = message


# The names the design uses; the classes carry the Error suffix the linters expect.
RuntimeUnavailable = RuntimeUnavailableError
ProvisionFailed = ProvisionFailedError


class Provider(ABC):
    name: str

    # -- lifecycle (the provisioner's) --------------------------------------------------------

    @abstractmethod
    def provision(
        self, instance_id: UUID, configuration: dict[str, Any], report: StageReporter
    ) -> RuntimeInfo:
        """Creates the runtime, or finds the one made before: never two for one instance.
        Reports each stage of STAGES as it starts; ProvisionFailedError names the stage."""

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

    # -- what there is --------------------------------------------------------------------------

    @abstractmethod
    def health(self, instance_id: UUID) -> HealthSample:
        """A telemetry sample: cpu, memory, uptime, heartbeat; never raises for a missing
        runtime (that is an `unreachable` sample)."""

    @abstractmethod
    def find(self, instance_id: UUID) -> RuntimeInfo | None:
        """The instance's runtime if one exists now (running or paused), for reconciliation."""

    @abstractmethod
    def known(self) -> list[UUID]:
        """Instances this provider holds a runtime (or what is left of one) for."""

    def base_url(self, instance_id: UUID) -> str:
        """Where the runtime contract is served over HTTP, for providers that serve it so."""
        raise RuntimeUnavailableError(instance_id, "unreachable", f"{self.name}: no HTTP contract")

    # -- the runtime contract (the API's) ---------------------------------------------------------

    @abstractmethod
    def call(
        self,
        instance_id: UUID,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        """One call to the runtime contract: (status code, decoded body). Raises
        RuntimeUnavailableError, never hangs past the provider's timeouts."""

    def _ok(
        self, instance_id: UUID, method: str, path: str, body: Any = None, **params: Any
    ) -> Any:
        status, answer = self.call(instance_id, method, path, body, params or None)
        if status >= HTTP_ERROR:
            detail = answer.get("detail") if isinstance(answer, dict) else None
            raise RuntimeCallError(status, str(detail or answer))
        return answer

    def status(self, instance_id: UUID) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(instance_id, "GET", "/api/status")
        return result

    def chat(
        self,
        instance_id: UUID,
        message: str,
        end_user: str | None = None,
        conversation_id: str | None = None,
    ) -> dict[str, Any]:
        """{reply, conversation_id, usage: {input_tokens, output_tokens, model}}."""
        body = {"message": message, "user_id": end_user, "conversation_id": conversation_id}
        result: dict[str, Any] = self._ok(instance_id, "POST", "/api/chat", body)
        return result

    def get_config(self, instance_id: UUID) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(instance_id, "GET", "/api/config")
        return result

    def set_config(self, instance_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
        """Merges `changes` into the runtime's configuration; answers the whole of it."""
        result: dict[str, Any] = self._ok(instance_id, "POST", "/api/config", changes)
        return result

    def conversations(self, instance_id: UUID, limit: int = 20) -> list[dict[str, Any]]:
        answer = self._ok(instance_id, "GET", "/api/conversations", limit=limit)
        return list(answer.get("conversations", []))

    def conversation(self, instance_id: UUID, conversation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(
            instance_id, "GET", f"/api/conversations/{conversation_id}"
        )
        return result

    def apply_updates(self, instance_id: UUID) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(instance_id, "POST", "/api/updates/apply", {})
        return result

    def push_model_policy(self, instance_id: UUID, policy: dict[str, Any]) -> dict[str, Any]:
        return self.set_config(instance_id, {"model_policy": policy})

    def close(self) -> None:  # noqa: B027 - an optional hook, not every provider holds anything
        """Releases the provider's own resources (runtimes keep running)."""
