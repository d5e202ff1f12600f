"""What happens on an instance: its logs, its agent's plans, and its usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED

from adapters.services import Services
from api.deps import settle
from api.schemas import NewLog, NewPlan, PlanChange, UsageAnswer, UsageDay, UsageTotals, Written
from domain.state import PlanState
from domain.values import Scope
from projections.logs import LogPage, LogQuery, LogsView
from projections.plans import PlanPage, PlanQuery, PlansView
from projections.usage import UsageView

Limit = Annotated[int, Parameter(ge=1, le=500)]
Offset = Annotated[int, Parameter(ge=0, le=10_000_000)]
Filter = Annotated[str | None, Parameter(max_length=200)]


def _view(services: Services, name: str, kind: type[Any]) -> Any:
    view = services.models[name].view
    if not isinstance(view, kind):
        raise TypeError(f"view {name} is not a {kind.__name__}")
    return view


class ActivityController(Controller):
    path = "/v1/instances/{instance_id:uuid}"
    tags = ["activity"]  # noqa: RUF012 - Litestar's declared type

    @get("/logs", operation_id="listInstanceLogs", sync_to_thread=True)
    def list_logs(
        self,
        services: Services,
        caller: Scope,
        instance_id: UUID,
        log_type: Filter = None,
        level: Filter = None,
        stage: Filter = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> LogPage:
        """The instance's logs in order, provisioning stages included."""
        services.app.authorize(caller, instance_id)
        query = LogQuery(
            instance_id=instance_id,
            log_type=log_type,
            level=level,
            stage=stage,
            limit=limit,
            offset=offset,
        )
        page: LogPage = _view(services, "logs", LogsView).list_logs(query)
        return page

    @post("/logs", operation_id="appendInstanceLog", status_code=HTTP_201_CREATED,
          sync_to_thread=True)  # fmt: skip
    def append_log(
        self, services: Services, caller: Scope, instance_id: UUID, data: NewLog
    ) -> Written:
        """Append a log line."""
        result = services.app.append_log(
            caller,
            instance_id,
            log_type=data.log_type,
            message=data.message,
            level=data.level,
            details=data.details,
            stage=data.stage,
        )
        settle(services, result, "logs")
        return Written(id=result.id, instance_id=instance_id, position=result.position)

    @get("/plans", operation_id="listInstancePlans", sync_to_thread=True)
    def list_plans(
        self,
        services: Services,
        caller: Scope,
        instance_id: UUID,
        status: Filter = None,
        plan_type: Filter = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PlanPage:
        """The plans for the instance's agent."""
        services.app.authorize(caller, instance_id)
        query = PlanQuery(
            instance_id=instance_id, status=status, plan_type=plan_type, limit=limit, offset=offset
        )
        page: PlanPage = _view(services, "plans", PlansView).list_plans(query)
        return page

    @post("/plans", operation_id="createInstancePlan", status_code=HTTP_201_CREATED,
          sync_to_thread=True)  # fmt: skip
    def create_plan(
        self, services: Services, caller: Scope, instance_id: UUID, data: NewPlan
    ) -> PlanState:
        """Plan work for the instance's agent."""
        result = services.app.create_plan(caller, instance_id, **msgspec.structs.asdict(data))
        settle(services, result, "plans")
        return services.app.get_plan(caller, instance_id, result.id)

    @patch("/plans/{plan_id:uuid}", operation_id="updateInstancePlan", sync_to_thread=True)
    def change_plan(
        self,
        services: Services,
        caller: Scope,
        instance_id: UUID,
        plan_id: UUID,
        data: PlanChange,
    ) -> PlanState:
        """Move a plan to another status, or revise it."""
        result = services.app.change_plan(
            caller, instance_id, plan_id, **msgspec.structs.asdict(data)
        )
        settle(services, result, "plans")
        return services.app.get_plan(caller, instance_id, plan_id)

    @get("/usage", operation_id="getInstanceUsage", sync_to_thread=True)
    def usage(
        self,
        services: Services,
        caller: Scope,
        instance_id: UUID,
        days: Annotated[int, Parameter(ge=1, le=366)] = 30,
    ) -> UsageAnswer:
        """Daily requests, tokens, cost and unique end users, with totals, for the last days."""
        services.app.authorize(caller, instance_id)
        today = datetime.now(UTC).date()
        view: UsageView = _view(services, "usage", UsageView)
        report = view.report(instance_id, today - timedelta(days=days - 1), today)
        return UsageAnswer(
            instance_id=instance_id,
            days=days,
            daily=[
                UsageDay(
                    day=d.day,
                    requests=d.requests,
                    tokens=d.tokens,
                    cost=d.cost,
                    unique_end_users=d.unique_end_users,
                )
                for d in report.daily
            ],
            totals=UsageTotals(
                requests=report.requests,
                tokens=report.tokens,
                cost=report.cost,
                unique_end_users=report.unique_end_users,
            ),
        )
