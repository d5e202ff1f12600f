"""Follows the event store's notification log in batches: the outbox every follower reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Protocol

from eventsourcing.persistence import Notification

from domain.application import Lifeline

BATCH_SIZE = 500
IDLE_WAIT = 1.0


class Waiter(Protocol):
    def arm(self) -> None: ...
    def wait(self, timeout: float) -> None: ...
    def close(self) -> None: ...


def batches(
    app: Lifeline, after: int, stop: threading.Event, batch_size: int = BATCH_SIZE
) -> Iterator[Sequence[Notification]]:
    """Yields every stored notification after `after`, in order, until `stop` is set."""
    waiter: Waiter = app.recorder.waiter()  # type: ignore[attr-defined]
    try:
        position = after
        while not stop.is_set():
            waiter.arm()
            found = app.recorder.select_notifications(
                start=position, limit=batch_size, inclusive_of_start=False
            )
            if found:
                position = found[-1].id
                yield found
                if len(found) == batch_size:
                    continue
            waiter.wait(IDLE_WAIT)
    finally:
        waiter.close()


def head(app: Lifeline) -> int:
    return app.recorder.max_notification_id() or 0
