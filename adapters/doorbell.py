"""In-process wake-ups for followers of the event store (cross-process ones poll or LISTEN)."""

from __future__ import annotations

import threading


class Doorbell:
    """A counter that writers bump after each commit and followers wait on.

    Followers read the counter before looking for new events and wait for it to move, so a
    commit between their look and their wait is never missed.
    """

    def __init__(self) -> None:
        self._rung = 0
        self._condition = threading.Condition()

    @property
    def count(self) -> int:
        return self._rung

    def ring(self) -> None:
        with self._condition:
            self._rung += 1
            self._condition.notify_all()

    def wait(self, since: int, timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: self._rung != since, timeout)


_bells: dict[str, Doorbell] = {}
_lock = threading.Lock()


def doorbell(key: str) -> Doorbell:
    with _lock:
        return _bells.setdefault(key, Doorbell())
