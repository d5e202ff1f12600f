"""The SQL machinery every view shares, for SQLite and PostgreSQL alike.

Views write portable SQL with `?` placeholders; the PostgreSQL dialect rewrites them once.
Each view keeps its position in its own `<view>_tracking` table, written in the same
transaction as its rows, and takes a lock on that position first: whoever holds it is the
only writer, so a second runner (or a rebuild's swap) can never apply an event twice.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar, Protocol
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from projections.base import Step, View

DATABASE_LOOK_INTERVAL = 0.05
Row = Any  # sqlite3.Row or a psycopg dict row: both index by column name


class Cursor(Protocol):
    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...


def to_db(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class SQLView(View):
    """Base of all concrete views. Subclasses give `name`, `schema` and their statements."""

    name: ClassVar[str]
    # Statements creating the view's tables and indexes; `{t}` is the table-name prefix.
    schema: ClassVar[Sequence[str]]
    # Table suffixes (after the prefix) and index names the schema creates, for swap and drop.
    tables: ClassVar[Sequence[str]] = ("",)
    indexes: ClassVar[Sequence[str]] = ()

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore, *, suffix: str = "") -> None:
        self.datastore = datastore
        self.is_postgres = isinstance(datastore, PostgresDatastore)
        self.prefix = self.name + suffix
        self._sql_cache: dict[str, str] = {}
        self._changed = threading.Condition()
        # Positions applied by this process: waiting on a local runner costs no query.
        self._applied: dict[str, int] = {}

    # -- SQL plumbing ---------------------------------------------------------------------

    def sql(self, statement: str) -> str:
        """The statement with `{t}` filled in and placeholders in this dialect."""
        cached = self._sql_cache.get(statement)
        if cached is None:
            cached = statement.replace("{t}", self.prefix)
            if self.is_postgres:
                cached = cached.replace("%", "%%").replace("?", "%s")
            self._sql_cache[statement] = cached
        return cached

    def run(self, c: Cursor, statement: str, *params: Any) -> Any:
        c.execute(self.sql(statement), tuple(to_db(p) for p in params))
        return c

    @contextmanager
    def writing(self) -> Iterator[Cursor]:
        """A write transaction that holds the database's write lock from its first statement."""
        if isinstance(self.datastore, SQLiteDatastore):
            # BEGIN IMMEDIATE: a deferred transaction that reads then writes can fail with
            # "database is locked" instead of waiting for the lock.
            with self.datastore.get_connection(commit=True) as conn:
                cursor = conn.cursor()
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield cursor
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
        else:
            with self.datastore.transaction(commit=True) as curs:
                yield curs

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        if isinstance(self.datastore, SQLiteDatastore):
            with self.datastore.transaction(commit=False) as cursor:
                yield cursor
        else:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                yield curs

    def page(
        self,
        columns: Sequence[str],
        filters: dict[str, Any],
        order: str,
        limit: int,
        offset: int,
    ) -> tuple[list[Row], int]:
        """One page of rows matching every non-None filter (column=value), and their count."""
        given = {k: v for k, v in filters.items() if v is not None}
        condition = " AND ".join(f"{column}=?" for column in given) or "1=1"
        with self.reading() as c:
            rows = self.run(
                c,
                f"SELECT {', '.join(columns)} FROM {{t}} WHERE {condition} "
                f"ORDER BY {order} LIMIT ? OFFSET ?",
                *given.values(), limit, offset,
            ).fetchall()  # fmt: skip
            total = self.run(
                c, f"SELECT COUNT(*) AS n FROM {{t}} WHERE {condition}", *given.values()
            ).fetchone()["n"]
        return list(rows), int(total)

    # -- schema ---------------------------------------------------------------------------

    def create_table(self) -> None:
        with self.writing() as c:
            for statement in self.schema:
                c.execute(self.sql(statement))
            c.execute(
                self.sql(
                    "CREATE TABLE IF NOT EXISTS {t}_tracking ("
                    "application_name TEXT PRIMARY KEY, notification_id BIGINT NOT NULL)"
                )
            )

    def drop_tables(self) -> None:
        with self.writing() as c:
            for suffix in (*self.tables, "_tracking"):
                c.execute(f"DROP TABLE IF EXISTS {self.prefix}{suffix}")

    def clear(self) -> None:
        self.drop_tables()
        self.create_table()

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: two views with equal dumps hold the same data."""
        result: dict[str, list[tuple[Any, ...]]] = {}
        with self.reading() as c:
            for suffix in self.tables:
                c.execute(f"SELECT * FROM {self.prefix}{suffix}")
                result[suffix] = sorted(
                    (tuple(str(v) for v in dict(row).values()) for row in c.fetchall()),
                )
        return result

    # -- tracking -------------------------------------------------------------------------

    def insert_tracking(self, tracking: Tracking) -> None:
        self.apply([(tracking.notification_id, ())], tracking.application_name)

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.reading() as c:
            row = self.run(
                c,
                "SELECT notification_id FROM {t}_tracking WHERE application_name=?",
                application_name,
            ).fetchone()
        return None if row is None else int(row["notification_id"])

    def _locked_position(self, c: Cursor, application_name: str) -> int:
        self.run(
            c,
            "INSERT INTO {t}_tracking (application_name, notification_id) VALUES (?, 0) "
            "ON CONFLICT (application_name) DO NOTHING",
            application_name,
        )
        lock = " FOR UPDATE" if self.is_postgres else ""
        row = self.run(
            c,
            "SELECT notification_id FROM {t}_tracking WHERE application_name=?" + lock,
            application_name,
        ).fetchone()
        return int(row["notification_id"])

    def apply(self, steps: Sequence[Step], application_name: str) -> None:
        if not steps:
            return
        with self.writing() as c:
            position = self._locked_position(c, application_name)
            last = position
            for step_position, ops in steps:
                if step_position <= position:
                    continue  # applied before, by us in an earlier life or by a rebuild
                for op in ops:
                    self.apply_op(c, op, step_position)
                last = step_position
            if last > position:
                self.run(
                    c,
                    "UPDATE {t}_tracking SET notification_id=? WHERE application_name=?",
                    last,
                    application_name,
                )
        with self._changed:
            if last > self._applied.get(application_name, 0):
                self._applied[application_name] = last
            self._changed.notify_all()

    @abstractmethod
    def apply_op(self, c: Cursor, op: Any, position: int) -> None:
        """Writes one operation, caused by the event at `position`."""

    def wait(
        self,
        application_name: str,
        notification_id: int | None,
        timeout: float = 1.0,
        interrupt: threading.Event | None = None,
    ) -> None:
        # The library polls the database from 100 ms up; reading your own write should cost
        # milliseconds, and many waiting requests must not each hold a connection to poll.
        # A runner in this process wakes us directly; one in another process is seen by
        # looking at the tracking table now and then.
        if notification_id is None:
            return
        deadline = time.monotonic() + timeout
        local = application_name in self._applied
        next_look = deadline - timeout + (DATABASE_LOOK_INTERVAL if local else 0.0)
        while self._applied.get(application_name, 0) < notification_id:
            now = time.monotonic()
            if now >= next_look:
                if self.has_tracking_id(application_name, notification_id):
                    return
                next_look = now + DATABASE_LOOK_INTERVAL
            remaining = deadline - now
            if remaining <= 0:
                msg = f"view {self.name} did not reach position {notification_id} in {timeout}s"
                raise TimeoutError(msg)
            if interrupt is not None and interrupt.is_set():
                return
            with self._changed:
                if self._applied.get(application_name, 0) < notification_id:
                    self._changed.wait(min(DATABASE_LOOK_INTERVAL, remaining))

    # -- rebuild: build aside, then swap ------------------------------------------------------

    def swap_into(
        self,
        live: SQLView,
        application_name: str,
        catch_up: Callable[[int], object],
    ) -> int:
        """Replaces `live`'s tables with this view's, atomically; returns the live position.

        Swaps only while holding the live view's position lock with this view at least as far
        along, so the live runner waits and then skips what we already did. `catch_up(p)`
        brings this view to position p; it runs outside the lock, because reading the store
        inside SQLite's single-writer lock could deadlock with a writer waiting for it.
        """
        while True:
            with live.writing() as c:
                live_position = live._locked_position(c, application_name)
                ours = self._locked_position(c, application_name)
                if ours >= live_position:
                    self._swap(c, live, application_name, ours)
                    return ours
            catch_up(live_position)

    def _swap(self, c: Cursor, live: SQLView, application_name: str, position: int) -> None:
        for suffix in live.tables:
            c.execute(f"DROP TABLE IF EXISTS {live.prefix}{suffix}")
        for index in self.indexes:
            c.execute(f"DROP INDEX IF EXISTS {self.prefix}{index}")
        for suffix in self.tables:
            c.execute(f"ALTER TABLE {self.prefix}{suffix} RENAME TO {live.prefix}{suffix}")
        for statement in live.schema:
            if "INDEX" in statement:
                c.execute(live.sql(statement))
        live.run(
            c,
            "UPDATE {t}_tracking SET notification_id=? WHERE application_name=?",
            position,
            application_name,
        )
        c.execute(f"DROP TABLE IF EXISTS {self.prefix}_tracking")


def parse_time(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
