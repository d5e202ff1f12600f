"""The application service: every command and aggregate query Lifeline offers.

Commands load an aggregate, let it check its invariants, and save its new events; each returns
the id, the new version and the event's position in the store so a caller can read its own write.
Lists are served by the projections' views, not from here.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast, runtime_checkable
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError

from domain.errors import ConflictError, InvalidError, PreconditionFailedError
from domain.instance import (
    IdempotencyConflictError,
    Instance,
    InstanceNotFoundError,
    NotOwnerError,
    fingerprint,
    instance_id_for,
)
from domain.log_entry import LogEntry
from domain.plan import Plan, PlanNotFoundError
from domain.state import HistoryEntry, InstanceState, PlanState, mask_secrets
from domain.usage_sample import UsageSample
from domain.values import CommandResult, Scope, require_aware

MAX_ATTEMPTS = 12
DEFAULT_SNAPSHOT_INTERVAL = 50
TAggregate = TypeVar("TAggregate", bound=Aggregate)


@runtime_checkable
class PositionIndex(Protocol):
    """A recorder that can tell where an aggregate's events sit in the application sequence."""

    def event_positions(self, originator_id: UUID) -> dict[int, int]: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class VersionMismatchError(PreconditionFailedError):
    def __init__(self, instance_id: UUID, expected: int, actual: int) -> None:
        super().__init__(
            f"instance {instance_id} is at version {actual}, not {expected}; "
            "read it again and retry"
        )
        self.current_version = actual


WRITE_LOCK_STRIPES = 64


class ConcurrentUpdateError(ConflictError):
    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(f"{aggregate_id} is being changed by others; try again")


