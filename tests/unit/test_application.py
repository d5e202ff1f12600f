"""The application service's story, on the library's in-memory store (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.application import Lifeline, VersionMismatchError
from domain.errors import InvalidError
from domain.instance import (
    IdempotencyConflictError,
    InstanceNotFoundError,
    NotOwnerError,
    TransitionNotAllowedError,
    instance_id_for,
)
from domain.plan import PlanFinishedError
from domain.state import MASK
from domain.values import Scope

ADMIN = Scope("acme")
ALICE = Scope("acme", user_id="alice", is_admin=False)
BOB = Scope("acme", user_id="bob", is_admin=False)
OTHER = Scope("globex")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(clock: Clock) -> Lifeline:
    return Lifeline({"PERSISTENCE_MODULE": "eventsourcing.popo", "SNAPSHOT_INTERVAL": "5"}, clock)


def test_an_instance_lives_through_its_lifecycle(app: Lifeline) -> None:
    created = app.create_instance(ADMIN, name="Research browser", region="eu-west")
    assert created.status == "creating"
    app.mark_provisioned(created.id, "inst-1.local", "10.0.0.7")
    assert app.pause(ADMIN, created.id).status == "paused"
    assert app.resume(ADMIN, created.id).status == "running"
    assert app.restart(ADMIN, created.id).status == "restarting"
    assert app.complete_restart(created.id).status == "running"
    assert app.stop(ADMIN, created.id).status == "stopped"
    assert app.request_deletion(ADMIN, created.id).status == "deleting"
    done = app.complete_deletion(created.id)
    state = app.get_instance(ADMIN, created.id)
    assert (state.status, state.version, state.hostname) == ("deleted", done.version, None)
    assert state.restart_count == 1


def test_repeating_an_action_in_effect_changes_nothing(app: Lifeline) -> None:
    created = app.create_instance(ADMIN, name="a")
    app.mark_provisioned(created.id, "h", "10.0.0.1")
    first = app.pause(ADMIN, created.id)
    again = app.pause(ADMIN, created.id)
    assert (first.changed, again.changed) == (True, False)
    assert again.version == first.version
    assert again.position is None


def test_a_forbidden_action_names_the_current_status(app: Lifeline) -> None:
    created = app.create_instance(ADMIN, name="a")
    with pytest.raises(TransitionNotAllowedError, match="cannot pause .* while it is creating"):
        app.pause(ADMIN, created.id)
    assert app.get_instance(ADMIN, created.id).version == 1


def test_create_is_idempotent_per_tenant_and_key(app: Lifeline) -> None:
    first = app.create_instance(ADMIN, name="a", idempotency_key="k-1", configuration={"x": 1})
    again = app.create_instance(ADMIN, name="a", idempotency_key="k-1", configuration={"x": 1})
    assert first.id == again.id == instance_id_for("acme", "k-1")
    assert again.changed is False
    elsewhere = app.create_instance(OTHER, name="a", idempotency_key="k-1")
    assert elsewhere.id != first.id
    with pytest.raises(IdempotencyConflictError):
        app.create_instance(ADMIN, name="b", idempotency_key="k-1")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a", "instance_type": "mainframe"}, "instance_type"),
        ({"name": "a", "configuration": ["not", "an", "object"]}, "configuration"),
        ({"name": "a", "environment_variables": {"N": 1}}, "environment_variables"),
        ({"name": "a", "idempotency_key": " "}, "idempotency_key"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    app: Lifeline, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidError) as raised:
        app.create_instance(ADMIN, **kwargs)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert app.recorder.max_notification_id() in (None, 0)


def test_tenants_and_owners_are_kept_apart(app: Lifeline) -> None:
    mine = app.create_instance(ALICE, name="alice's", user_id="mallory")
    assert app.get_instance(ADMIN, mine.id).user_id == "alice", "members own what they create"
    with pytest.raises(InstanceNotFoundError):
        app.get_instance(OTHER, mine.id)
    with pytest.raises(NotOwnerError):
        app.rename(BOB, mine.id, "taken over")
    assert app.rename(ALICE, mine.id, "still mine").changed


def test_if_match_guards_against_lost_updates(app: Lifeline) -> None:
    created = app.create_instance(ADMIN, name="a")
    app.rename(ADMIN, created.id, "b", expected_version=1)
    with pytest.raises(VersionMismatchError) as raised:
        app.rename(ADMIN, created.id, "c", expected_version=1)
    assert raised.value.current_version == 2


def test_history_masks_secrets_and_replay_shows_the_past(app: Lifeline, clock: Clock) -> None:
    created = app.create_instance(
        ADMIN, name="first", environment_variables={"API_TOKEN": "s3cr3t"}
    )
    app.update_instance(ADMIN, created.id, {"environment_variables": {"API_TOKEN": "n3w"}})
    before_rename = clock.now
    for n in range(12):  # past two snapshots
        app.rename(ADMIN, created.id, f"name {n}")
    history = app.history(ADMIN, created.id)
    assert [h.type for h in history[:3]] == ["Created", "Updated", "Renamed"]
    assert "s3cr3t" not in repr(history)
    assert "n3w" not in repr(history)
    assert history[0].fields["environment_variables"] == {"API_TOKEN": MASK}
    assert app.get_instance(ADMIN, created.id).environment_variables == {"API_TOKEN": "n3w"}
    assert app.get_instance(ADMIN, created.id, version=1).name == "first"
    assert app.get_instance(ADMIN, created.id, version=7).name == "name 4"
    assert app.get_instance(ADMIN, created.id, at=before_rename).name == "first"
    with pytest.raises(InvalidError):
        app.get_instance(ADMIN, created.id, version=99)


def test_platform_config_is_merged_not_replaced(app: Lifeline) -> None:
    created = app.create_instance(ADMIN, name="a")
    app.patch_platform_config(ADMIN, created.id, {"skills": ["web"], "recipe_id": "r1"})
    app.patch_platform_config(ADMIN, created.id, {"channels": {"slack": {"on": True}}})
    config = app.get_instance(ADMIN, created.id).platform_config
    assert config == {"skills": ["web"], "recipe_id": "r1", "channels": {"slack": {"on": True}}}
    with pytest.raises(InvalidError):
        app.patch_platform_config(ADMIN, created.id, {"skills": "web"})


def test_plans_move_through_their_statuses(app: Lifeline) -> None:
    instance = app.create_instance(ADMIN, name="a")
    plan = app.create_plan(ADMIN, instance.id, title="Find leads", plan_type="objective")
    app.change_plan(ADMIN, instance.id, plan.id, status="in_progress")
    app.change_plan(ADMIN, instance.id, plan.id, status="completed")
    assert app.get_plan(ADMIN, instance.id, plan.id).status == "completed"
    with pytest.raises(PlanFinishedError):
        app.change_plan(ADMIN, instance.id, plan.id, status="in_progress")
    with pytest.raises(InvalidError):
        app.create_plan(ADMIN, instance.id, title="x", plan_type="task", priority=-1)
    with pytest.raises(InvalidError):
        app.change_plan(ADMIN, instance.id, plan.id, status="someday")


def test_logs_and_usage_are_checked_and_scoped(app: Lifeline) -> None:
    instance = app.create_instance(ALICE, name="a")
    assert app.append_log(ALICE, instance.id, log_type="system", message="hi").position
    with pytest.raises(InvalidError):
        app.append_log(ALICE, instance.id, log_type="system", message="hi", level="loud")
    with pytest.raises(InstanceNotFoundError):
        app.append_log(OTHER, instance.id, log_type="system", message="hi")
    with pytest.raises(InvalidError):
        app.record_usage(None, instance.id, tokens=-1)
    with pytest.raises(InvalidError):
        app.record_usage(None, instance.id, cost="NaN")
    with pytest.raises(InstanceNotFoundError):
        app.record_usage(None, uuid4())
