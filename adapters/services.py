"""The composition root: the application service, the views, and the workers that follow the
store, opened together from one Settings object. The API and the CLI build on this."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar
from uuid import UUID

import msgspec

from adapters.feed import head
from adapters.providers.base import Provider, RuntimeUnavailableError
from adapters.providers.local import LocalProvider
from adapters.providers.simulated import SimulatedProvider
from adapters.provisioner import Provisioner
from adapters.relay import Relay
from adapters.runner import Runner
from adapters.runtime_client import RuntimeClient
from adapters.settings import Settings, SettingsError
from adapters.store import datastore_of, open_application
from adapters.telemetry import HealthSample, TelemetryBook
from adapters.views.registry import READ_MODELS, build
from domain.application import Lifeline
from projections.base import ReadModel, View
from projections.instances import InstanceRow, InstancesView
from projections.logs import PROVISIONING, LogQuery, LogsView

TView = TypeVar("TView", bound=View)


class Worker(Protocol):
    """Anything that follows the store in the background (a view runner, the relay...)."""

    name: str

    def start(self) -> Any: ...
    def stop(self, timeout: float = ...) -> None: ...
    def position(self) -> int: ...


def open_provider(settings: Settings) -> Provider:
    if settings.provider == "local":
        return LocalProvider(settings.runtime_dir)
    if settings.provider == "simulated":
        return SimulatedProvider()
    raise SettingsError(f"LIFELINE_PROVIDER must be local or simulated, not {settings.provider!r}")


class Services:
    def __init__(self, settings: Settings, app: Lifeline | None = None) -> None:
        self.settings = settings
        self.app = app or open_application(settings)
        self.datastore = datastore_of(self.app)
        self.models: dict[str, ReadModel[Any]] = {
            name: build(name, self.datastore) for name in READ_MODELS
        }
        self.runners: dict[str, Runner] = {}
        self.workers: list[Worker] = []
        # Latest health sample per instance, filled by whoever samples the runtimes.
        self.health = TelemetryBook()
        self.provider = open_provider(settings)
        self.runtime = RuntimeClient(self.provider)

    def view(self, name: str, kind: type[TView]) -> TView:
        view = self.models[name].view
        if not isinstance(view, kind):
            raise TypeError(f"view {name} is a {type(view).__name__}, not {kind.__name__}")
        return view

    def start_projections(self, names: Iterable[str] | None = None) -> None:
        for name in names or READ_MODELS:
            if name not in self.runners:
                self.runners[name] = Runner(self.app, self.models[name]).start()

    def start_workers(self) -> None:
        """Everything that follows the store in this process: the views, the provisioner,
        and the relay where settings ask for it."""
        self.start_projections()
        self.start_provisioner()
        if self.settings.nats_url:
            self.start_relay()

    def start_relay(self) -> Relay:
        if not self.settings.nats_url:
            raise SettingsError("set LIFELINE_NATS_URL (e.g. nats://127.0.0.1:4222) to relay")
        relay = Relay(
            self.app,
            self.datastore,
            self.settings.nats_url,
            stream=self.settings.nats_stream,
            prefix=self.settings.nats_subject_prefix,
            duplicate_window=self.settings.nats_duplicate_window,
            max_in_flight=self.settings.nats_max_in_flight,
        )
        self.add_worker(relay)
        return relay

    def start_provisioner(self) -> Provisioner:
        provisioner = Provisioner(
            self.app,
            self.provider,
            self.datastore,
            self.health,
            transition_timeout=self.settings.transition_timeout,
        )
        self.add_worker(provisioner)
        return provisioner

    def add_worker(self, worker: Worker) -> None:
        self.workers.append(worker)
        worker.start()

    def wait_for(self, position: int | None, names: Iterable[str], timeout: float = 5.0) -> None:
        """Blocks until the named views have applied the event at `position` (read your write)."""
        if position is None:
            return
        for name in names:
            self.models[name].view.wait(self.app.name, position, timeout=timeout)

    def positions(self) -> dict[str, int]:
        """Each view's and worker's position in the store."""
        result = {
            name: model.view.max_tracking_id(self.app.name) or 0
            for name, model in self.models.items()
        }
        result.update({w.name: w.position() for w in self.workers})
        return result

    def lags(self) -> dict[str, int]:
        """How many stored events each view and worker has yet to apply."""
        newest = head(self.app)
        return {name: max(0, newest - p) for name, p in self.positions().items()}

    def instance_row(self, instance_id: UUID) -> InstanceRow | None:
        view = self.models["instances"].view
        return view.get_row(instance_id) if isinstance(view, InstancesView) else None

    def telemetry(self, instance_id: UUID) -> HealthSample | None:
        return self.health.get(instance_id)

    def provisioning_logs(self, instance_id: UUID) -> list[dict[str, Any]]:
        """The provisioning stages logged for an instance, oldest first."""
        view = self.models["logs"].view
        if not isinstance(view, LogsView):
            return []
        page = view.list_logs(LogQuery(instance_id=instance_id, log_type=PROVISIONING, limit=200))
        return [msgspec.to_builtins(row) for row in page.logs]

    def push_model_policy(self, instance_id: UUID, policy: dict[str, Any]) -> tuple[bool, str]:
        """Sends a new model policy to the instance's runtime when it is running."""
        try:
            status, _ = self.runtime.call(
                instance_id, "POST", "/api/config", {"model_policy": policy}
            )
        except RuntimeUnavailableError as e:
            return False, f"stored; the runtime gets it when it runs ({e.reason})"
        if status != 200:  # noqa: PLR2004
            return False, f"stored; the runtime refused it with status {status}"
        return True, "stored and pushed to the running runtime"

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        for runner in self.runners.values():
            runner.stop()
        self.runtime.close()
        self.provider.close()
        self.app.close()
