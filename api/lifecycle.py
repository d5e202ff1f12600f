"""Lifecycle actions on one instance, and what a client polls while they take effect: health,
the audit history, waiting for a status, and provisioning by idempotency key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.concurrency import sync_to_thread
from litestar.exceptions import HTTPException
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_408_REQUEST_TIMEOUT

from adapters.services import Services
from api.deps import expected_version, instances_view, require_admin
from api.schemas import (
    ByKey,
    CleanupAnswer,
    EventItem,
    EventPage,
    Health,
    RotateKeyAnswer,
    StatusAnswer,
)
from domain.application import Lifeline
from domain.errors import DomainError
from domain.instance import Status, instance_id_for
from domain.values import CommandResult, Scope
from projections.instances import InstanceQuery

MAX_WAIT_SECONDS = 60.0
Action = Callable[..., CommandResult]
STATUSES = Annotated[str, Parameter(pattern="^(" + "|".join(s.value for s in Status) + ")$")]


class LifecycleController(Controller):
    path = "/v1/instances"
    tags = ["lifecycle"]  # noqa: RUF012 - Litestar's declared type

    def _act(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        caller: Scope,
        instance_id: UUID,
        action: Callable[[Lifeline], Action],
        verb: str,
    ) -> StatusAnswer:
        result = action(services.app)(
            caller, instance_id, expected_version=expected_version(request)
        )
        status = result.status or ""
        return StatusAnswer(
            instance_id=instance_id,
            status=status,
            changed=result.changed,
            version=result.version,
            message=f"{verb}" if result.changed else f"already {status}; nothing changed",
        )

    @post("/{instance_id:uuid}/pause", operation_id="pauseInstance", status_code=HTTP_200_OK,
          sync_to_thread=True)  # fmt: skip
    def pause(
        self, request: Request[Any, Any, Any], services: Services, caller: Scope, instance_id: UUID
    ) -> StatusAnswer:
        """Pause a running instance (its runtime is suspended)."""
        return self._act(request, services, caller, instance_id, lambda a: a.pause, "paused")

    @post("/{instance_id:uuid}/resume", operation_id="resumeInstance", status_code=HTTP_200_OK,
          sync_to_thread=True)  # fmt: skip
    def resume(
        self, request: Request[Any, Any, Any], services: Services, caller: Scope, instance_id: UUID
    ) -> StatusAnswer:
        """Resume a paused instance."""
        return self._act(request, services, caller, instance_id, lambda a: a.resume, "resumed")

    @post("/{instance_id:uuid}/restart", operation_id="restartInstance",
          status_code=HTTP_200_OK, sync_to_thread=True)  # fmt: skip
    def restart(
        self, request: Request[Any, Any, Any], services: Services, caller: Scope, instance_id: UUID
    ) -> StatusAnswer:
        """Restart the instance's runtime (a new process)."""
        return self._act(request, services, caller, instance_id, lambda a: a.restart, "restarting")

    @post("/{instance_id:uuid}/stop", operation_id="stopInstance", status_code=HTTP_200_OK,
          sync_to_thread=True)  # fmt: skip
    def stop(
        self, request: Request[Any, Any, Any], services: Services, caller: Scope, instance_id: UUID
    ) -> StatusAnswer:
        """Stop the instance; it keeps its configuration and can be started again."""
        return self._act(request, services, caller, instance_id, lambda a: a.stop, "stopped")

    @post("/{instance_id:uuid}/start", operation_id="startInstance", status_code=HTTP_200_OK,
          sync_to_thread=True)  # fmt: skip
    def start(
        self, request: Request[Any, Any, Any], services: Services, caller: Scope, instance_id: UUID
    ) -> StatusAnswer:
        """Start a stopped instance."""
        return self._act(request, services, caller, instance_id, lambda a: a.start, "started")

    @post("/{instance_id:uuid}/retry", operation_id="retryInstance", status_code=HTTP_200_OK,
          sync_to_thread=True)  # fmt: skip
    def retry(
        self, request: Request[Any, Any, Any], services: Services, caller: Scope, instance_id: UUID
    ) -> StatusAnswer:
        """Provision a failed instance again."""
        return self._act(request, services, caller, instance_id, lambda a: a.retry, "retrying")

    @get("/{instance_id:uuid}/health", operation_id="getInstanceHealth", sync_to_thread=True)
    def health(self, services: Services, caller: Scope, instance_id: UUID) -> Health:
        """CPU, memory, disk, last heartbeat, uptime and health status."""
        state = services.app.get_instance(caller, instance_id)
        sample = services.telemetry(instance_id)
        return Health(
            instance_id=instance_id,
            status=state.status,
            health_status=state.health_status,
            cpu_percent=sample.cpu_percent if sample else None,
            memory_mb=sample.memory_mb if sample else None,
            disk_mb=sample.disk_mb if sample else None,
            last_heartbeat=sample.last_heartbeat if sample else None,
            uptime_secs=sample.uptime_secs if sample else None,
            failures=sample.failures if sample else 0,
        )

    @get("/{instance_id:uuid}/events", operation_id="listInstanceEvents", sync_to_thread=True)
    def events(
        self,
        services: Services,
        caller: Scope,
        instance_id: UUID,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> EventPage:
        """The instance's history for audit: every event in order, secrets masked."""
        history = services.app.history(caller, instance_id)
        page = history[offset : offset + limit]
        return EventPage(
            instance_id=instance_id,
            events=[
                EventItem(
                    position=h.position,
                    version=h.version,
                    timestamp=h.timestamp,
                    type=h.type,
                    fields=h.fields,
                )
                for h in page
            ],
            total=len(history),
            limit=limit,
            offset=offset,
        )

    @get("/{instance_id:uuid}/wait", operation_id="waitForStatus")
    async def wait(
        self,
        services: Services,
        caller: Scope,
        instance_id: UUID,
        status: STATUSES,
        timeout: Annotated[float, Parameter(gt=0, le=MAX_WAIT_SECONDS)] = 30.0,  # noqa: ASYNC109
    ) -> StatusAnswer:
        """Answer once the instance reaches `status`; 408 when `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        interval = 0.01
        while True:
            state = await sync_to_thread(services.app.get_instance, caller, instance_id)
            if state.status == status:
                return StatusAnswer(
                    instance_id=instance_id,
                    status=state.status,
                    changed=False,
                    version=state.version,
                    message=f"the instance is {status}",
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HTTPException(
                    status_code=HTTP_408_REQUEST_TIMEOUT,
                    detail=f"the instance is still {state.status} after {timeout:g}s",
                    extra={"current_status": state.status},
                )
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * 2, 0.25)

    @get("/by-key/{idempotency_key:str}", operation_id="pollByIdempotencyKey",
         sync_to_thread=True)  # fmt: skip
    def by_key(self, services: Services, caller: Scope, idempotency_key: str) -> ByKey:
        """Provisioning progress of the instance created with this idempotency key."""
        instance_id = instance_id_for(caller.tenant_id, idempotency_key)
        try:
            state = services.app.get_instance(caller, instance_id)
        except DomainError:
            return ByKey(found=False, idempotency_key=idempotency_key)
        return ByKey(
            found=True,
            idempotency_key=idempotency_key,
            instance_id=state.id,
            status=state.status,
            provisioning_stage=state.provisioning_stage,
            bootstrap_seq=state.bootstrap_seq,
            hostname=state.hostname,
            error_message=state.error_message,
            logs=services.provisioning_logs(instance_id),
        )

    @post("/admin/{instance_id:uuid}/rotate-key", operation_id="rotateAgentKey",
          status_code=HTTP_200_OK, sync_to_thread=True)  # fmt: skip
    def rotate_key(self, services: Services, caller: Scope, instance_id: UUID) -> RotateKeyAnswer:
        """Admin: drop the agent's key so the runtime can be issued a fresh one."""
        require_admin(caller)
        result = services.app.rotate_agent_key(caller, instance_id)
        return RotateKeyAnswer(
            instance_id=instance_id,
            status=result.status or "",
            message="agent key rotated; the runtime will be issued a new one",
        )

    @post("/cleanup", operation_id="cleanupDeadInstances", status_code=HTTP_200_OK,
          sync_to_thread=True)  # fmt: skip
    def cleanup(self, services: Services, caller: Scope) -> CleanupAnswer:
        """Admin: delete every instance of the tenant that is in error or stuck deleting."""
        require_admin(caller)
        view = instances_view(services)
        targets = []
        for status in ("error", "deleting"):
            after = None
            while True:
                page = view.list_instances(
                    InstanceQuery(tenant_id=caller.tenant_id, status=status, limit=200, after=after)
                )
                targets += [row.id for row in page.instances]
                if page.next_after is None:
                    break
                after = page.next_after
        cleaned = errors = 0
        for instance_id in targets:
            try:
                services.app.request_deletion(caller, instance_id)
                cleaned += 1
            except DomainError:
                errors += 1
        return CleanupAnswer(
            cleaned=cleaned,
            errors=errors,
            message=f"{cleaned} dead instance(s) are being deleted, {errors} could not be",
        )
