"""Settings an owner or admin changes on a running instance: debug consent, model policy and
the platform configuration (merge patch)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, patch

from adapters.services import Services
from api.deps import expected_version, settle
from api.schemas import (
    ConsentAnswer,
    ConsentChange,
    ModelPolicy,
    ModelPolicyAnswer,
    PlatformConfig,
    PlatformConfigPatch,
)
from domain.values import Scope


class InstanceSettingsController(Controller):
    path = "/v1/instances/{instance_id:uuid}"
    tags = ["instance settings"]  # noqa: RUF012 - Litestar's declared type

    @patch("/consent", operation_id="updateConsent", sync_to_thread=True)
    def consent(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        caller: Scope,
        instance_id: UUID,
        data: ConsentChange,
    ) -> ConsentAnswer:
        """Grant or revoke debug access to the instance's conversations (owner or admin)."""
        result = services.app.change_consent(
            caller,
            instance_id,
            data.consent_debug_access,
            expected_version=expected_version(request),
        )
        settle(services, result)
        granted = "granted" if data.consent_debug_access else "revoked"
        return ConsentAnswer(
            instance_id=instance_id,
            consent_debug_access=data.consent_debug_access,
            message=f"debug access {granted}"
            if result.changed
            else f"debug access already {granted}",
        )

    @patch("/model-policy", operation_id="updateModelPolicy", sync_to_thread=True)
    def model_policy(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        caller: Scope,
        instance_id: UUID,
        data: ModelPolicy,
    ) -> ModelPolicyAnswer:
        """Set which models the agent may use; a running runtime gets the new policy at once."""
        policy = {k: v for k, v in msgspec.to_builtins(data).items() if v is not None}
        services.app.change_model_policy(
            caller, instance_id, policy, expected_version=expected_version(request)
        )
        pushed, message = services.push_model_policy(instance_id, policy)
        return ModelPolicyAnswer(
            instance_id=instance_id, model_policy=policy, pushed_to_runtime=pushed, message=message
        )

    @get("/platform-config", operation_id="getPlatformConfig", sync_to_thread=True)
    def get_platform_config(
        self, services: Services, caller: Scope, instance_id: UUID
    ) -> PlatformConfig:
        """The instance's platform configuration."""
        state = services.app.get_instance(caller, instance_id)
        return PlatformConfig(instance_id=instance_id, platform_config=state.platform_config)

    @patch("/platform-config", operation_id="patchPlatformConfig", sync_to_thread=True)
    def patch_platform_config(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        caller: Scope,
        instance_id: UUID,
        data: PlatformConfigPatch,
    ) -> PlatformConfig:
        """Merge patch: only the fields sent change; null clears a field."""
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        if changes:
            services.app.patch_platform_config(
                caller, instance_id, changes, expected_version=expected_version(request)
            )
        state = services.app.get_instance(caller, instance_id)
        return PlatformConfig(instance_id=instance_id, platform_config=state.platform_config)
