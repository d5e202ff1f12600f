"""A log line about an instance: an append-only fact, one event per stream.

Each entry is its own stream so appending never loads or contends with the instance stream.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidError
from domain.values import require_object

MAX_MESSAGE = 10_000


class Level(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


def parse_level(value: str) -> Level:
    aliases = {"warning": "warn", "critical": "error", "fatal": "error"}
    try:
        return Level(aliases.get(value.lower(), value.lower()))
    except ValueError:
        allowed = ", ".join(level.value for level in Level)
        raise InvalidError("level", f"must be one of {allowed}") from None


class LogEntry(Aggregate):
    @event("Recorded")
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - the library takes the aggregate id from here
        instance_id: UUID,
        tenant_id: str,
        log_type: str,
        level: str,
        message: str,
        details: dict[str, Any],
        stage: str | None,
        timestamp: datetime,
    ) -> None:
        self.instance_id = instance_id
        self.tenant_id = tenant_id
        self.log_type = log_type
        self.level = level
        self.message = message
        self.details = details
        self.stage = stage

    @staticmethod
    def record(
        *,
        entry_id: UUID,
        instance_id: UUID,
        tenant_id: str,
        log_type: str,
        message: str,
        at: datetime,
        level: str = Level.INFO.value,
        details: dict[str, Any] | None = None,
        stage: str | None = None,
    ) -> LogEntry:
        if not log_type.strip():
            raise InvalidError("log_type", "must not be empty")
        if not message:
            raise InvalidError("message", "must not be empty")
        if len(message) > MAX_MESSAGE:
            raise InvalidError("message", f"must be at most {MAX_MESSAGE} characters")
        return LogEntry(
            id=entry_id,
            instance_id=instance_id,
            tenant_id=tenant_id,
            log_type=log_type.strip(),
            level=parse_level(level).value,
            message=message,
            details=require_object(details or {}, "details"),
            stage=stage,
            timestamp=at,
        )
