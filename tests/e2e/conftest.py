"""The real app served by uvicorn on a free port, once per store, and HTTP clients holding
API keys of various tenants and roles."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from adapters.api_keys import ApiKeyStore
from adapters.services import Services
from adapters.settings import Settings, load_settings
from api.app import create_app
from tests.conftest import fresh_database
from tests.services import free_port, wait_until


class LiveApi:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services = Services(settings)
        self.app = create_app(settings, self.services)
        self.keys: ApiKeyStore = self.app.state.api_keys
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveApi:
        self.thread.start()
        wait_until(lambda: self.server.started, 20, message="uvicorn")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.services.close()

    def client(
        self, tenant: str | None = None, role: str = "admin", user: str | None = None
    ) -> httpx.Client:
        """A client holding a new key; a new tenant unless one is named."""
        tenant = tenant or f"t-{uuid.uuid4().hex[:8]}"
        if role == "member" and user is None:
            user = f"u-{uuid.uuid4().hex[:6]}"
        _, secret = self.keys.create(tenant, role, user)
        client = httpx.Client(base_url=self.url, headers={"X-API-Key": secret}, timeout=30)
        client.tenant = tenant  # type: ignore[attr-defined]
        client.user = user  # type: ignore[attr-defined]
        return client

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def api_settings(url: str, tmp: Path, **extra: str) -> Settings:
    return load_settings(
        {
            "LIFELINE_DATABASE_URL": url,
            "LIFELINE_KEY_FILE": str(tmp / "lifeline.key"),
            "LIFELINE_BOOTSTRAP_API_KEY": "bootstrap-key-for-tests",
            "LIFELINE_PROVIDER": "simulated",
            "LIFELINE_RUNTIME_DIR": str(tmp / "runtimes"),
            **extra,
        }
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    """The service over real HTTP, on each store in turn."""
    tmp = tmp_path_factory.mktemp("api")
    if request.param == "sqlite":
        live = LiveApi(api_settings(f"sqlite:///{tmp}/lifeline.db", tmp)).start()
        yield live
        live.stop()
        return
    with fresh_database(request.getfixturevalue("pg_url")) as url:
        live = LiveApi(api_settings(url, tmp)).start()
        yield live
        live.stop()


@pytest.fixture
def admin(api: LiveApi) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


Make = Callable[..., dict[str, object]]
