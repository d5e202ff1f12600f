"""The provisioner: follows the event store like a projection and makes the runtime provider
do what the events say (provision on Created or RetryRequested, pause on Paused, tear down on
DeletionRequested...), recording the outcome as new events.

Work on different instances runs in parallel; work on one instance runs in store order. Its
position in the store advances only over events whose work is done, so a provisioner killed
at any point redoes the unfinished work when it starts again. Every provider action is
idempotent (provision finds the runtime made before), so redoing never makes two runtimes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from adapters.providers.base import Provider, ProviderError, ProvisionFailedError
from adapters.telemetry import TelemetryBook
from adapters.views.position import ProvisionerPosition
from domain.application import Lifeline
from domain.errors import DomainError
from domain.instance import Instance, Status

log = logging.getLogger(__name__)
TRANSITIONAL = ("creating", "restarting", "deleting")
HEALTH_INTERVAL = 2.0
WATCH_INTERVAL = 5.0


class Provisioner:
    name = "provisioner"

    def __init__(
        self,
        app: Lifeline,
        provider: Provider,
        datastore: SQLiteDatastore | PostgresDatastore,
        health: TelemetryBook | None = None,
        transition_timeout: float = 300.0,
        workers: int = 16,
    ) -> None:
        self.app = app
        self.provider = provider
        self.tracking = ProvisionerPosition(datastore)
        self.tracking.create_table()
        self.health = health or TelemetryBook()
        self.transition_timeout = transition_timeout
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="provision")
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self._chains: dict[UUID, Future[None]] = {}
        self._pending: deque[tuple[int, Future[None]]] = deque()
        self.error: BaseException | None = None

    # -- following the store ----------------------------------------------------------------

    def position(self) -> int:
        return self.tracking.max_tracking_id(self.app.name) or 0

    def start(self) -> Provisioner:
        for target, label in ((self._follow, "follow"), (self._watch, "watch")):
            thread = threading.Thread(target=target, name=f"provisioner-{label}", daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _follow(self) -> None:
        try:
            self.reconcile()
        except Exception:
            log.exception("reconciling the runtimes with the store failed; following anyway")
        while not self.stopping.is_set():
            try:
                self._follow_once()
            except Exception as e:
                self.error = e
                log.exception("provisioner failed; carrying on from its recorded position")
                self.stopping.wait(1.0)

    def _follow_once(self) -> None:
        position = self.position()
        self._pending.clear()
        self._chains.clear()
        waiter = self.app.recorder.waiter()  # type: ignore[attr-defined]
        try:
            while not self.stopping.is_set():
                waiter.arm()
                found = self.app.recorder.select_notifications(
                    start=position, limit=200, inclusive_of_start=False
                )
                for notification in found:
                    self._dispatch(notification.id, self.app.mapper.to_domain_event(notification))
                    position = notification.id
                self._advance()
                if not found:
                    waiter.wait(0.05 if self._pending else 1.0)
        finally:
            waiter.close()

    def _dispatch(self, position: int, domain_event: Any) -> None:
        handler = self._handler_for(domain_event)
        if handler is None:
            done: Future[None] = Future()
            done.set_result(None)
            self._pending.append((position, done))
            return
        instance_id: UUID = domain_event.originator_id
        previous = self._chains.get(instance_id)

        def run() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    previous.result()
            handler(instance_id)

        future = self.pool.submit(run)
        self._chains[instance_id] = future
        self._pending.append((position, future))

    def _advance(self) -> None:
        """Records the position up to which every event's work is done."""
        done_up_to = None
        while self._pending and self._pending[0][1].done():
            position, future = self._pending.popleft()
            error = future.exception()
            if error is not None:
                log.error("provisioning work at position %s failed: %s", position, error)
            done_up_to = position
        if done_up_to is not None:
            self.tracking.record(done_up_to, self.app.name)

    def _handler_for(self, domain_event: Any) -> Callable[[UUID], None] | None:
        if not isinstance(domain_event, Instance.Event):
            return None
        return {
            "Created": self.provision,
            "RetryRequested": self.provision,
            "Paused": self._when(Status.PAUSED, self.provider.pause),
            "Resumed": self._when(Status.RUNNING, self.provider.resume, push_policy=True),
            "Stopped": self._when(Status.STOPPED, self.provider.stop),
            "Started": self._when(Status.RUNNING, self.provider.start, push_policy=True),
            "RestartRequested": self.restart,
            "DeletionRequested": self.delete,
        }.get(type(domain_event).__name__)

    # -- the work ---------------------------------------------------------------------------

    def _status(self, instance_id: UUID) -> Instance:
        instance: Instance = self.app.repository.get(instance_id)
        return instance

    def _when(
        self, status: Status, action: Callable[[UUID], Any], *, push_policy: bool = False
    ) -> Callable[[UUID], None]:
        """Acts only if the instance is still in the status the event put it in: replaying an
        old Paused after a Resumed must not pause the runtime again."""

        def act(instance_id: UUID) -> None:
            if self._status(instance_id).status != status:
                return
            try:
                action(instance_id)
            except ProviderError as e:
                self._fail(instance_id, "runtime_action_failed", str(e))
                return
            if push_policy:
                self._push_policy(instance_id)

        return act

    def _push_policy(self, instance_id: UUID) -> None:
        """A model policy changed while the runtime was away reaches it when it is back."""
        policy = self._status(instance_id).model_policy
        if not policy:
            return
        try:
            self.provider.push_model_policy(instance_id, dict(policy))
        except ProviderError as e:
            log.warning("could not push the model policy to %s: %s", instance_id, e)

    def reconcile(self) -> dict[UUID, str]:
        """Brings what the provider holds in line with the store after a restart of Lifeline:
        a runtime left behind by a deleted instance is torn down, and one that should be paused
        or stopped is made so. Runtimes of instances this store does not know are left alone
        (another Lifeline may share the provider). Answers what was done, per instance."""
        done: dict[UUID, str] = {}
        for instance_id in self.provider.known():
            try:
                status = self._status(instance_id).status
            except AggregateNotFoundError:
                continue  # not ours
            try:
                if status == Status.DELETED:
                    self.provider.destroy(instance_id)
                    done[instance_id] = "destroyed"
                elif status == Status.STOPPED and self.provider.find(instance_id):
                    self.provider.stop(instance_id)
                    done[instance_id] = "stopped"
                elif status == Status.PAUSED and self.provider.find(instance_id):
                    self.provider.pause(instance_id)
                    done[instance_id] = "paused"
            except ProviderError as e:
                log.warning("could not reconcile the runtime of %s: %s", instance_id, e)
        return done

    def provision(self, instance_id: UUID) -> None:
        instance = self._status(instance_id)
        if instance.status != Status.CREATING:
            return
        seq = instance.bootstrap_seq

        def report(stage: str, message: str) -> None:
            nonlocal seq
            seq += 1
            self.app.reach_stage(instance_id, stage, seq, message)

        try:
            config = dict(instance.configuration)
            if instance.model_policy:
                config["model_policy"] = dict(instance.model_policy)
            runtime = self.provider.provision(instance_id, config, report)
        except ProvisionFailedError as e:
            self.app.fail_provisioning(instance_id, e.code, f"{e.stage}: {e.message}")
            return
        except ProviderError as e:
            self.app.fail_provisioning(instance_id, "provider_error", str(e))
            return
        with contextlib.suppress(DomainError):
            self.app.mark_provisioned(instance_id, runtime.hostname, runtime.address)

    def restart(self, instance_id: UUID) -> None:
        if self._status(instance_id).status != Status.RESTARTING:
            return
        try:
            self.provider.restart(instance_id)
        except ProviderError as e:
            self._fail(instance_id, "restart_failed", str(e))
            return
        self._push_policy(instance_id)
        with contextlib.suppress(DomainError):
            self.app.complete_restart(instance_id)

    def delete(self, instance_id: UUID) -> None:
        if self._status(instance_id).status != Status.DELETING:
            return
        try:
            # Outside any transaction: the store only hears the outcome.
            self.provider.destroy(instance_id)
        except ProviderError as e:
            self.app.record_deletion_failure(instance_id, f"teardown failed: {e}")
            return
        self.health.forget(instance_id)
        with contextlib.suppress(DomainError):
            self.app.complete_deletion(instance_id)

    def _fail(self, instance_id: UUID, code: str, message: str) -> None:
        with contextlib.suppress(DomainError):
            self.app.fail(instance_id, code, message)

    # -- watching: stuck transitions and health ----------------------------------------------

    def _watch(self) -> None:
        last_watch = 0.0
        while not self.stopping.wait(HEALTH_INTERVAL):
            try:
                self.sample_health()
                if time.monotonic() - last_watch > WATCH_INTERVAL:
                    last_watch = time.monotonic()
                    self.fail_stuck()
            except Exception:
                log.exception("health watch failed; trying again")

    def sample_health(self) -> None:
        for instance_id in self.provider.known():
            try:
                instance = self._status(instance_id)
            except AggregateNotFoundError:
                continue  # a runtime with no instance in this store is not ours to judge
            if instance.status != Status.RUNNING:
                continue
            previous = self.health.get(instance_id)
            sample = self.provider.health(instance_id)
            if sample.health_status != "healthy":
                # Consecutive unhealthy samples: the API shows how long it has been going on.
                failures = (previous.failures if previous else 0) + 1
                sample = msgspec.structs.replace(sample, failures=failures)
            self.health.record(instance_id, sample)
            if sample.health_status != instance.health_status:
                with contextlib.suppress(DomainError):
                    self.app.change_health(
                        instance_id, sample.health_status, sample.detail or "sampled"
                    )

    def fail_stuck(self, now: datetime | None = None) -> list[UUID]:
        """Instances that stayed creating or restarting too long go to error, with why."""
        now = now or datetime.now(UTC)
        limit = timedelta(seconds=self.transition_timeout)
        failed = []
        for instance_id in self._transitional():
            instance = self._status(instance_id)
            if instance.status not in TRANSITIONAL or now - instance.status_changed_at < limit:
                continue
            if instance.status == Status.DELETING and instance.error_code == "teardown_failed":
                continue  # already said, and a DeletionFailed does not restart the clock
            reason = (
                f"stuck in {instance.status} for more than {self.transition_timeout:g}s "
                f"(last stage: {instance.provisioning_stage or 'none'})"
            )
            with contextlib.suppress(DomainError):
                if instance.status == Status.DELETING:
                    self.app.record_deletion_failure(instance_id, reason)
                else:
                    self.app.fail(instance_id, "transition_timeout", reason)
                failed.append(instance_id)
        return failed

    def _transitional(self) -> list[UUID]:
        with self.tracking.reading() as c:
            try:
                c.execute(
                    "SELECT id FROM instances WHERE status IN ('creating','restarting','deleting')"
                )
            except Exception:  # noqa: BLE001 - no instances view yet: nothing to watch
                return []
            return [UUID(str(row["id"])) for row in c.fetchall()]
