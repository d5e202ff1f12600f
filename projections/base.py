"""What every read model shares: a projection turns events into view operations, and a view
applies a batch of them together with its tracking position in one transaction.

Batching is what makes catch-up fast; the position check inside the view's transaction is
what makes it exactly-once, even when two runners or a rebuild race on one view.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import Projection

TOp = TypeVar("TOp")

# One event's position in the application sequence, with the operations it causes.
Step = tuple[int, Sequence[Any]]


class View(TrackingRecorder, ABC):
    """A read model's storage. Concrete views live in adapters/, one per backend."""

    @abstractmethod
    def apply(self, steps: Sequence[Step], application_name: str) -> None:
        """Applies the steps above the recorded position and records the last one, atomically."""

    @abstractmethod
    def clear(self) -> None:
        """Empties the view and forgets its position (it will be rebuilt from the start)."""


TView = TypeVar("TView", bound=View)


class ReadModel(Projection[TView], Generic[TView]):
    """A projection whose `ops` maps one event to the operations its view understands.

    Each subclass defines its own `@singledispatchmethod ops`, falling back to `()` for events
    it ignores; registering on a shared dispatcher would leak handlers between read models.
    """

    @abstractmethod
    def ops(self, domain_event: Any) -> Sequence[Any]: ...

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(
            [(tracking.notification_id, self.ops(domain_event))], tracking.application_name
        )
