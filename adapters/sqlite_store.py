"""The SQLite event store: the library's recorder plus the subscription it lacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ListenNotifySubscription, StoredEvent, Subscription
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteFactory

from adapters.doorbell import Doorbell, doorbell

# Another process's commits are only seen by looking; this is how often followers look.
POLL_INTERVAL = 0.025


class Waiter:
    """Blocks until new events may be in the store: a local commit, or the poll interval."""

    def __init__(self, bell: Doorbell, interval: float = POLL_INTERVAL) -> None:
        self.bell = bell
        self.interval = interval
        self.mark = bell.count

    def arm(self) -> None:
        self.mark = self.bell.count

    def wait(self, timeout: float) -> None:
        self.bell.wait(self.mark, min(timeout, self.interval))

    def close(self) -> None:
        pass


class LifelineSQLiteRecorder(SQLiteApplicationRecorder):
    @property
    def bell(self) -> Doorbell:
        return doorbell("sqlite:" + self.datastore.pool.db_name)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super().insert_events(stored_events, **kwargs)
        self.bell.ring()
        return ids

    def waiter(self) -> Waiter:
        return Waiter(self.bell)

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[Any]:
        return SQLiteSubscription(self, gt=gt, topics=topics)

    def event_positions(self, originator_id: UUID) -> dict[int, int]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_version, rowid FROM {self.events_table_name} "
                "WHERE originator_id=?",
                (originator_id.hex,),
            )
            return {row[0]: row[1] for row in c.fetchall()}


class SQLiteSubscription(ListenNotifySubscription[LifelineSQLiteRecorder]):
    """The library's pull loop, woken by local commits and by polling for other processes."""

    def __init__(
        self, recorder: LifelineSQLiteRecorder, gt: int | None, topics: Sequence[str]
    ) -> None:
        self._waiter = recorder.waiter()
        super().__init__(recorder=recorder, gt=gt, topics=topics)

    def _loop_on_pull(self) -> None:
        try:
            while not self._has_been_stopped:
                self._waiter.arm()
                self._pull()
                self._waiter.wait(timeout=POLL_INTERVAL)
        except BaseException as e:  # noqa: BLE001 - the library's contract: errors surface from __next__
            if self._thread_error is None:
                self._thread_error = e
            self.stop()


class Factory(SQLiteFactory):
    application_recorder_class = LifelineSQLiteRecorder
