"""Runs a read model: follows the store and feeds its view batch by batch, exactly once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import Notification

from adapters.feed import batches
from domain.application import Lifeline
from projections.base import ReadModel, Step

log = logging.getLogger(__name__)
RETRY_DELAY = 1.0


def steps_for(app: Lifeline, model: ReadModel[Any], found: Sequence[Notification]) -> list[Step]:
    return [(n.id, model.ops(app.mapper.to_domain_event(n))) for n in found]


class Runner:
    """One read model's follower thread. Restarts itself after an error, from the view's
    recorded position, so a crash anywhere costs a retry, never a lost or doubled event."""

    def __init__(
        self,
        app: Lifeline,
        model: ReadModel[Any],
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.app = app
        self.model = model
        self.view = model.view
        self.on_batch = on_batch
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def catch_up_once(self, until: int | None = None) -> int:
        """Applies everything stored now (or up to `until`); returns the view's position."""
        position = self.view.max_tracking_id(self.app.name) or 0
        while until is None or position < until:
            found = self.app.recorder.select_notifications(
                start=position, limit=500, stop=until, inclusive_of_start=False
            )
            if not found:
                break
            self.view.apply(steps_for(self.app, self.model, found), self.app.name)
            position = found[-1].id
            if self.on_batch:
                self.on_batch(position)
        return position

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                start = self.view.max_tracking_id(self.app.name) or 0
                for found in batches(self.app, start, self.stopping):
                    self.view.apply(steps_for(self.app, self.model, found), self.app.name)
                    if self.on_batch:
                        self.on_batch(found[-1].id)
            except Exception as e:
                self.error = e
                log.exception("projection %s failed; retrying", self.model.name)
                self.stopping.wait(RETRY_DELAY)

    def start(self) -> Runner:
        self.thread = threading.Thread(target=self.run, name=f"view-{self.model.name}", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)
