"""The instance collection and single instances: list, create, read (now or as it was),
replace, patch and delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import HeaderParameter, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from adapters.services import Services
from api.deps import (
    decode_cursor,
    encode_cursor,
    etag,
    expected_version,
    instances_view,
    settle,
)
from api.schemas import (
    CreateAccepted,
    CreateInstance,
    DeleteAnswer,
    InstanceList,
    PatchInstance,
    ReplaceInstance,
)
from domain.state import InstanceState
from domain.values import Scope
from projections.instances import InstanceQuery

Limit = Annotated[int, Parameter(ge=1, le=200, description="page size, at most 200")]
Offset = Annotated[int, Parameter(ge=0, le=10_000_000)]
Filter = Annotated[str | None, Parameter(max_length=200)]


class InstancesController(Controller):
    path = "/v1/instances"
    tags = ["instances"]  # noqa: RUF012 - Litestar's declared type

    @get(operation_id="listInstances", sync_to_thread=True)
    def list_instances(
        self,
        services: Services,
        caller: Scope,
        site_id: Filter = None,
        status: Filter = None,
        instance_type: Filter = None,
        region: Filter = None,
        region_id: Filter = None,
        user_id: Filter = None,
        q: Filter = None,
        include_deleted: bool = False,
        limit: Limit = 50,
        offset: Offset = 0,
        cursor: Annotated[str | None, Parameter(max_length=100)] = None,
    ) -> InstanceList:
        """List the tenant's instances, newest first, filtered and paginated."""
        if not caller.is_admin and user_id not in {None, caller.user_id}:
            # Members only ever see their own instances.
            return InstanceList(instances=[], total=0, next_cursor=None, limit=limit, offset=offset)
        query = InstanceQuery(
            tenant_id=caller.tenant_id,
            site_id=site_id,
            user_id=user_id if caller.is_admin else caller.user_id,
            status=status,
            instance_type=instance_type,
            region=region or region_id,
            name_contains=q,
            include_deleted=include_deleted,
            limit=limit,
            offset=offset,
            after=decode_cursor(cursor) if cursor else None,
        )
        page = instances_view(services).list_instances(query)
        return InstanceList(
            instances=page.instances,
            total=page.total,
            next_cursor=encode_cursor(page.next_after),
            limit=limit,
            offset=offset,
        )

    @post(operation_id="createInstance", status_code=HTTP_202_ACCEPTED, sync_to_thread=True)
    def create_instance(
        self,
        services: Services,
        caller: Scope,
        data: CreateInstance,
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=255)
        ] = None,
    ) -> CreateAccepted:
        """Create an instance; it is provisioned in the background (poll it by key or id)."""
        key = idempotency_key or data.idempotency_key
        result = services.app.create_instance(
            caller,
            name=data.name,
            instance_type=data.instance_type,
            site_id=data.site_id,
            user_id=data.user_id,
            region=data.region or data.region_id,
            runtime_type=data.runtime_type,
            workload_type=data.workload_type,
            preset_id=data.preset_id,
            tier_id=data.tier_id,
            agent_id=data.agent_id,
            configuration=data.configuration,
            environment_variables=data.environment_variables,
            idempotency_key=key,
        )
        settle(services, result)
        state = services.app.get_instance(caller, result.id)
        return CreateAccepted(
            instance_id=result.id,
            idempotency_key=key,
            status=state.status,
            message="provisioning started" if result.changed else "already created with this key",
            instance=state.masked(),
        )

    @get("/{instance_id:uuid}", operation_id="getInstance", sync_to_thread=True)
    def get_instance(
        self,
        services: Services,
        caller: Scope,
        instance_id: UUID,
        version: Annotated[int | None, Parameter(ge=1)] = None,
        at: datetime | None = None,
        include_secrets: bool = False,
    ) -> Response[InstanceState]:
        """One instance now, or as it was at a version or moment (audit replay)."""
        state = services.app.get_instance(caller, instance_id, version=version, at=at)
        return Response(
            # Secrets are masked unless asked for; whoever may read the instance may ask.
            state if include_secrets else state.masked(),
            headers={"ETag": etag(state.version)},
        )

    @put("/{instance_id:uuid}", operation_id="replaceInstance", sync_to_thread=True)
    def replace_instance(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        caller: Scope,
        instance_id: UUID,
        data: ReplaceInstance,
    ) -> Response[InstanceState]:
        """Replace every updatable field (honours If-Match)."""
        return self._change(request, services, caller, instance_id, msgspec.structs.asdict(data))

    @patch("/{instance_id:uuid}", operation_id="patchInstance", sync_to_thread=True)
    def patch_instance(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        caller: Scope,
        instance_id: UUID,
        data: PatchInstance,
    ) -> Response[InstanceState]:
        """Change only the fields sent (honours If-Match)."""
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        return self._change(request, services, caller, instance_id, changes)

    @staticmethod
    def _change(
        request: Request[Any, Any, Any],
        services: Services,
        caller: Scope,
        instance_id: UUID,
        changes: dict[str, Any],
    ) -> Response[InstanceState]:
        result = services.app.update_instance(
            caller, instance_id, changes, expected_version=expected_version(request)
        )
        settle(services, result)
        state = services.app.get_instance(caller, instance_id)
        return Response(state.masked(), headers={"ETag": etag(state.version)})

    @delete(
        "/{instance_id:uuid}",
        operation_id="deleteInstance",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
    )
    def delete_instance(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        caller: Scope,
        instance_id: UUID,
    ) -> DeleteAnswer:
        """Soft-delete: tear the runtime down, keep the history; a repeat says already_deleted."""
        result = services.app.request_deletion(
            caller, instance_id, expected_version=expected_version(request)
        )
        settle(services, result)
        status = result.status or services.app.get_instance(caller, instance_id).status
        if not result.changed:
            return DeleteAnswer(
                instance_id=instance_id,
                status=status,
                already_deleted=True,
                message="the instance was already deleted or is being deleted",
            )
        return DeleteAnswer(
            instance_id=instance_id,
            status=status,
            already_deleted=False,
            message="deletion started; the runtime is being torn down",
        )
