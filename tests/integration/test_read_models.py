"""The four read models on both stores: what each query returns, and that after any sequence
of commands every view holds exactly what a rebuild from the store would."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from adapters.feed import head
from adapters.runner import Runner
from adapters.services import Services
from adapters.settings import load_settings
from adapters.views.registry import READ_MODELS, build
from adapters.views.sql import SQLView
from domain.errors import DomainError
from domain.values import Scope
from projections.logs import LogQuery, LogsView
from projections.plans import PlanQuery, PlansView
from projections.usage import UsageView

ADMIN = Scope("acme")


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(
        {"LIFELINE_DATABASE_URL": database_url, "LIFELINE_KEY_FILE": str(tmp_path / "key")}
    )
    services = Services(settings)
    services.start_projections()
    yield services
    services.close()


def settle(services: Services) -> None:
    services.wait_for(head(services.app), READ_MODELS, timeout=20)


def view(services: Services, name: str) -> Any:
    return services.models[name].view


def test_logs_are_in_order_filterable_and_include_provisioning(services: Services) -> None:
    app = services.app
    instance = app.create_instance(ADMIN, name="logged").id
    app.reach_stage(instance, "allocate", 1, "allocating a port")
    app.append_log(ADMIN, instance, log_type="system", message="first", level="info")
    app.reach_stage(instance, "boot", 2, "starting the runtime")
    app.append_log(ADMIN, instance, log_type="agent_action", message="clicked", level="warn")
    app.mark_provisioned(instance, "host-1", "127.0.0.1")
    other = app.create_instance(ADMIN, name="other").id
    app.append_log(ADMIN, other, log_type="system", message="elsewhere")
    settle(services)
    logs: LogsView = view(services, "logs")
    everything = logs.list_logs(LogQuery(instance_id=instance))
    assert [e.message for e in everything.logs] == [
        "allocating a port",
        "first",
        "starting the runtime",
        "clicked",
        "provisioned on host-1 (127.0.0.1)",
    ]
    assert everything.total == 5
    assert [e.seq for e in everything.logs] == sorted(e.seq for e in everything.logs)
    stages = logs.list_logs(LogQuery(instance_id=instance, log_type="provisioning"))
    assert [e.stage for e in stages.logs] == ["allocate", "boot", "ready"]
    assert logs.list_logs(LogQuery(instance_id=instance, stage="boot")).total == 1
    assert [
        e.message for e in logs.list_logs(LogQuery(instance_id=instance, level="warn")).logs
    ] == ["clicked"]
    page = logs.list_logs(LogQuery(instance_id=instance, limit=2, offset=2))
    assert [e.message for e in page.logs] == ["starting the runtime", "clicked"]
    assert page.total == 5
    first = everything.logs[1]
    assert (first.instance_id, first.tenant_id, first.log_type) == (instance, "acme", "system")
    assert everything.logs[0].details == {"seq": 1}
    assert logs.list_logs(LogQuery(instance_id=instance, offset=5)).logs == []
    assert logs.list_logs(LogQuery(instance_id=other)).total == 1


def test_a_failed_provisioning_is_an_error_line_at_its_stage(services: Services) -> None:
    app = services.app
    instance = app.create_instance(ADMIN, name="doomed").id
    app.reach_stage(instance, "pull", 1, "pulling the image")
    app.fail_provisioning(instance, "image_missing", "no such image")
    settle(services)
    logs: LogsView = view(services, "logs")
    errors = logs.list_logs(LogQuery(instance_id=instance, log_type="provisioning", level="error"))
    assert [(e.stage, e.message, e.details) for e in errors.logs] == [
        ("pull", "no such image", {"error_code": "image_missing"})
    ]


def test_plans_filter_by_status_and_type(services: Services) -> None:
    app = services.app
    instance = app.create_instance(ADMIN, name="planned").id
    task = app.create_plan(ADMIN, instance, title="write report", plan_type="task").id
    app.create_plan(ADMIN, instance, title="grow", plan_type="objective", priority=3)
    app.change_plan(ADMIN, instance, task, status="in_progress")
    app.change_plan(ADMIN, instance, task, title="write the report")
    settle(services)
    plans: PlansView = view(services, "plans")
    assert plans.list_plans(PlanQuery(instance_id=instance)).total == 2
    running = plans.list_plans(PlanQuery(instance_id=instance, status="in_progress"))
    assert [(p.title, p.version) for p in running.plans] == [("write the report", 3)]
    objectives = plans.list_plans(PlanQuery(instance_id=instance, plan_type="objective"))
    assert [(p.title, p.priority, p.status) for p in objectives.plans] == [("grow", 3, "pending")]
    one = plans.get_plan(instance, task)
    assert one is not None
    assert (one.id, one.instance_id, one.tenant_id, one.status) == (
        task,
        instance,
        "acme",
        "in_progress",
    )
    assert one.updated_at > one.created_at
    assert plans.get_plan(uuid4(), task) is None, "a plan is found only under its instance"
    assert plans.get_plan(instance, uuid4()) is None


def test_plans_page_in_creation_order(services: Services) -> None:
    app = services.app
    instance = app.create_instance(ADMIN, name="busy").id
    titles = [f"step {n}" for n in range(5)]
    for title in titles:
        app.create_plan(ADMIN, instance, title=title, plan_type="task")
    other = app.create_instance(ADMIN, name="idle").id
    app.create_plan(ADMIN, other, title="not mine", plan_type="task")
    settle(services)
    plans: PlansView = view(services, "plans")
    page = plans.list_plans(PlanQuery(instance_id=instance, limit=2, offset=1))
    assert ([p.title for p in page.plans], page.total) == (titles[1:3], 5)
    done = plans.list_plans(PlanQuery(instance_id=instance, status="completed"))
    assert (done.plans, done.total) == ([], 0)


def test_usage_sums_per_day_with_exact_cost_and_unique_users(services: Services) -> None:
    app = services.app
    instance = app.create_instance(ADMIN, name="used").id
    today = datetime.now(UTC).replace(hour=12)
    yesterday = today - timedelta(days=1)
    for at, user, cost in [
        (today, "ann", "0.1"),
        (today, "bob", "0.2"),
        (today, "ann", "0.000000001"),
        (yesterday, "ann", "1.5"),
        (today - timedelta(days=40), "old", "9"),
    ]:
        app.record_usage(ADMIN, instance, requests=1, tokens=10, cost=cost, end_user=user, at=at)
    settle(services)
    usage: UsageView = view(services, "usage")
    report = usage.report(instance, today.date() - timedelta(days=29), today.date())
    assert len(report.daily) == 30
    last, before = report.daily[-1], report.daily[-2]
    assert (last.day, last.requests, last.tokens, last.unique_end_users) == (today.date(), 3, 30, 2)
    assert last.cost == "0.300000001", "no float rounding"
    assert (before.requests, before.cost, before.unique_end_users) == (1, "1.5", 1)
    assert (report.requests, report.tokens, report.unique_end_users) == (4, 40, 2)
    assert report.cost == "1.800000001"
    assert report.daily[0].day == today.date() - timedelta(days=29)
    assert report.daily[0].requests == 0
    assert usage.report(instance, date(2000, 1, 1), date(2000, 1, 1)).requests == 0


def test_usage_days_are_utc_days_and_per_instance(services: Services) -> None:
    app = services.app
    instance = app.create_instance(ADMIN, name="abroad").id
    other = app.create_instance(ADMIN, name="neighbour").id
    # 01:30 on the 10th in UTC+05:00 is 20:30 on the 9th in UTC.
    east = datetime(2024, 3, 10, 1, 30, tzinfo=timezone(timedelta(hours=5)))
    app.record_usage(ADMIN, instance, tokens=7, cost="0.5", end_user="ann", at=east)
    app.record_usage(ADMIN, other, tokens=100, cost="3", end_user="zed", at=east)
    settle(services)
    usage: UsageView = view(services, "usage")
    report = usage.report(instance, date(2024, 3, 9), date(2024, 3, 10))
    assert [(d.day, d.requests, d.tokens, d.cost) for d in report.daily] == [
        (date(2024, 3, 9), 1, 7, "0.5"),
        (date(2024, 3, 10), 0, 0, "0"),
    ]
    assert (report.tokens, report.cost, report.unique_end_users) == (7, "0.5", 1)


def random_commands(services: Services, rng: random.Random, steps: int) -> None:
    app = services.app
    instances: list[Any] = []
    plans: list[tuple[Any, Any]] = []
    for _ in range(steps):
        choice = rng.randrange(11)
        try:
            if choice == 0 or not instances:
                instances.append(
                    app.create_instance(
                        ADMIN, name=f"i{rng.randrange(1000)}", region=rng.choice(["eu", "us"])
                    ).id
                )
            elif choice == 1:
                app.rename(ADMIN, rng.choice(instances), f"n{rng.randrange(1000)}")
            elif choice == 2:
                app.mark_provisioned(rng.choice(instances), "h", "10.0.0.1")
            elif choice == 3:
                rng.choice([app.pause, app.resume, app.stop, app.start, app.request_deletion])(
                    ADMIN, rng.choice(instances)
                )
            elif choice == 4:
                app.append_log(
                    ADMIN,
                    rng.choice(instances),
                    log_type=rng.choice(["system", "agent_action"]),
                    message="m",
                    level=rng.choice(["info", "warn", "error"]),
                    stage=rng.choice([None, "boot"]),
                    details={"n": rng.randrange(5)},
                )
            elif choice == 5:
                app.reach_stage(rng.choice(instances), "boot", rng.randrange(9), "booting")
            elif choice == 6:
                instance = rng.choice(instances)
                plans.append(
                    (instance, app.create_plan(ADMIN, instance, title="p", plan_type="task").id)
                )
            elif choice == 7 and plans:
                instance, plan = rng.choice(plans)
                app.change_plan(
                    ADMIN, instance, plan, status=rng.choice(["in_progress", "completed"])
                )
            elif choice == 8 and plans:
                instance, plan = rng.choice(plans)
                app.change_plan(
                    ADMIN, instance, plan, title=f"p{rng.randrange(9)}", priority=rng.randrange(3)
                )
            elif choice == 9:
                app.fail_provisioning(rng.choice(instances), "boom", "it broke")
            else:
                app.record_usage(
                    ADMIN,
                    rng.choice(instances),
                    requests=rng.randrange(1, 4),
                    tokens=rng.randrange(100),
                    cost=f"0.{rng.randrange(1000)}",
                    end_user=rng.choice(["a", "b", None]),
                    at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(72)),
                )
        except DomainError:
            pass  # a refused command is part of a random history too


@pytest.mark.parametrize("seed", [1, 2])
def test_every_view_equals_a_rebuild_after_random_commands(services: Services, seed: int) -> None:
    random_commands(services, random.Random(seed), 150)
    settle(services)
    for name in READ_MODELS:
        live: SQLView = view(services, name)
        fresh = build(name, services.datastore, suffix="_check")
        Runner(services.app, fresh).catch_up_once()
        check: SQLView = fresh.view
        assert live.dump() == check.dump(), f"view {name} differs from a rebuild"
        check.drop_tables()
