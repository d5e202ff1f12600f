"""The Instance aggregate: the lifecycle of one hosted instance, its events and its errors."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from domain.values import require_name, require_object, require_string_map

# Every instance id derived from an idempotency key lives under this namespace, so the same
# tenant and key give the same id in every process without a lookup table.
IDEMPOTENCY_NAMESPACE = uuid5(NAMESPACE_URL, "https://lifeline.dev/instances")


class Status(StrEnum):
    CREATING = "creating"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    RESTARTING = "restarting"
    ERROR = "error"
    DELETING = "deleting"
    DELETED = "deleted"


class InstanceType(StrEnum):
    BROWSER = "browser"
    UBUNTU = "ubuntu"
    WINDOWS = "windows"
    AGENT = "agent"


class Health(StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNREACHABLE = "unreachable"


# action -> (statuses it may start from, status it leads to). An action whose target is the
# current status is "already in effect" and changes nothing.
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "pause": (frozenset({Status.RUNNING}), Status.PAUSED),
    "resume": (frozenset({Status.PAUSED}), Status.RUNNING),
    "stop": (frozenset({Status.RUNNING, Status.PAUSED}), Status.STOPPED),
    "start": (frozenset({Status.STOPPED}), Status.RUNNING),
    "restart": (frozenset({Status.RUNNING, Status.PAUSED, Status.STOPPED}), Status.RESTARTING),
    "retry": (frozenset({Status.ERROR}), Status.CREATING),
    "delete": (frozenset(set(Status) - {Status.DELETING, Status.DELETED}), Status.DELETING),
}
TRANSITIONAL = frozenset({Status.CREATING, Status.RESTARTING, Status.DELETING})
UPDATABLE_FIELDS = (
    "site_id",
    "region",
    "agent_id",
    "runtime_type",
    "workload_type",
    "preset_id",
    "tier_id",
    "configuration",
    "environment_variables",
)
PLATFORM_CONFIG_FIELDS: dict[str, type] = {
    "advanced": dict,
    "channels": dict,
    "integrations": list,
    "recipe_id": str,
    "skills": list,
    "workflow_slugs": list,
}


def instance_id_for(tenant_id: str, idempotency_key: str) -> UUID:
    """The deterministic id of the instance created under this tenant and idempotency key."""
    return uuid5(IDEMPOTENCY_NAMESPACE, f"{tenant_id}\x00{idempotency_key}")


def fingerprint(params: dict[str, Any]) -> str:
    """A stable digest of create parameters, to tell a true repeat from a reused key."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_instance_type(value: str) -> InstanceType:
    try:
        return InstanceType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in InstanceType)
        raise InvalidError("instance_type", f"must be one of {allowed}") from None


def parse_status(value: str) -> Status:
    try:
        return Status(value)
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise InvalidError("status", f"must be one of {allowed}") from None


def validate_update(changes: dict[str, Any]) -> dict[str, Any]:
    """Checks a set of field changes; returns them normalised."""
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in UPDATABLE_FIELDS:
            raise InvalidError(key, "is not an updatable field")
        if key == "configuration":
            clean[key] = require_object(value, key)
        elif key == "environment_variables":
            clean[key] = require_string_map(value, key)
        elif value is not None and not isinstance(value, str):
            raise InvalidError(key, "must be a string or null")
        else:
            clean[key] = value
    return clean


