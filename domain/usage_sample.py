"""One measured use of an instance's runtime: an append-only fact, one event per stream."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidError


def parse_cost(value: str | Decimal | float) -> Decimal:
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        raise InvalidError("cost", "must be a decimal number") from None
    if not cost.is_finite() or cost < 0:
        raise InvalidError("cost", "must be a finite, non-negative number")
    return cost


class UsageSample(Aggregate):
    @event("Recorded")
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - the library takes the aggregate id from here
        instance_id: UUID,
        tenant_id: str,
        requests: int,
        tokens: int,
        cost: str,
        end_user: str | None,
        model: str | None,
        timestamp: datetime,
    ) -> None:
        self.instance_id = instance_id
        self.tenant_id = tenant_id
        self.requests = requests
        self.tokens = tokens
        # Kept as a decimal string: money is never a float.
        self.cost = cost
        self.end_user = end_user
        self.model = model

    @staticmethod
    def record(
        *,
        sample_id: UUID,
        instance_id: UUID,
        tenant_id: str,
        at: datetime,
        requests: int = 1,
        tokens: int = 0,
        cost: str | Decimal | float = "0",
        end_user: str | None = None,
        model: str | None = None,
    ) -> UsageSample:
        if requests < 0:
            raise InvalidError("requests", "must not be negative")
        if tokens < 0:
            raise InvalidError("tokens", "must not be negative")
        return UsageSample(
            id=sample_id,
            instance_id=instance_id,
            tenant_id=tenant_id,
            requests=requests,
            tokens=tokens,
            cost=str(parse_cost(cost)),
            end_user=end_user,
            model=model,
            timestamp=at,
        )
