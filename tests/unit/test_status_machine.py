"""The Instance status machine checked against a small reference model of DESIGN.md's table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from domain.instance import Instance, TransitionNotAllowedError

# The table from DESIGN.md, written out independently of the aggregate's own encoding.
ALLOWED = {
    ("creating", "provisioned"): "running",
    ("creating", "fail"): "error",
    ("running", "pause"): "paused",
    ("running", "stop"): "stopped",
    ("running", "restart"): "restarting",
    ("running", "fail"): "error",
    ("restarting", "restarted"): "running",
    ("restarting", "fail"): "error",
    ("paused", "resume"): "running",
    ("paused", "restart"): "restarting",
    ("paused", "stop"): "stopped",
    ("stopped", "start"): "running",
    ("stopped", "restart"): "restarting",
    ("error", "retry"): "creating",
    ("deleting", "deleted"): "deleted",
}
# An action whose result is already the status changes nothing and is not an error.
IN_EFFECT = {
    "pause": "paused",
    "resume": "running",
    "stop": "stopped",
    "start": "running",
    "restart": "restarting",
    "retry": "creating",
    "delete": "deleting",
}
ACTIONS = (*IN_EFFECT, "provisioned", "fail", "restarted", "deleted")


def expected(status: str, action: str) -> tuple[str, bool] | None:
    """(new status, changed), or None when the action must be refused."""
    if action == "delete":
        if status in ("deleting", "deleted"):
            return status, False
        return "deleting", True
    if IN_EFFECT.get(action) == status:
        return status, False
    if (status, action) in ALLOWED:
        return ALLOWED[status, action], True
    if action == "restarted" and status != "restarting":
        return status, False  # a late completion (the user acted meanwhile) is harmless
    if action == "deleted" and status == "deleted":
        return status, False
    return None


class StatusMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = datetime(2026, 1, 1, tzinfo=UTC)
        self.instance = Instance.create(
            instance_id=uuid4(), tenant_id="t", name="model", at=self.clock
        )
        self.status = "creating"

    def now(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def perform(self, action: str) -> bool:
        i, at = self.instance, self.now()
        calls = {
            "pause": lambda: i.pause(at),
            "resume": lambda: i.resume(at),
            "stop": lambda: i.stop(at),
            "start": lambda: i.start(at),
            "restart": lambda: i.restart(at),
            "retry": lambda: i.retry(at),
            "delete": lambda: i.request_deletion(at),
            "provisioned": lambda: i.mark_provisioned(f"h{at.timestamp()}", "10.0.0.1", at),
            "fail": lambda: i.fail("boom", "it broke", at),
            "restarted": lambda: i.complete_restart(at),
            "deleted": lambda: i.complete_deletion(at),
        }
        return calls[action]()

    @rule(action=st.sampled_from(ACTIONS))
    def act(self, action: str) -> None:
        want = expected(self.status, action)
        version = self.instance.version
        try:
            changed = self.perform(action)
        except TransitionNotAllowedError as e:
            assert want is None, f"{action} from {self.status} was refused but is allowed"
            assert e.current_status == self.status
            assert self.instance.version == version, "a refused action must record nothing"
            return
        assert want is not None, f"{action} from {self.status} was accepted but is forbidden"
        new_status, should_change = want
        assert changed == should_change, f"{action} from {self.status}: changed={changed}"
        assert self.instance.version == version + int(should_change)
        self.status = new_status

    @invariant()
    def status_matches_model(self) -> None:
        assert self.instance.status == self.status


TestStatusMachine = StatusMachine.TestCase
TestStatusMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