def validate_platform_config(patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        expected = PLATFORM_CONFIG_FIELDS.get(key)
        if expected is None:
            allowed = ", ".join(PLATFORM_CONFIG_FIELDS)
            raise InvalidError(key, f"is not a platform config field (one of {allowed})")
        if value is not None and not isinstance(value, expected):
            kinds: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
            kind = kinds[expected]
            raise InvalidError(key, f"must be {kind} or null")
    return dict(patch)


class Instance(Aggregate):
    """One hosted instance. Public methods check the status machine; `_` methods change state."""

    @event("Created")
    def __init__(
        self,
        *,
        id: UUID,  # noqa: A002 - the library takes the aggregate id from here
        tenant_id: str,
        site_id: str | None,
        user_id: str | None,
        name: str,
        instance_type: str,
        region: str | None,
        runtime_type: str | None,
        workload_type: str | None,
        preset_id: str | None,
        tier_id: str | None,
        agent_id: str | None,
        configuration: dict[str, Any],
        environment_variables: dict[str, str],
        idempotency_key: str | None,
        fingerprint: str,
        timestamp: datetime,
    ) -> None:
        self.tenant_id = tenant_id
        self.site_id = site_id
        self.user_id = user_id
        self.name = name
        self.instance_type = instance_type
        self.region = region
        self.runtime_type = runtime_type
        self.workload_type = workload_type
        self.preset_id = preset_id
        self.tier_id = tier_id
        self.agent_id = agent_id
        self.configuration = configuration
        self.environment_variables = environment_variables
        self.idempotency_key = idempotency_key
        self.fingerprint = fingerprint
        self.status = Status.CREATING.value
        self.provisioning_stage: str | None = None
        self.bootstrap_seq = 0
        self.hostname: str | None = None
        self.ip_address: str | None = None
        self.error_code: str | None = None
        self.error_message: str | None = None
        self.failed_stage: str | None = None
        self.health_status = Health.UNKNOWN.value
        self.consent_debug_access = False
        self.model_policy: dict[str, Any] = {}
        self.platform_config: dict[str, Any] = {}
        self.agent_key_rotated_at: datetime | None = None
        self.restart_count = 0
        self.status_changed_at = timestamp

    @staticmethod
    def create(
        *,
        instance_id: UUID,
        tenant_id: str,
        name: str,
        at: datetime,
        instance_type: str = InstanceType.BROWSER.value,
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
        params_fingerprint: str = "",
    ) -> Instance:
        """Validates the parameters and creates the instance (status `creating`)."""
        if not tenant_id:
            raise InvalidError("tenant_id", "must not be empty")
        return Instance(
            id=instance_id,
            tenant_id=tenant_id,
            site_id=site_id,
            user_id=user_id,
            name=require_name(name),
            instance_type=parse_instance_type(instance_type).value,
            region=region,
            runtime_type=runtime_type,
            workload_type=workload_type,
            preset_id=preset_id,
            tier_id=tier_id,
            agent_id=agent_id,
            configuration=require_object(configuration or {}, "configuration"),
            environment_variables=require_string_map(
                environment_variables or {}, "environment_variables"
            ),
            idempotency_key=idempotency_key,
            fingerprint=params_fingerprint,
            timestamp=at,
        )

    # -- queries of the aggregate's own state ------------------------------------------------

    @property
    def is_deleted(self) -> bool:
        return self.status == Status.DELETED

    def can(self, action: str) -> bool:
        sources, _ = TRANSITIONS[action]
        return Status(self.status) in sources

    def _check(self, action: str) -> bool:
        """True when the action changes something; False when it is already in effect."""
        sources, target = TRANSITIONS[action]
        current = Status(self.status)
        if current == target or (action == "delete" and current == Status.DELETED):
            return False
        if current not in sources:
            raise TransitionNotAllowedError(self.id, action, current)
        return True

    def _require_live(self, action: str) -> None:
        if self.status in (Status.DELETING, Status.DELETED):
            raise TransitionNotAllowedError(self.id, action, Status(self.status))

    # -- lifecycle actions --------------------------------------------------------------------

    def pause(self, at: datetime) -> bool:
        if self._check("pause"):
            self._paused(timestamp=at)
            return True
        return False

    @event("Paused")
    def _paused(self, timestamp: datetime) -> None:
        self._set_status(Status.PAUSED, timestamp)

    def resume(self, at: datetime) -> bool:
        if self._check("resume"):
            self._resumed(timestamp=at)
            return True
        return False

    @event("Resumed")
    def _resumed(self, timestamp: datetime) -> None:
        self._set_status(Status.RUNNING, timestamp)

    def stop(self, at: datetime) -> bool:
        if self._check("stop"):
            self._stopped(timestamp=at)
            return True
        return False

    @event("Stopped")
    def _stopped(self, timestamp: datetime) -> None:
        self._set_status(Status.STOPPED, timestamp)

    def start(self, at: datetime) -> bool:
        if self._check("start"):
            self._started(timestamp=at)
            return True
        return False

    @event("Started")
    def _started(self, timestamp: datetime) -> None:
        self._set_status(Status.RUNNING, timestamp)

    def restart(self, at: datetime) -> bool:
        if self._check("restart"):
            self._restart_requested(timestamp=at)
            return True
        return False

    @event("RestartRequested")
    def _restart_requested(self, timestamp: datetime) -> None:
        self._set_status(Status.RESTARTING, timestamp)

    def complete_restart(self, at: datetime) -> bool:
        """Called once the runtime is back; a no-op if the restart was already completed."""
        if self.status != Status.RESTARTING:
            return False
        self._restarted(timestamp=at)
        return True

    @event("Restarted")
    def _restarted(self, timestamp: datetime) -> None:
        self.restart_count += 1
        self._set_status(Status.RUNNING, timestamp)

    def retry(self, at: datetime) -> bool:
        if self._check("retry"):
            self._retry_requested(timestamp=at)
            return True
        return False

    @event("RetryRequested")
    def _retry_requested(self, timestamp: datetime) -> None:
        self.error_code = self.error_message = self.failed_stage = None
        self.provisioning_stage = None
        self._set_status(Status.CREATING, timestamp)

    # -- provisioning -------------------------------------------------------------------------

    def reach_stage(self, stage: str, seq: int, message: str, at: datetime) -> bool:
        """Records a provisioning stage; a stage at or below the last seq is a replay: no-op."""
        if self.status != Status.CREATING:
            raise TransitionNotAllowedError(self.id, "provision", Status(self.status))
        if seq <= self.bootstrap_seq:
            return False
        self._provisioning_stage_reached(stage=stage, seq=seq, message=message, timestamp=at)
        return True

    @event("ProvisioningStageReached")
    def _provisioning_stage_reached(
        self, stage: str, seq: int, message: str, timestamp: datetime
    ) -> None:
        self.provisioning_stage = stage
        self.bootstrap_seq = seq

    def mark_provisioned(self, hostname: str, ip_address: str, at: datetime) -> bool:
        if self.status == Status.RUNNING and self.hostname == hostname:
            return False
        if self.status != Status.CREATING:
            raise TransitionNotAllowedError(self.id, "provisioned", Status(self.status))
        self._provisioned(hostname=hostname, ip_address=ip_address, timestamp=at)
        return True

    @event("Provisioned")
    def _provisioned(self, hostname: str, ip_address: str, timestamp: datetime) -> None:
        self.hostname = hostname
        self.ip_address = ip_address
        self.provisioning_stage = "ready"
        self._set_status(Status.RUNNING, timestamp)

    def fail_provisioning(self, error_code: str, message: str, at: datetime) -> bool:
        if self.status != Status.CREATING:
            raise TransitionNotAllowedError(self.id, "fail provisioning", Status(self.status))
        self._provisioning_failed(
            error_code=error_code,
            message=message,
            stage=self.provisioning_stage,
            timestamp=at,
        )
        return True

    @event("ProvisioningFailed")
    def _provisioning_failed(
        self, error_code: str, message: str, stage: str | None, timestamp: datetime
    ) -> None:
        self.error_code = error_code
        self.error_message = message
        self.failed_stage = stage
        self._set_status(Status.ERROR, timestamp)

    def fail(self, error_code: str, message: str, at: datetime) -> bool:
        """The runtime broke, or a transitional status lasted too long."""
        if self.status == Status.CREATING:
            return self.fail_provisioning(error_code, message, at)
        if self.status not in (Status.RUNNING, Status.RESTARTING):
            raise TransitionNotAllowedError(self.id, "fail", Status(self.status))
        self._failed(error_code=error_code, message=message, timestamp=at)
        return True

    @event("Failed")
    def _failed(self, error_code: str, message: str, timestamp: datetime) -> None:
        self.error_code = error_code
        self.error_message = message
        self._set_status(Status.ERROR, timestamp)

    # -- deletion -----------------------------------------------------------------------------

    def request_deletion(self, at: datetime) -> bool:
        """Moves to `deleting`; False when it is already deleting or deleted.

        A teardown that failed left the instance `deleting` with the error; asking again then
        records a new request, so the provisioner tries the teardown once more.
        """
        if self._check("delete"):
            self._deletion_requested(timestamp=at)
            return True
        if self.status == Status.DELETING and self.error_code == "teardown_failed":
            self._deletion_requested(timestamp=at)
            return True
        return False

    @event("DeletionRequested")
    def _deletion_requested(self, timestamp: datetime) -> None:
        if self.error_code == "teardown_failed":
            self.error_code = None
            self.error_message = None
        self._set_status(Status.DELETING, timestamp)

    def record_deletion_failure(self, message: str, at: datetime) -> None:
        if self.status != Status.DELETING:
            raise TransitionNotAllowedError(self.id, "record teardown failure", Status(self.status))
        self._deletion_failed(message=message, timestamp=at)

    @event("DeletionFailed")
    def _deletion_failed(self, message: str, timestamp: datetime) -> None:
        self.error_code = "teardown_failed"
        self.error_message = message

    def complete_deletion(self, at: datetime) -> bool:
        if self.status == Status.DELETED:
            return False
        if self.status != Status.DELETING:
            raise TransitionNotAllowedError(self.id, "complete deletion", Status(self.status))
        self._deleted(timestamp=at)
        return True

    @event("Deleted")
    def _deleted(self, timestamp: datetime) -> None:
        # Soft delete: the stream stays for audit, the unique fields are released.
        self.hostname = None
        self.ip_address = None
        self.health_status = Health.UNKNOWN.value
        self._set_status(Status.DELETED, timestamp)

    # -- attributes ---------------------------------------------------------------------------

    def rename(self, name: str, at: datetime) -> bool:
        self._require_live("rename")
        clean = require_name(name)
        if clean == self.name:
            return False
        self._renamed(name=clean, timestamp=at)
        return True

    @event("Renamed")
    def _renamed(self, name: str, timestamp: datetime) -> None:
        self.name = name

    def update(self, changes: dict[str, Any], at: datetime) -> bool:
        self._require_live("update")
        clean = validate_update(changes)
        changed = {k: v for k, v in clean.items() if getattr(self, k) != v}
        if not changed:
            return False
        self._updated(changes=changed, timestamp=at)
        return True

    @event("Updated")
    def _updated(self, changes: dict[str, Any], timestamp: datetime) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def patch_platform_config(self, patch: dict[str, Any], at: datetime) -> bool:
        self._require_live("patch platform config")
        clean = validate_platform_config(patch)
        if all(self.platform_config.get(k) == v for k, v in clean.items()):
            return False
        self._platform_config_patched(patch=clean, timestamp=at)
        return True

    @event("PlatformConfigPatched")
    def _platform_config_patched(self, patch: dict[str, Any], timestamp: datetime) -> None:
        self.platform_config = {**self.platform_config, **patch}

    def change_model_policy(self, model_policy: dict[str, Any], at: datetime) -> bool:
        self._require_live("change model policy")
        policy = require_object(model_policy, "model_policy")
        if policy == self.model_policy:
            return False
        self._model_policy_changed(model_policy=policy, timestamp=at)
        return True

    @event("ModelPolicyChanged")
    def _model_policy_changed(self, model_policy: dict[str, Any], timestamp: datetime) -> None:
        self.model_policy = model_policy

    def change_consent(self, consent_debug_access: bool, at: datetime) -> bool:
        self._require_live("change consent")
        if consent_debug_access == self.consent_debug_access:
            return False
        self._consent_changed(consent_debug_access=consent_debug_access, timestamp=at)
        return True

    @event("ConsentChanged")
    def _consent_changed(self, consent_debug_access: bool, timestamp: datetime) -> None:
        self.consent_debug_access = consent_debug_access

    def change_health(self, health_status: str, reason: str, at: datetime) -> bool:
        try:
            health = Health(health_status)
        except ValueError:
            raise InvalidError(
                "health_status", "must be healthy, degraded or unreachable"
            ) from None
        if health == self.health_status or self.status == Status.DELETED:
            return False
        self._health_changed(health_status=health.value, reason=reason, timestamp=at)
        return True

    @event("HealthChanged")
    def _health_changed(self, health_status: str, reason: str, timestamp: datetime) -> None:
        self.health_status = health_status

    def rotate_agent_key(self, at: datetime) -> None:
        self._require_live("rotate agent key")
        self._agent_key_rotated(timestamp=at)

    @event("AgentKeyRotated")
    def _agent_key_rotated(self, timestamp: datetime) -> None:
        # The old key's hash is nullified; the runtime fetches a fresh key on its next call.
        self.agent_key_rotated_at = timestamp

    def _set_status(self, status: Status, at: datetime) -> None:
        self.status = status.value
        self.status_changed_at = at


class InstanceNotFoundError(NotFoundError):
    def __init__(self, instance_id: UUID | str) -> None:
        super().__init__(f"instance {instance_id} not found")
        self.instance_id = instance_id


class NotOwnerError(ForbiddenError):
    def __init__(self, instance_id: UUID) -> None:
        super().__init__(f"instance {instance_id} belongs to another user; ask an admin")


class TransitionNotAllowedError(ConflictError):
    def __init__(self, instance_id: UUID, action: str, current: Status) -> None:
        super().__init__(f"cannot {action} instance {instance_id} while it is {current.value}")
        self.action = action
        self.current_status = current.value


class IdempotencyConflictError(ConflictError):
    def __init__(self, idempotency_key: str, instance_id: UUID) -> None:
        super().__init__(
            f"idempotency key {idempotency_key!r} was already used for instance {instance_id} "
            "with different parameters"
        )
        self.instance_id = instance_id
