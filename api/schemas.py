"""Request and response bodies of the REST API. Constraints live here, so the OpenAPI schema
states them and a request that breaks one is refused with 422 before anything is written."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from domain.state import InstanceState
from projections.instances import InstanceRow

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Short = Annotated[str, Meta(max_length=200)]
Key = Annotated[str, Meta(min_length=1, max_length=255)]
InstanceType = Literal["browser", "ubuntu", "windows", "agent"]
PlanStatus = Literal["pending", "in_progress", "completed", "failed", "cancelled"]
Level = Literal["debug", "info", "warn", "warning", "error", "critical"]


class CreateInstance(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    name: Name = "New Instance"
    instance_type: InstanceType = "browser"
    region: Short | None = None
    region_id: Short | None = None
    site_id: Short | None = None
    user_id: Short | None = None
    agent_id: Short | None = None
    configuration: dict[str, Any] = {}
    environment_variables: dict[str, Annotated[str, Meta(max_length=32_768)]] = {}
    runtime_type: Short | None = None
    workload_type: Short | None = None
    preset_id: Short | None = None
    tier_id: Short | None = None
    idempotency_key: Key | None = None


class CreateAccepted(msgspec.Struct, kw_only=True):
    instance_id: UUID
    idempotency_key: str | None
    status: str
    message: str
    instance: InstanceState


class ReplaceInstance(msgspec.Struct, kw_only=True):
    """PUT: every updatable field; the ones left out are cleared."""

    name: Name
    site_id: Short | None = None
    region: Short | None = None
    agent_id: Short | None = None
    runtime_type: Short | None = None
    workload_type: Short | None = None
    preset_id: Short | None = None
    tier_id: Short | None = None
    configuration: dict[str, Any] = {}


class PatchInstance(msgspec.Struct, kw_only=True, omit_defaults=True):
    """PATCH: only the fields sent change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    site_id: Short | msgspec.UnsetType | None = msgspec.UNSET
    region: Short | msgspec.UnsetType | None = msgspec.UNSET
    agent_id: Short | msgspec.UnsetType | None = msgspec.UNSET
    runtime_type: Short | msgspec.UnsetType | None = msgspec.UNSET
    workload_type: Short | msgspec.UnsetType | None = msgspec.UNSET
    preset_id: Short | msgspec.UnsetType | None = msgspec.UNSET
    tier_id: Short | msgspec.UnsetType | None = msgspec.UNSET
    configuration: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class InstanceList(msgspec.Struct, kw_only=True):
    instances: list[InstanceRow]
    total: int
    next_cursor: str | None
    limit: int
    offset: int


class StatusAnswer(msgspec.Struct, kw_only=True):
    instance_id: UUID
    status: str
    changed: bool
    version: int
    message: str


class DeleteAnswer(msgspec.Struct, kw_only=True):
    instance_id: UUID
    status: str
    already_deleted: bool
    message: str


class Health(msgspec.Struct, kw_only=True):
    instance_id: UUID
    status: str
    health_status: str
    cpu_percent: float | None = None
    memory_mb: float | None = None
    disk_mb: float | None = None
    last_heartbeat: datetime | None = None
    uptime_secs: float | None = None
    failures: int = 0


class NewLog(msgspec.Struct, kw_only=True):
    log_type: Annotated[str, Meta(min_length=1, max_length=100)]
    message: Annotated[str, Meta(min_length=1, max_length=100_000)]
    level: Level = "info"
    details: dict[str, Any] | None = None
    stage: Short | None = None


class NewPlan(msgspec.Struct, kw_only=True):
    title: Name
    plan_type: Annotated[str, Meta(min_length=1, max_length=100)]
    description: Annotated[str, Meta(max_length=100_000)] | None = None
    status: PlanStatus = "pending"
    priority: Annotated[int, Meta(ge=0, le=1_000_000)] = 0
    instructions: Annotated[str, Meta(max_length=100_000)] | None = None


