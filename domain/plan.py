"""The Plan aggregate: a piece of work for the agent on an instance."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import ConflictError, InvalidError, NotFoundError
from domain.values import require_name

MAX_TEXT = 20_000


class PlanStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({PlanStatus.COMPLETED, PlanStatus.FAILED, PlanStatus.CANCELLED})


def parse_plan_status(value: str) -> PlanStatus:
    try:
        return PlanStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in PlanStatus)
        raise InvalidError("status", f"must be one of {allowed}") from None


def _text(value: str | None, field: str) -> str | None:
    if value is not None and len(value) > MAX_TEXT:
        raise InvalidError(field, f"must be at most {MAX_TEXT} characters")
    return value


class Plan(Aggregate):
    @event("Created")
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - the library takes the aggregate id from here
        instance_id: UUID,
        tenant_id: str,
        title: str,
        description: str | None,
        plan_type: str,
        status: str,
        priority: int,
        instructions: str | None,
        timestamp: datetime,
    ) -> None:
        self.instance_id = instance_id
        self.tenant_id = tenant_id
        self.title = title
        self.description = description
        self.plan_type = plan_type
        self.status = status
        self.priority = priority
        self.instructions = instructions

    @staticmethod
    def create(
        *,
        plan_id: UUID,
        instance_id: UUID,
        tenant_id: str,
        title: str,
        plan_type: str,
        at: datetime,
        description: str | None = None,
        status: str = PlanStatus.PENDING.value,
        priority: int = 0,
        instructions: str | None = None,
    ) -> Plan:
        if priority < 0:
            raise InvalidError("priority", "must not be negative")
        if not plan_type.strip():
            raise InvalidError("plan_type", "must not be empty")
        return Plan(
            id=plan_id,
            instance_id=instance_id,
            tenant_id=tenant_id,
            title=require_name(title, "title"),
            description=_text(description, "description"),
            plan_type=plan_type.strip(),
            status=parse_plan_status(status).value,
            priority=priority,
            instructions=_text(instructions, "instructions"),
            timestamp=at,
        )

    def change_status(self, status: str, at: datetime) -> bool:
        target = parse_plan_status(status)
        if target == self.status:
            return False
        if PlanStatus(self.status) in FINISHED:
            raise PlanFinishedError(self.id, self.status)
        self._status_changed(status=target.value, timestamp=at)
        return True

    @event("StatusChanged")
    def _status_changed(self, status: str, timestamp: datetime) -> None:
        self.status = status

    def revise(
        self,
        at: datetime,
        *,
        title: str | None = None,
        description: str | None = None,
        priority: int | None = None,
        instructions: str | None = None,
    ) -> bool:
        changes: dict[str, object] = {}
        if title is not None and require_name(title, "title") != self.title:
            changes["title"] = require_name(title, "title")
        if description is not None and description != self.description:
            changes["description"] = _text(description, "description")
        if instructions is not None and instructions != self.instructions:
            changes["instructions"] = _text(instructions, "instructions")
        if priority is not None:
            if priority < 0:
                raise InvalidError("priority", "must not be negative")
            if priority != self.priority:
                changes["priority"] = priority
        if not changes:
            return False
        self._revised(changes=changes, timestamp=at)
        return True

    @event("Revised")
    def _revised(self, changes: dict[str, object], timestamp: datetime) -> None:
        for key, value in changes.items():
            setattr(self, key, value)


class PlanNotFoundError(NotFoundError):
    def __init__(self, plan_id: UUID | str) -> None:
        super().__init__(f"plan {plan_id} not found")


class PlanFinishedError(ConflictError):
    def __init__(self, plan_id: UUID, status: str) -> None:
        super().__init__(f"plan {plan_id} is already {status}; it cannot change status again")
        self.current_status = status
