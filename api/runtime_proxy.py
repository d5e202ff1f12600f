"""Calls that reach the instance's runtime: chat, its configuration, its conversations (only
with the owner's debug consent), updates, and its status as Lifeline knows it."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.params import Parameter
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_503_SERVICE_UNAVAILABLE
from msgspec import Meta

from adapters.providers.base import RuntimeUnavailableError
from adapters.services import Services
from domain.state import InstanceState
from domain.values import Scope

ConversationId = Annotated[str, Parameter(pattern=r"^[A-Za-z0-9:_-]{1,128}$", max_length=128)]
# Statuses in which the runtime is deliberately not there: the caller hears why, at once.
ABSENT = {
    "creating": "still being provisioned",
    "paused": "paused; resume it first",
    "stopped": "stopped; start it first",
    "restarting": "restarting; try again in a moment",
    "error": "in error; retry or delete it",
    "deleting": "being deleted",
    "deleted": "deleted",
}


class ChatMessage(msgspec.Struct, kw_only=True):
    message: Annotated[str, Meta(min_length=1, max_length=8000)]
    conversation_id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9:_-]{1,128}$")] | None = None


class RuntimeStatus(msgspec.Struct, kw_only=True):
    instance_id: UUID
    status: str
    reachable: bool
    reason: str | None
    provisioning_stage: str | None
    bootstrap_seq: int
    health_status: str
    last_heartbeat: str | None
    health_failures: int
    error_code: str | None
    error_message: str | None
    hostname: str | None
    address: str | None
    runtime: dict[str, Any] | None


def _usable(services: Services, caller: Scope, instance_id: UUID) -> InstanceState:
    state = services.app.get_instance(caller, instance_id)
    if state.status in ABSENT:
        raise HTTPException(
            status_code=HTTP_409_CONFLICT,
            detail=f"the instance's runtime is not available: it is {ABSENT[state.status]}",
            extra={"current_status": state.status},
        )
    return state


def _call(
    services: Services, instance_id: UUID, method: str, path: str, body: Any = None, **params: Any
) -> Any:
    try:
        status, answer = services.runtime.call(instance_id, method, path, body, **params)
    except RuntimeUnavailableError as e:
        raise HTTPException(
            status_code=HTTP_503_SERVICE_UNAVAILABLE, detail=str(e), extra={"reason": e.reason}
        ) from None
    if status >= 400:  # noqa: PLR2004
        detail = answer.get("detail") if isinstance(answer, dict) else None
        raise HTTPException(status_code=status, detail=f"the runtime answered: {detail or status}")
    return answer


def _price(services: Services, model: str, tokens: int) -> str:
    prices = services.settings.model_prices
    per_thousand = Decimal(prices.get(model, prices.get("default", "0")))
    return str(per_thousand * tokens / 1000)


class RuntimeController(Controller):
    path = "/v1/instances/{instance_id:uuid}"
    tags = ["runtime"]  # noqa: RUF012 - Litestar's declared type

    @post("/chat", operation_id="proxyChat", status_code=200, sync_to_thread=True)
    def chat(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        caller: Scope,
        instance_id: UUID,
        data: ChatMessage,
    ) -> dict[str, Any]:
        """Talk to the instance's agent; the tokens used are recorded as usage."""
        _usable(services, caller, instance_id)
        end_user = request.headers.get("x-end-user-id") or caller.user_id
        answer = _call(
            services,
            instance_id,
            "POST",
            "/api/chat",
            {"message": data.message, "conversation_id": data.conversation_id, "user_id": end_user},
        )
        usage = answer.get("usage") or {}
        tokens = int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
        model = str(usage.get("model", "default"))
        services.app.record_usage(
            caller,
            instance_id,
            requests=1,
            tokens=tokens,
            cost=_price(services, model, tokens),
            end_user=end_user,
            model=model,
        )
        result: dict[str, Any] = answer
        return result

    @get("/config", operation_id="proxyGetConfig", sync_to_thread=True)
    def get_config(self, services: Services, caller: Scope, instance_id: UUID) -> dict[str, Any]:
        """The runtime's configuration."""
        _usable(services, caller, instance_id)
        result: dict[str, Any] = _call(services, instance_id, "GET", "/api/config")
        return result

    @post("/config", operation_id="proxyUpdateConfig", status_code=200, sync_to_thread=True)
    def set_config(
        self, services: Services, caller: Scope, instance_id: UUID, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Change the runtime's configuration (the fields sent are merged in)."""
        _usable(services, caller, instance_id)
        result: dict[str, Any] = _call(services, instance_id, "POST", "/api/config", data)
        return result

    @get("/conversations", operation_id="proxyConversations", sync_to_thread=True)
    def conversations(
        self,
        services: Services,
        caller: Scope,
        instance_id: UUID,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        """The agent's conversations; only while the owner allows debug access."""
        state = _usable(services, caller, instance_id)
        _require_consent(state)
        result: dict[str, Any] = _call(
            services, instance_id, "GET", "/api/conversations", limit=limit
        )
        return result

    @get("/conversations/{conversation_id:str}", operation_id="proxyConversationDetail",
         sync_to_thread=True)  # fmt: skip
    def conversation(
        self,
        services: Services,
        caller: Scope,
        instance_id: UUID,
        conversation_id: ConversationId,
    ) -> dict[str, Any]:
        """One conversation with its messages; only while the owner allows debug access."""
        state = _usable(services, caller, instance_id)
        _require_consent(state)
        result: dict[str, Any] = _call(
            services, instance_id, "GET", f"/api/conversations/{conversation_id}"
        )
        return result

    @post("/updates/apply", operation_id="applyUpdates", status_code=200, sync_to_thread=True)
    def apply_updates(self, services: Services, caller: Scope, instance_id: UUID) -> dict[str, Any]:
        """Have the runtime apply its pending updates."""
        _usable(services, caller, instance_id)
        result: dict[str, Any] = _call(services, instance_id, "POST", "/api/updates/apply", {})
        return result

    @get("/runtime", operation_id="getRuntimeStatus", sync_to_thread=True)
    def runtime(
        self, services: Services, caller: Scope, instance_id: UUID
    ) -> Response[RuntimeStatus]:
        """The runtime's own status, with what Lifeline knows, in every state of the instance."""
        state = services.app.get_instance(caller, instance_id)
        sample = services.telemetry(instance_id)
        reported: dict[str, Any] | None = None
        reason = ABSENT.get(state.status)
        if reason is None:
            try:
                code, answer = services.runtime.call(instance_id, "GET", "/api/status")
                reported = answer if code == 200 and isinstance(answer, dict) else None  # noqa: PLR2004
                reason = None if reported else f"the runtime answered {code}"
            except RuntimeUnavailableError as e:
                reason = e.reason
        body = RuntimeStatus(
            instance_id=instance_id,
            status=state.status,
            reachable=reported is not None,
            reason=reason,
            provisioning_stage=state.provisioning_stage,
            bootstrap_seq=state.bootstrap_seq,
            health_status=state.health_status,
            last_heartbeat=sample.last_heartbeat.isoformat()
            if sample and sample.last_heartbeat
            else None,
            health_failures=sample.failures if sample else 0,
            error_code=state.error_code,
            error_message=state.error_message,
            hostname=state.hostname,
            address=state.ip_address,
            runtime=reported,
        )
        return Response(body)


def _require_consent(state: InstanceState) -> None:
    if not state.consent_debug_access:
        raise PermissionDeniedException(
            "conversations are private: the owner has not granted debug access "
            "(PATCH /v1/instances/{id}/consent)"
        )
