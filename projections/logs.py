"""The `logs` read model: an instance's log lines in order, its provisioning stages among them."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec

from domain.instance import Instance
from domain.log_entry import LogEntry
from projections.base import ReadModel, View

PROVISIONING = "provisioning"
# Event classes that @event declares at run time, where mypy cannot see them.
RECORDED: Any = getattr(LogEntry, "Recorded")  # noqa: B009
STAGE_REACHED: Any = getattr(Instance, "ProvisioningStageReached")  # noqa: B009
PROVISIONED: Any = getattr(Instance, "Provisioned")  # noqa: B009
PROVISIONING_FAILED: Any = getattr(Instance, "ProvisioningFailed")  # noqa: B009


class LogRow(msgspec.Struct, kw_only=True):
    id: str
    instance_id: UUID
    tenant_id: str | None
    # The store position of the event that wrote it: increasing per instance, and the same
    # after a rebuild, which a counter kept by the view would not guarantee.
    seq: int
    log_type: str
    level: str
    message: str
    details: dict[str, Any]
    stage: str | None
    created_at: datetime


class AddLog(msgspec.Struct, frozen=True):
    row: LogRow


class LogQuery(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: UUID
    log_type: str | None = None
    level: str | None = None
    stage: str | None = None
    limit: int = 50
    offset: int = 0


class LogPage(msgspec.Struct, frozen=True):
    logs: list[LogRow]
    total: int


class LogsView(View):
    @abstractmethod
    def list_logs(self, query: LogQuery) -> LogPage: ...


def _stage_log(e: Any, level: str, message: str, stage: str | None, **details: Any) -> AddLog:
    return AddLog(
        LogRow(
            id=f"{e.originator_id}:{e.originator_version}",
            instance_id=e.originator_id,
            tenant_id=None,
            seq=0,  # the view fills in the event's position
            log_type=PROVISIONING,
            level=level,
            message=message,
            details=details,
            stage=stage,
            created_at=e.timestamp,
        )
    )


class LogsProjection(ReadModel[LogsView]):
    name = "logs"

    @singledispatchmethod
    def ops(self, domain_event: Any) -> Sequence[Any]:
        return ()

    @ops.register(RECORDED)
    def _(self, e: Any) -> Sequence[Any]:
        row = LogRow(
            id=str(e.originator_id),
            instance_id=e.instance_id,
            tenant_id=e.tenant_id,
            seq=0,
            log_type=e.log_type,
            level=e.level,
            message=e.message,
            details=dict(e.details),
            stage=e.stage,
            created_at=e.timestamp,
        )
        return [AddLog(row)]

    @ops.register(STAGE_REACHED)
    def _(self, e: Any) -> Sequence[Any]:
        return [_stage_log(e, "info", e.message, e.stage, seq=e.seq)]

    @ops.register(PROVISIONED)
    def _(self, e: Any) -> Sequence[Any]:
        message = f"provisioned on {e.hostname} ({e.ip_address})"
        return [_stage_log(e, "info", message, "ready", hostname=e.hostname)]

    @ops.register(PROVISIONING_FAILED)
    def _(self, e: Any) -> Sequence[Any]:
        return [_stage_log(e, "error", e.message, e.stage, error_code=e.error_code)]