class PlanChange(msgspec.Struct, kw_only=True):
    status: PlanStatus | None = None
    title: Name | None = None
    description: Annotated[str, Meta(max_length=100_000)] | None = None
    priority: Annotated[int, Meta(ge=0, le=1_000_000)] | None = None
    instructions: Annotated[str, Meta(max_length=100_000)] | None = None


class Written(msgspec.Struct, kw_only=True):
    id: UUID
    instance_id: UUID
    position: int | None


class ConsentChange(msgspec.Struct, kw_only=True):
    consent_debug_access: bool


class ConsentAnswer(msgspec.Struct, kw_only=True):
    instance_id: UUID
    consent_debug_access: bool
    message: str


class ModelPolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Which models the instance's agent may use; stored as given."""

    default_model: Short | None = None
    allowed_models: list[Short] | None = None
    max_tokens_per_request: Annotated[int, Meta(ge=1)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None


class ModelPolicyAnswer(msgspec.Struct, kw_only=True):
    instance_id: UUID
    model_policy: dict[str, Any]
    pushed_to_runtime: bool
    message: str


class PlatformConfigPatch(msgspec.Struct, kw_only=True, omit_defaults=True):
    advanced: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    channels: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    integrations: list[Any] | msgspec.UnsetType | None = msgspec.UNSET
    recipe_id: Short | msgspec.UnsetType | None = msgspec.UNSET
    skills: list[Any] | msgspec.UnsetType | None = msgspec.UNSET
    workflow_slugs: list[Short] | msgspec.UnsetType | None = msgspec.UNSET


class PlatformConfig(msgspec.Struct, kw_only=True):
    instance_id: UUID
    platform_config: dict[str, Any]


class RotateKeyAnswer(msgspec.Struct, kw_only=True):
    instance_id: UUID
    status: str
    message: str


class CleanupAnswer(msgspec.Struct, kw_only=True):
    cleaned: int
    errors: int
    message: str


class ByKey(msgspec.Struct, kw_only=True):
    found: bool
    idempotency_key: str
    instance_id: UUID | None = None
    status: str | None = None
    provisioning_stage: str | None = None
    bootstrap_seq: int = 0
    hostname: str | None = None
    error_message: str | None = None
    logs: list[dict[str, Any]] = []


class EventItem(msgspec.Struct, kw_only=True):
    position: int | None
    version: int
    timestamp: datetime
    type: str
    fields: dict[str, Any]


class EventPage(msgspec.Struct, kw_only=True):
    instance_id: UUID
    events: list[EventItem]
    total: int
    limit: int
    offset: int


class UsageDay(msgspec.Struct, kw_only=True):
    day: date
    requests: int
    tokens: int
    cost: str
    unique_end_users: int


class UsageTotals(msgspec.Struct, kw_only=True):
    requests: int
    tokens: int
    cost: str
    unique_end_users: int


class UsageAnswer(msgspec.Struct, kw_only=True):
    instance_id: UUID
    days: int
    daily: list[UsageDay]
    totals: UsageTotals


class ToolCall(msgspec.Struct, kw_only=True):
    action: Literal["create", "read", "update"]
    site_id: Short | None = None
    instance_id: UUID | None = None
    activity: Annotated[str, Meta(min_length=1, max_length=2000)] | None = None
    name: Name | None = None
    context: Annotated[str, Meta(min_length=1, max_length=20_000)] | None = None
    status: Short | None = None
    limit: Annotated[int, Meta(ge=1, le=200)] = 20
    offset: Annotated[int, Meta(ge=0)] = 0


class ToolAnswer(msgspec.Struct, kw_only=True, omit_defaults=True):
    success: bool
    instance: dict[str, Any] | None = None
    instances: list[dict[str, Any]] | None = None
    total: int | None = None
    renamed: bool | None = None
    old_name: str | None = None
    new_name: str | None = None
    similarity: float | None = None
    message: str | None = None


class Ready(msgspec.Struct, kw_only=True):
    ready: bool
    store: str
    lags: dict[str, int]
    detail: str
