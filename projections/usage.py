"""The `usage` read model: per instance and day, requests, tokens, cost and unique end users."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from datetime import UTC, date
from decimal import Decimal
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec

from domain.usage_sample import UsageSample
from projections.base import ReadModel, View

# Costs are summed as integers of this many decimal places, so totals are exact.
COST_PLACES = 9
COST_UNIT = Decimal(10) ** COST_PLACES


def to_units(cost: str) -> int:
    return int((Decimal(cost) * COST_UNIT).to_integral_value())


def from_units(units: int) -> str:
    return str((Decimal(units) / COST_UNIT).normalize()) if units else "0"


# Event classes that @event declares at run time, where mypy cannot see them.
RECORDED: Any = getattr(UsageSample, "Recorded")  # noqa: B009


class AddUsage(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: UUID
    tenant_id: str
    day: date
    requests: int
    tokens: int
    cost_units: int
    end_user: str | None


class UsageDayRow(msgspec.Struct, kw_only=True):
    day: date
    requests: int
    tokens: int
    cost: str
    unique_end_users: int


class UsageReport(msgspec.Struct, kw_only=True):
    daily: list[UsageDayRow]
    requests: int
    tokens: int
    cost: str
    unique_end_users: int


class UsageView(View):
    @abstractmethod
    def report(self, instance_id: UUID, first_day: date, last_day: date) -> UsageReport:
        """Every day from first_day to last_day (zeros included) and the totals over them."""


class UsageProjection(ReadModel[UsageView]):
    name = "usage"

    @singledispatchmethod
    def ops(self, domain_event: Any) -> Sequence[Any]:
        return ()

    @ops.register(RECORDED)
    def _(self, e: Any) -> Sequence[Any]:
        return [
            AddUsage(
                instance_id=e.instance_id,
                tenant_id=e.tenant_id,
                # A sample stamped in another zone still belongs to its UTC day.
                day=e.timestamp.astimezone(UTC).date(),
                requests=e.requests,
                tokens=e.tokens,
                cost_units=to_units(e.cost),
                end_user=e.end_user,
            )
        ]
