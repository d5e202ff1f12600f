"""The PostgreSQL event store: the library's recorder plus positions and LISTEN wake-ups."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg import sql


class Waiter:
    """Blocks until the store NOTIFYs an insert (the library notifies on every insert)."""

    def __init__(self, conninfo: dict[str, Any], channel: str) -> None:
        params = {k: v for k, v in conninfo.items() if k != "row_factory"}
        self.conn = psycopg.connect(autocommit=True, **params)
        self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def arm(self) -> None:
        pass  # notifications queue up on the connection, so none is missed between looks

    def wait(self, timeout: float) -> None:
        for _ in self.conn.notifies(timeout=timeout, stop_after=1):
            pass
        # Drain the burst that woke us: one look at the store covers all of it.
        for _ in self.conn.notifies(timeout=0):
            pass

    def close(self) -> None:
        self.conn.close()


class LifelinePostgresRecorder(PostgresApplicationRecorder):
    def waiter(self) -> Waiter:
        return Waiter(cast("dict[str, Any]", self.datastore.pool.kwargs), self.channel_name)

    def event_positions(self, originator_id: UUID) -> dict[int, int]:
        statement = sql.SQL(
            "SELECT originator_version, notification_id FROM {}.{} WHERE originator_id=%s"
        ).format(sql.Identifier(self.datastore.schema), sql.Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (originator_id,))
            return {row["originator_version"]: row["notification_id"] for row in curs.fetchall()}


class Factory(PostgresFactory):
    application_recorder_class = LifelinePostgresRecorder
