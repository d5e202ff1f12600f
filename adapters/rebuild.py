"""Rebuilds a view from the event store while readers keep the old, complete one."""

from __future__ import annotations

from collections.abc import Callable

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from adapters.feed import head
from adapters.runner import Runner
from adapters.views.registry import build
from domain.application import Lifeline

ASIDE = "_rebuild"


def rebuild(
    app: Lifeline,
    datastore: SQLiteDatastore | PostgresDatastore,
    name: str,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Builds the view afresh beside the live one, then swaps it in; returns its position.

    `progress(done, total)` is called after each batch, `total` being the store's head when
    the rebuild began (events stored later are applied during the swap).
    """
    live = build(name, datastore)
    aside = build(name, datastore, suffix=ASIDE)
    aside.view.clear()
    target = head(app)
    runner = Runner(app, aside, on_batch=(lambda p: progress(p, target)) if progress else None)
    runner.catch_up_once(until=target)

    return aside.view.swap_into(live.view, app.name, runner.catch_up_once)
