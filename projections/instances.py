"""The `instances` read model: one row per instance, for listing, filtering and counting."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec

from domain.instance import Instance
from projections.base import ReadModel, View

# The status each event leaves the instance in (events not listed keep the status).
STATUS_AFTER = {
    "Paused": "paused",
    "Resumed": "running",
    "Stopped": "stopped",
    "Started": "running",
    "RestartRequested": "restarting",
    "Restarted": "running",
    "RetryRequested": "creating",
    "DeletionRequested": "deleting",
    "Deleted": "deleted",
    "Failed": "error",
    "ProvisioningFailed": "error",
    "Provisioned": "running",
}
# Columns an `Updated` event may change; configuration and secrets stay in the aggregate.
LISTED_FIELDS = frozenset(
    {"site_id", "region", "agent_id", "runtime_type", "workload_type", "preset_id", "tier_id"}
)


class InstanceRow(msgspec.Struct, kw_only=True):
    id: UUID
    tenant_id: str
    site_id: str | None
    user_id: str | None
    name: str
    instance_type: str
    status: str
    region: str | None
    runtime_type: str | None
    workload_type: str | None
    preset_id: str | None
    tier_id: str | None
    agent_id: str | None
    hostname: str | None = None
    ip_address: str | None = None
    health_status: str = "unknown"
    provisioning_stage: str | None = None
    error_message: str | None = None
    version: int
    position: int
    created_at: datetime
    updated_at: datetime


class AddInstance(msgspec.Struct, frozen=True):
    row: InstanceRow


class ChangeInstance(msgspec.Struct, frozen=True):
    id: UUID
    version: int
    updated_at: datetime
    fields: dict[str, Any]


class InstanceQuery(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    site_id: str | None = None
    user_id: str | None = None
    status: str | None = None
    instance_type: str | None = None
    region: str | None = None
    name_contains: str | None = None
    include_deleted: bool = False
    limit: int = 50
    offset: int = 0
    # Opaque to callers: the creation position of the last row of the previous page.
    after: int | None = None
    newest_first: bool = True


class InstancePage(msgspec.Struct, frozen=True):
    instances: list[InstanceRow]
    total: int
    next_after: int | None


class InstancesView(View):
    @abstractmethod
    def list_instances(self, query: InstanceQuery) -> InstancePage: ...

    @abstractmethod
    def get_row(self, instance_id: UUID) -> InstanceRow | None: ...

    @abstractmethod
    def count_by_status(self, tenant_id: str) -> dict[str, int]: ...


class InstancesProjection(ReadModel[InstancesView]):
    name = "instances"

    @singledispatchmethod
    def ops(self, domain_event: Any) -> Sequence[Any]:
        return ()

    @ops.register(Instance.Created)
    def _(self, e: Any) -> Sequence[Any]:
        row = InstanceRow(
            id=e.originator_id,
            tenant_id=e.tenant_id,
            site_id=e.site_id,
            user_id=e.user_id,
            name=e.name,
            instance_type=e.instance_type,
            status="creating",
            region=e.region,
            runtime_type=e.runtime_type,
            workload_type=e.workload_type,
            preset_id=e.preset_id,
            tier_id=e.tier_id,
            agent_id=e.agent_id,
            version=e.originator_version,
            position=0,  # the view fills in the event's position
            created_at=e.timestamp,
            updated_at=e.timestamp,
        )
        return [AddInstance(row)]

    @ops.register(Instance.Event)
    def _(self, e: Any) -> Sequence[Any]:
        kind = type(e).__name__
        fields: dict[str, Any] = {}
        if kind in STATUS_AFTER:
            fields["status"] = STATUS_AFTER[kind]
        data = vars(e)
        if kind == "Renamed":
            fields["name"] = data["name"]
        elif kind == "Updated":
            fields.update({k: v for k, v in data["changes"].items() if k in LISTED_FIELDS})
        elif kind == "ProvisioningStageReached":
            fields["provisioning_stage"] = data["stage"]
        elif kind == "Provisioned":
            fields.update(
                hostname=data["hostname"], ip_address=data["ip_address"], provisioning_stage="ready"
            )
        elif kind in ("Failed", "ProvisioningFailed", "DeletionFailed"):
            fields["error_message"] = data["message"]
        elif kind == "RetryRequested":
            fields.update(error_message=None, provisioning_stage=None)
        elif kind == "Deleted":
            fields.update(hostname=None, ip_address=None, health_status="unknown")
        elif kind == "HealthChanged":
            fields["health_status"] = data["health_status"]
        return [ChangeInstance(e.originator_id, e.originator_version, e.timestamp, fields)]
