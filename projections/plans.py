"""The `plans` read model: the work planned for each instance's agent, filterable by status."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec

from domain.plan import Plan
from projections.base import ReadModel, View

# Event classes that @event declares at run time, where mypy cannot see them.
CREATED: Any = getattr(Plan, "Created")  # noqa: B009
STATUSCHANGED: Any = getattr(Plan, "StatusChanged")  # noqa: B009
REVISED: Any = getattr(Plan, "Revised")  # noqa: B009


class PlanRow(msgspec.Struct, kw_only=True):
    id: UUID
    instance_id: UUID
    tenant_id: str
    title: str
    description: str | None
    plan_type: str
    status: str
    priority: int
    instructions: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class AddPlan(msgspec.Struct, frozen=True):
    row: PlanRow


class ChangePlan(msgspec.Struct, frozen=True):
    id: UUID
    version: int
    updated_at: datetime
    fields: dict[str, Any]


class PlanQuery(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: UUID
    status: str | None = None
    plan_type: str | None = None
    limit: int = 50
    offset: int = 0


class PlanPage(msgspec.Struct, frozen=True):
    plans: list[PlanRow]
    total: int


class PlansView(View):
    @abstractmethod
    def list_plans(self, query: PlanQuery) -> PlanPage: ...

    @abstractmethod
    def get_plan(self, instance_id: UUID, plan_id: UUID) -> PlanRow | None:
        """The plan, if it belongs to that instance: callers authorise on the instance."""


class PlansProjection(ReadModel[PlansView]):
    name = "plans"

    @singledispatchmethod
    def ops(self, domain_event: Any) -> Sequence[Any]:
        return ()

    @ops.register(CREATED)
    def _(self, e: Any) -> Sequence[Any]:
        row = PlanRow(
            id=e.originator_id,
            instance_id=e.instance_id,
            tenant_id=e.tenant_id,
            title=e.title,
            description=e.description,
            plan_type=e.plan_type,
            status=e.status,
            priority=e.priority,
            instructions=e.instructions,
            version=e.originator_version,
            created_at=e.timestamp,
            updated_at=e.timestamp,
        )
        return [AddPlan(row)]

    @ops.register(STATUSCHANGED)
    def _(self, e: Any) -> Sequence[Any]:
        return [
            ChangePlan(e.originator_id, e.originator_version, e.timestamp, {"status": e.status})
        ]

    @ops.register(REVISED)
    def _(self, e: Any) -> Sequence[Any]:
        return [ChangePlan(e.originator_id, e.originator_version, e.timestamp, dict(e.changes))]
