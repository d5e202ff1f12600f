"""Small value types shared by the aggregates and the application service."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from domain.errors import InvalidError

MAX_NAME_LENGTH = 200


class Scope(msgspec.Struct, frozen=True):
    """Who is asking: a tenant, and for members the user whose instances they may touch."""

    tenant_id: str
    user_id: str | None = None
    is_admin: bool = True


class CommandResult(msgspec.Struct, frozen=True):
    """What every command returns: enough to read your own write."""

    id: UUID
    version: int
    position: int | None
    changed: bool = True
    status: str | None = None


def require_name(value: str, field: str = "name") -> str:
    name = value.strip()
    if not name:
        raise InvalidError(field, "must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidError(field, f"must be at most {MAX_NAME_LENGTH} characters")
    return name


def require_object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidError(field, "must be a JSON object")
    return dict(value)


def require_string_map(value: Any, field: str) -> dict[str, str]:
    mapping = require_object(value, field)
    for key, item in mapping.items():
        if not isinstance(item, str):
            raise InvalidError(field, f"value of {key!r} must be a string")
    return mapping


def require_aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise InvalidError("at", "timestamp must carry a time zone")
    return at
