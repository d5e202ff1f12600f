"""Logs, plans and usage over HTTP on both stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from tests.e2e.conftest import LiveApi
from tests.e2e.helpers import create


def test_logs_can_be_appended_and_filtered(admin: httpx.Client) -> None:
    instance_id = create(admin)["instance_id"]
    base = f"/v1/instances/{instance_id}/logs"
    written = admin.post(
        base, json={"log_type": "agent_action", "message": "opened", "level": "warn"}
    )
    assert written.status_code == 201, written.text
    admin.post(base, json={"log_type": "system", "message": "tick", "details": {"n": 1}})
    listed = admin.get(base).json()
    messages = [e["message"] for e in listed["logs"] if e["log_type"] != "provisioning"]
    assert messages == ["opened", "tick"], "a list right after an append shows it"
    assert [e["message"] for e in admin.get(base, params={"level": "warn"}).json()["logs"]] == [
        "opened"
    ]
    assert admin.get(base, params={"log_type": "system"}).json()["logs"][0]["details"] == {"n": 1}
    bad = admin.post(base, json={"log_type": "system", "message": "x", "level": "loud"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "level"]
    assert admin.post(base, json={"message": "no type"}).status_code == 422


def test_plans_are_created_listed_and_moved(admin: httpx.Client) -> None:
    instance_id = create(admin)["instance_id"]
    base = f"/v1/instances/{instance_id}/plans"
    plan = admin.post(base, json={"title": "research", "plan_type": "task", "priority": 2})
    assert plan.status_code == 201, plan.text
    plan_id = plan.json()["id"]
    assert plan.json()["status"] == "pending"
    admin.post(base, json={"title": "grow", "plan_type": "objective"})
    assert admin.get(base).json()["total"] == 2
    moved = admin.patch(f"{base}/{plan_id}", json={"status": "in_progress"})
    assert moved.status_code == 200
    assert moved.json()["status"] == "in_progress"
    in_progress = admin.get(base, params={"status": "in_progress"}).json()
    assert [p["id"] for p in in_progress["plans"]] == [plan_id]
    assert admin.get(base, params={"plan_type": "objective"}).json()["total"] == 1
    assert (
        admin.post(base, json={"title": "x", "plan_type": "t", "priority": -1}).status_code == 422
    )
    assert (
        admin.post(base, json={"title": "x", "plan_type": "t", "status": "napping"}).status_code
        == 422
    )
    missing = admin.patch(f"{base}/{uuid.uuid4()}", json={"status": "completed"})
    assert missing.status_code == 404


def test_usage_shows_daily_series_and_totals(api: LiveApi, admin: httpx.Client) -> None:
    instance_id = create(admin)["instance_id"]
    for user in ("ann", "bob", "ann"):
        api.services.app.record_usage(
            None, uuid.UUID(instance_id), tokens=100, cost="0.25", end_user=user
        )
    api.services.wait_for(api.services.app.recorder.max_notification_id(), ["usage"])
    usage = admin.get(f"/v1/instances/{instance_id}/usage", params={"days": 7}).json()
    assert len(usage["daily"]) == 7
    assert usage["daily"][-1]["day"] == datetime.now(UTC).date().isoformat()
    assert usage["totals"] == {"requests": 3, "tokens": 300, "cost": "0.75", "unique_end_users": 2}
    assert admin.get(f"/v1/instances/{instance_id}/usage", params={"days": 0}).status_code == 422