class Lifeline(Application[UUID]):
    name = "Lifeline"
    SNAPSHOT_INTERVAL = "SNAPSHOT_INTERVAL"

    def __init__(
        self, env: Mapping[str, str] | None = None, clock: Callable[[], datetime] = utcnow
    ) -> None:
        # Snapshotting is configured per process from the environment, not per class.
        env = dict(env or {})
        interval = int(env.get(self.SNAPSHOT_INTERVAL, DEFAULT_SNAPSHOT_INTERVAL))
        if interval > 0:
            env.setdefault("IS_SNAPSHOTTING_ENABLED", "y")
        super().__init__(env)
        # The library reads this per instance; the interval is a setting, not a constant.
        self.snapshotting_intervals = {Instance: interval} if interval > 0 else {}  # type: ignore[misc]
        self.clock = clock
        self._write_locks = [threading.Lock() for _ in range(WRITE_LOCK_STRIPES)]

    # -- instance commands --------------------------------------------------------------------

    def create_instance(
        self,
        scope: Scope,
        *,
        name: str,
        instance_type: str = "browser",
        site_id: str | None = None,
        user_id: str | None = None,
        region: str | None = None,
        runtime_type: str | None = None,
        workload_type: str | None = None,
        preset_id: str | None = None,
        tier_id: str | None = None,
        agent_id: str | None = None,
        configuration: dict[str, Any] | None = None,
        environment_variables: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> CommandResult:
        """Creates an instance, or returns the one created earlier with the same key.

        Raises:
            IdempotencyConflictError: the key was used before with different parameters.
            InvalidError: a parameter is malformed.
        """
        owner = user_id if scope.is_admin else scope.user_id
        params: dict[str, Any] = {
            "name": name,
            "instance_type": instance_type,
            "site_id": site_id,
            "user_id": owner,
            "region": region,
            "runtime_type": runtime_type,
            "workload_type": workload_type,
            "preset_id": preset_id,
            "tier_id": tier_id,
            "agent_id": agent_id,
            "configuration": configuration or {},
            "environment_variables": environment_variables or {},
        }
        digest = fingerprint(params)
        if idempotency_key is not None:
            if not idempotency_key.strip() or len(idempotency_key) > 255:  # noqa: PLR2004
                raise InvalidError("idempotency_key", "must be 1 to 255 characters")
            instance_id = instance_id_for(scope.tenant_id, idempotency_key)
            existing = self._find(Instance, instance_id)
            if existing is not None:
                return self._repeat(existing, idempotency_key, digest)
        else:
            instance_id = uuid4()
        instance = Instance.create(
            instance_id=instance_id,
            tenant_id=scope.tenant_id,
            at=self.clock(),
            idempotency_key=idempotency_key,
            params_fingerprint=digest,
            name=name,
            instance_type=instance_type,
            site_id=site_id,
            user_id=owner,
            region=region,
            runtime_type=runtime_type,
            workload_type=workload_type,
            preset_id=preset_id,
            tier_id=tier_id,
            agent_id=agent_id,
            configuration=configuration,
            environment_variables=environment_variables,
        )
        try:
            position = self._save(instance)
        except RecordConflictError:
            # Two creates with one key raced; the loser answers like a repeat.
            existing = self._find(Instance, instance_id)
            if existing is None or idempotency_key is None:
                raise
            return self._repeat(existing, idempotency_key, digest)
        return CommandResult(
            instance.id, instance.version, position, changed=True, status=instance.status
        )

    @staticmethod
    def _repeat(existing: Instance, key: str, digest: str) -> CommandResult:
        if existing.fingerprint != digest:
            raise IdempotencyConflictError(key, existing.id)
        return CommandResult(
            existing.id, existing.version, None, changed=False, status=existing.status
        )

    def pause(self, scope: Scope | None, instance_id: UUID, **kw: Any) -> CommandResult:
        return self._act(scope, instance_id, lambda i: i.pause(self.clock()), **kw)

    def resume(self, scope: Scope | None, instance_id: UUID, **kw: Any) -> CommandResult:
        return self._act(scope, instance_id, lambda i: i.resume(self.clock()), **kw)

    def stop(self, scope: Scope | None, instance_id: UUID, **kw: Any) -> CommandResult:
        return self._act(scope, instance_id, lambda i: i.stop(self.clock()), **kw)

    def start(self, scope: Scope | None, instance_id: UUID, **kw: Any) -> CommandResult:
        return self._act(scope, instance_id, lambda i: i.start(self.clock()), **kw)

    def restart(self, scope: Scope | None, instance_id: UUID, **kw: Any) -> CommandResult:
        return self._act(scope, instance_id, lambda i: i.restart(self.clock()), **kw)

    def retry(self, scope: Scope | None, instance_id: UUID, **kw: Any) -> CommandResult:
        return self._act(scope, instance_id, lambda i: i.retry(self.clock()), **kw)

    def request_deletion(self, scope: Scope | None, instance_id: UUID, **kw: Any) -> CommandResult:
        return self._act(scope, instance_id, lambda i: i.request_deletion(self.clock()), **kw)

    def rename(self, scope: Scope | None, instance_id: UUID, name: str, **kw: Any) -> CommandResult:
        return self._act(scope, instance_id, lambda i: i.rename(name, self.clock()), **kw)

    def update_instance(
        self,
        scope: Scope | None,
        instance_id: UUID,
        changes: dict[str, Any],
        **kw: Any,
    ) -> CommandResult:
        """Changes some attributes (a name change is recorded as its own `Renamed` event)."""
        fields = dict(changes)
        name = fields.pop("name", None)

        def apply(instance: Instance) -> bool:
            at = self.clock()
            renamed = instance.rename(name, at) if name is not None else False
            updated = instance.update(fields, at) if fields else False
            return renamed or updated

        return self._act(scope, instance_id, apply, **kw)

    def patch_platform_config(
        self, scope: Scope | None, instance_id: UUID, patch: dict[str, Any], **kw: Any
    ) -> CommandResult:
        return self._act(
            scope, instance_id, lambda i: i.patch_platform_config(patch, self.clock()), **kw
        )

    def change_model_policy(
        self, scope: Scope | None, instance_id: UUID, policy: dict[str, Any], **kw: Any
    ) -> CommandResult:
        return self._act(
            scope, instance_id, lambda i: i.change_model_policy(policy, self.clock()), **kw
        )

    def change_consent(
        self, scope: Scope | None, instance_id: UUID, consent: bool, **kw: Any
    ) -> CommandResult:
        return self._act(
            scope, instance_id, lambda i: i.change_consent(consent, self.clock()), **kw
        )

    def rotate_agent_key(self, scope: Scope | None, instance_id: UUID, **kw: Any) -> CommandResult:
        def apply(instance: Instance) -> bool:
            instance.rotate_agent_key(self.clock())
            return True

        return self._act(scope, instance_id, apply, **kw)

    # -- commands the provisioner and health monitor issue -------------------------------------

    def reach_stage(self, instance_id: UUID, stage: str, seq: int, message: str) -> CommandResult:
        return self._act(
            None, instance_id, lambda i: i.reach_stage(stage, seq, message, self.clock())
        )

    def mark_provisioned(self, instance_id: UUID, hostname: str, ip_address: str) -> CommandResult:
        return self._act(
            None, instance_id, lambda i: i.mark_provisioned(hostname, ip_address, self.clock())
        )

    def fail_provisioning(self, instance_id: UUID, error_code: str, message: str) -> CommandResult:
        return self._act(
            None, instance_id, lambda i: i.fail_provisioning(error_code, message, self.clock())
        )

    def fail(self, instance_id: UUID, error_code: str, message: str) -> CommandResult:
        return self._act(None, instance_id, lambda i: i.fail(error_code, message, self.clock()))

    def complete_restart(self, instance_id: UUID) -> CommandResult:
        return self._act(None, instance_id, lambda i: i.complete_restart(self.clock()))

    def record_deletion_failure(self, instance_id: UUID, message: str) -> CommandResult:
        def apply(instance: Instance) -> bool:
            instance.record_deletion_failure(message, self.clock())
            return True

        return self._act(None, instance_id, apply)

    def complete_deletion(self, instance_id: UUID) -> CommandResult:
        return self._act(None, instance_id, lambda i: i.complete_deletion(self.clock()))

    def change_health(self, instance_id: UUID, health_status: str, reason: str) -> CommandResult:
        return self._act(
            None, instance_id, lambda i: i.change_health(health_status, reason, self.clock())
        )

    # -- logs, usage and plans ----------------------------------------------------------------

    def append_log(
        self,
        scope: Scope | None,
        instance_id: UUID,
        *,
        log_type: str,
        message: str,
        level: str = "info",
        details: dict[str, Any] | None = None,
        stage: str | None = None,
    ) -> CommandResult:
        instance = self._instance(scope, instance_id)
        entry = LogEntry.record(
            entry_id=uuid4(),
            instance_id=instance.id,
            tenant_id=instance.tenant_id,
            log_type=log_type,
            message=message,
            level=level,
            details=details,
            stage=stage,
            at=self.clock(),
        )
        return CommandResult(entry.id, entry.version, self._save(entry))

    def record_usage(
        self,
        scope: Scope | None,
        instance_id: UUID,
        *,
        requests: int = 1,
        tokens: int = 0,
        cost: str = "0",
        end_user: str | None = None,
        model: str | None = None,
        at: datetime | None = None,
    ) -> CommandResult:
        instance = self._instance(scope, instance_id)
        sample = UsageSample.record(
            sample_id=uuid4(),
            instance_id=instance.id,
            tenant_id=instance.tenant_id,
            requests=requests,
            tokens=tokens,
            cost=cost,
            end_user=end_user,
            model=model,
            at=require_aware(at) if at is not None else self.clock(),
        )
        return CommandResult(sample.id, sample.version, self._save(sample))

    def create_plan(
        self,
        scope: Scope | None,
        instance_id: UUID,
        *,
        title: str,
        plan_type: str,
        description: str | None = None,
        status: str = "pending",
        priority: int = 0,
        instructions: str | None = None,
    ) -> CommandResult:
        instance = self._instance(scope, instance_id)
        plan = Plan.create(
            plan_id=uuid4(),
            instance_id=instance.id,
            tenant_id=instance.tenant_id,
            title=title,
            plan_type=plan_type,
            description=description,
            status=status,
            priority=priority,
            instructions=instructions,
            at=self.clock(),
        )
        return CommandResult(plan.id, plan.version, self._save(plan), status=plan.status)

    def change_plan(
        self,
        scope: Scope | None,
        instance_id: UUID,
        plan_id: UUID,
        *,
        status: str | None = None,
        title: str | None = None,
        description: str | None = None,
        priority: int | None = None,
        instructions: str | None = None,
    ) -> CommandResult:
        self._instance(scope, instance_id)

        def apply(plan: Plan) -> bool:
            at = self.clock()
            revised = plan.revise(
                at,
                title=title,
                description=description,
                priority=priority,
                instructions=instructions,
            )
            moved = plan.change_status(status, at) if status is not None else False
            return revised or moved

        def load() -> Plan:
            plan = self._find(Plan, plan_id)
            if plan is None or plan.instance_id != instance_id:
                raise PlanNotFoundError(plan_id)
            return plan

        return self._retrying(plan_id, load, apply, None)

    # -- queries ------------------------------------------------------------------------------

    def get_instance(
        self,
        scope: Scope | None,
        instance_id: UUID,
        *,
        version: int | None = None,
        at: datetime | None = None,
    ) -> InstanceState:
        """The instance now, at a version, or as it was at a moment (audit replay)."""
        current = self._instance(scope, instance_id)
        if version is None and at is None:
            return InstanceState.of(current)
        if at is not None:
            version = self._version_at(instance_id, require_aware(at))
        if version is None or version < 1 or version > current.version:
            raise InvalidError("version", f"must be between 1 and {current.version}")
        return InstanceState.of(self.repository.get(instance_id, version=version))

    def get_plan(self, scope: Scope | None, instance_id: UUID, plan_id: UUID) -> PlanState:
        self._instance(scope, instance_id)
        plan = self._find(Plan, plan_id)
        if plan is None or plan.instance_id != instance_id:
            raise PlanNotFoundError(plan_id)
        return PlanState.of(plan)

    def history(self, scope: Scope | None, instance_id: UUID) -> list[HistoryEntry]:
        """Every event of the instance in order, with secret values masked."""
        self._instance(scope, instance_id)
        positions = (
            self.recorder.event_positions(instance_id)
            if isinstance(self.recorder, PositionIndex)
            else {}
        )
        return [
            HistoryEntry(
                position=positions.get(e.originator_version),
                version=e.originator_version,
                timestamp=e.timestamp,
                type=type(e).__name__,
                fields=mask_secrets(_event_fields(e)),
            )
            for e in self._instance_events(instance_id)
        ]

    def authorize(self, scope: Scope | None, instance_id: UUID) -> InstanceState:
        """The current state, after checking the caller may act on it."""
        return InstanceState.of(self._instance(scope, instance_id))

    # -- internals ----------------------------------------------------------------------------

    def _version_at(self, instance_id: UUID, at: datetime) -> int:
        version = 0
        for e in self._instance_events(instance_id):
            if e.timestamp > at:
                break
            version = e.originator_version
        if version == 0:
            raise InvalidError("at", "the instance did not exist yet at that moment")
        return version

    def _instance_events(self, instance_id: UUID) -> list[Aggregate.Event]:
        return [cast("Aggregate.Event", e) for e in self.events.get(instance_id)]

    def _find(self, cls: type[TAggregate], aggregate_id: UUID) -> TAggregate | None:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def _instance(self, scope: Scope | None, instance_id: UUID) -> Instance:
        instance = self._find(Instance, instance_id)
        if instance is None or (scope is not None and instance.tenant_id != scope.tenant_id):
            raise InstanceNotFoundError(instance_id)
        if scope is not None and not scope.is_admin and instance.user_id != scope.user_id:
            raise NotOwnerError(instance_id)
        return instance

    def _act(
        self,
        scope: Scope | None,
        instance_id: UUID,
        change: Callable[[Instance], bool],
        *,
        expected_version: int | None = None,
    ) -> CommandResult:
        return self._retrying(
            instance_id, lambda: self._instance(scope, instance_id), change, expected_version
        )

    def _retrying(
        self,
        aggregate_id: UUID,
        load: Callable[[], TAggregate],
        change: Callable[[TAggregate], bool],
        expected_version: int | None,
    ) -> CommandResult:
        # Writers in this process take turns per aggregate (cheaper than colliding); writers
        # in other processes are handled by optimistic concurrency: a conflict makes us reload
        # and re-decide, so no update is lost; only repeated conflicts reach the caller.
        with self._write_locks[hash(aggregate_id) % len(self._write_locks)]:
            return self._attempts(aggregate_id, load, change, expected_version)

    def _attempts(
        self,
        aggregate_id: UUID,
        load: Callable[[], TAggregate],
        change: Callable[[TAggregate], bool],
        expected_version: int | None,
    ) -> CommandResult:
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                # Jittered backoff, so writers racing on one aggregate stop colliding.
                time.sleep(random.uniform(0, 0.001 * 2 ** min(attempt, 6)))  # noqa: S311
            aggregate = load()
            if expected_version is not None and aggregate.version != expected_version:
                raise VersionMismatchError(aggregate_id, expected_version, aggregate.version)
            status = getattr(aggregate, "status", None)
            if not change(aggregate):
                return CommandResult(
                    aggregate.id, aggregate.version, None, changed=False, status=status
                )
            try:
                position = self._save(aggregate)
            except RecordConflictError:
                if expected_version is not None:
                    current = load().version
                    raise VersionMismatchError(aggregate_id, expected_version, current) from None
                continue
            status = getattr(aggregate, "status", None)
            return CommandResult(aggregate.id, aggregate.version, position, status=status)
        raise ConcurrentUpdateError(aggregate_id)

    def _save(self, *aggregates: Aggregate) -> int | None:
        recordings = self.save(*aggregates)
        return recordings[-1].notification.id if recordings else None

    def save_many(self, aggregates: Iterable[Aggregate]) -> int | None:
        """Saves several aggregates' events in one transaction (used by bulk operations)."""
        return self._save(*aggregates)


def _event_fields(domain_event: object) -> dict[str, Any]:
    skip = {"originator_id", "originator_version", "timestamp", "originator_topic"}
    return {k: v for k, v in vars(domain_event).items() if k not in skip}
