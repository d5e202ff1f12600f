"""Read-side shapes returned by the application service's queries (never aggregates)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from domain.instance import Instance
from domain.plan import Plan

MASK = "********"
SECRET_FIELDS = frozenset({"environment_variables"})


class InstanceState(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
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
    configuration: dict[str, Any]
    environment_variables: dict[str, str]
    idempotency_key: str | None
    provisioning_stage: str | None
    bootstrap_seq: int
    hostname: str | None
    ip_address: str | None
    error_code: str | None
    error_message: str | None
    failed_stage: str | None
    health_status: str
    consent_debug_access: bool
    model_policy: dict[str, Any]
    platform_config: dict[str, Any]
    restart_count: int
    agent_key_rotated_at: datetime | None
    status_changed_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, instance: Instance) -> InstanceState:
        return cls(
            id=instance.id,
            version=instance.version,
            tenant_id=instance.tenant_id,
            site_id=instance.site_id,
            user_id=instance.user_id,
            name=instance.name,
            instance_type=instance.instance_type,
            status=instance.status,
            region=instance.region,
            runtime_type=instance.runtime_type,
            workload_type=instance.workload_type,
            preset_id=instance.preset_id,
            tier_id=instance.tier_id,
            agent_id=instance.agent_id,
            configuration=dict(instance.configuration),
            environment_variables=dict(instance.environment_variables),
            idempotency_key=instance.idempotency_key,
            provisioning_stage=instance.provisioning_stage,
            bootstrap_seq=instance.bootstrap_seq,
            hostname=instance.hostname,
            ip_address=instance.ip_address,
            error_code=instance.error_code,
            error_message=instance.error_message,
            failed_stage=instance.failed_stage,
            health_status=instance.health_status,
            consent_debug_access=instance.consent_debug_access,
            model_policy=dict(instance.model_policy),
            platform_config=dict(instance.platform_config),
            restart_count=instance.restart_count,
            agent_key_rotated_at=instance.agent_key_rotated_at,
            status_changed_at=instance.status_changed_at,
            created_at=instance.created_on,
            updated_at=instance.modified_on,
        )

    def masked(self) -> InstanceState:
        """The same state with secret values hidden (keys stay, so callers see what is set)."""
        return msgspec.structs.replace(
            self, environment_variables=dict.fromkeys(self.environment_variables, MASK)
        )


class PlanState(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    instance_id: UUID
    version: int
    title: str
    description: str | None
    plan_type: str
    status: str
    priority: int
    instructions: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, plan: Plan) -> PlanState:
        return cls(
            id=plan.id,
            instance_id=plan.instance_id,
            version=plan.version,
            title=plan.title,
            description=plan.description,
            plan_type=plan.plan_type,
            status=plan.status,
            priority=plan.priority,
            instructions=plan.instructions,
            created_at=plan.created_on,
            updated_at=plan.modified_on,
        )


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    position: int | None
    version: int
    timestamp: datetime
    type: str
    fields: dict[str, Any]


def mask_secrets(fields: dict[str, Any]) -> dict[str, Any]:
    """Replaces secret values in an event's fields, wherever they appear."""
    masked = dict(fields)
    for key in SECRET_FIELDS:
        if isinstance(masked.get(key), dict):
            masked[key] = dict.fromkeys(masked[key], MASK)
    changes = masked.get("changes")
    if isinstance(changes, dict):
        masked["changes"] = mask_secrets(changes)
    return masked
