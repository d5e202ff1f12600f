"""The instance tool for AI assistants: create, read and update (with renaming from context)
in one endpoint, as the assistants' tool protocol expects."""

from __future__ import annotations

from typing import Any

from litestar import post
from litestar.status_codes import HTTP_200_OK

from adapters.services import Services
from api.deps import instances_view, settle
from api.schemas import ToolAnswer, ToolCall
from domain.errors import InvalidError
from domain.naming import rename_decision
from domain.values import Scope
from projections.instances import InstanceQuery


def _brief(instance_id: Any, name: str, status: str) -> dict[str, Any]:
    return {"id": str(instance_id), "name": name, "status": status}


@post(
    "/v1/agents/tools/instance",
    operation_id="instanceTool",
    tags=["agents"],
    status_code=HTTP_200_OK,
    sync_to_thread=True,
)
def instance_tool(services: Services, caller: Scope, data: ToolCall) -> ToolAnswer:
    """Create, read or update (rename from context) an instance on behalf of an assistant."""
    if data.action == "create":
        return _create(services, caller, data)
    if data.action == "read":
        return _read(services, caller, data)
    return _update(services, caller, data)


def _create(services: Services, caller: Scope, data: ToolCall) -> ToolAnswer:
    if data.activity is None:
        raise InvalidError("activity", "is required to create an instance")
    if data.site_id is None:
        raise InvalidError("site_id", "is required to create an instance")
    result = services.app.create_instance(
        caller, name=data.activity.strip()[:200], site_id=data.site_id, instance_type="agent"
    )
    settle(services, result)
    state = services.app.get_instance(caller, result.id)
    return ToolAnswer(success=True, instance=_brief(state.id, state.name, state.status))


def _read(services: Services, caller: Scope, data: ToolCall) -> ToolAnswer:
    if data.instance_id is not None:
        state = services.app.get_instance(caller, data.instance_id)
        return ToolAnswer(success=True, instance=_brief(state.id, state.name, state.status))
    if data.site_id is None:
        raise InvalidError("site_id", "is required to list instances (or give instance_id)")
    page = instances_view(services).list_instances(
        InstanceQuery(
            tenant_id=caller.tenant_id,
            site_id=data.site_id,
            user_id=None if caller.is_admin else caller.user_id,
            limit=data.limit,
            offset=data.offset,
        )
    )
    return ToolAnswer(
        success=True,
        instances=[_brief(r.id, r.name, r.status) for r in page.instances],
        total=page.total,
    )


def _update(services: Services, caller: Scope, data: ToolCall) -> ToolAnswer:
    if data.instance_id is None:
        raise InvalidError("instance_id", "is required to update an instance")
    state = services.app.get_instance(caller, data.instance_id)
    if data.name is not None:
        result = services.app.rename(caller, state.id, data.name)
        settle(services, result)
        return ToolAnswer(
            success=True,
            renamed=result.changed,
            old_name=state.name,
            new_name=data.name.strip(),
            message="renamed as asked" if result.changed else "the name was already that",
        )
    if data.context is None:
        raise InvalidError("context", "give either name or context to update an instance")
    rename, new_name, score = rename_decision(state.name, data.context)
    if rename:
        settle(services, services.app.rename(caller, state.id, new_name))
    return ToolAnswer(
        success=True,
        renamed=rename,
        old_name=state.name,
        new_name=new_name if rename else state.name,
        similarity=score,
        message=(
            "renamed: the name was generic or no longer matched the context"
            if rename
            else "kept: the name still matches the context"
        ),
    )
