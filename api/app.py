"""The Litestar application factory: controllers, dependencies, error mapping, OpenAPI, and the
lifespan that opens the store and starts the in-process workers."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from adapters.api_keys import ApiKeyStore, bootstrap
from adapters.services import Services
from adapters.settings import Settings, get_settings
from api.activity import ActivityController
from api.agent_tool import instance_tool
from api.deps import provide_scope, provide_services
from api.errors import EXCEPTION_HANDLERS
from api.event_stream import instance_stream, tenant_stream
from api.instance_settings import InstanceSettingsController
from api.instances import InstancesController
from api.lifecycle import LifecycleController
from api.runtime_proxy import RuntimeController
from api.system import health, ready

MAX_BODY_BYTES = 1024 * 1024
CONTROLLERS = (
    InstancesController,
    LifecycleController,
    InstanceSettingsController,
    ActivityController,
    RuntimeController,
)
log = logging.getLogger("lifeline")


def create_app(settings: Settings | None = None, services: Services | None = None) -> Litestar:
    """The app for these settings; `services` lets a caller (a test) share its own."""
    settings = settings or get_settings()
    # Every runtime call would otherwise log a line at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    owned = services is None
    services = services or Services(settings)
    keys = ApiKeyStore(services.datastore)
    first_key = bootstrap(keys, settings.bootstrap_api_key)
    if first_key is not None:
        # Shown once: only its hash is stored.
        sys.stderr.write(
            f"Lifeline created the first admin API key (tenant 'default'); keep it:\n{first_key}\n"
        )

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if settings.in_process:
            services.start_workers()
        try:
            yield
        finally:
            if owned:
                services.close()

    return Litestar(
        route_handlers=[*CONTROLLERS, instance_tool, tenant_stream, instance_stream, health, ready],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "caller": Provide(provide_scope, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        state=State({"services": services, "api_keys": keys}),
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Lifeline",
            version="1.0.0",
            description="Event-sourced lifecycle service for hosted instances.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
    )
