"""The `usage` view in SQL: daily sums per instance, and the end users seen each day (kept
apart, because unique users over several days is not the sum of each day's)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, ClassVar
from uuid import UUID

from adapters.views.sql import Cursor, SQLView
from projections.usage import AddUsage, UsageDayRow, UsageReport, UsageView, from_units


class SQLUsageView(SQLView, UsageView):
    name = "usage"
    schema: ClassVar = (
        (
            "CREATE TABLE IF NOT EXISTS {t} ("
            "instance_id TEXT NOT NULL, day TEXT NOT NULL, tenant_id TEXT NOT NULL, "
            "requests BIGINT NOT NULL, tokens BIGINT NOT NULL, cost_units BIGINT NOT NULL, "
            "PRIMARY KEY (instance_id, day))"
        ),
        (
            "CREATE TABLE IF NOT EXISTS {t}_users ("
            "instance_id TEXT NOT NULL, day TEXT NOT NULL, end_user TEXT NOT NULL, "
            "PRIMARY KEY (instance_id, day, end_user))"
        ),
    )
    tables: ClassVar = ("", "_users")

    def apply_op(self, c: Cursor, op: Any, position: int) -> None:
        if not isinstance(op, AddUsage):
            return
        self.run(
            c,
            "INSERT INTO {t} (instance_id, day, tenant_id, requests, tokens, cost_units) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (instance_id, day) DO UPDATE SET "
            "requests = {t}.requests + excluded.requests, tokens = {t}.tokens + excluded.tokens, "
            "cost_units = {t}.cost_units + excluded.cost_units",
            op.instance_id, op.day.isoformat(), op.tenant_id, op.requests, op.tokens,
            op.cost_units,
        )  # fmt: skip
        if op.end_user:
            self.run(
                c,
                "INSERT INTO {t}_users (instance_id, day, end_user) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                op.instance_id, op.day.isoformat(), op.end_user,
            )  # fmt: skip

    def report(self, instance_id: UUID, first_day: date, last_day: date) -> UsageReport:
        span = (instance_id, first_day.isoformat(), last_day.isoformat())
        with self.reading() as c:
            sums = self.run(
                c,
                "SELECT day, requests, tokens, cost_units FROM {t} "
                "WHERE instance_id=? AND day BETWEEN ? AND ?",
                *span,
            ).fetchall()
            users = self.run(
                c,
                "SELECT day, COUNT(*) AS n FROM {t}_users "
                "WHERE instance_id=? AND day BETWEEN ? AND ? GROUP BY day",
                *span,
            ).fetchall()
            unique = self.run(
                c,
                "SELECT COUNT(DISTINCT end_user) AS n FROM {t}_users "
                "WHERE instance_id=? AND day BETWEEN ? AND ?",
                *span,
            ).fetchone()
        by_day = {r["day"]: r for r in sums}
        users_by_day = {r["day"]: int(r["n"]) for r in users}
        daily = []
        day = first_day
        while day <= last_day:
            row = by_day.get(day.isoformat())
            daily.append(
                UsageDayRow(
                    day=day,
                    requests=int(row["requests"]) if row else 0,
                    tokens=int(row["tokens"]) if row else 0,
                    cost=from_units(int(row["cost_units"])) if row else "0",
                    unique_end_users=users_by_day.get(day.isoformat(), 0),
                )
            )
            day += timedelta(days=1)
        return UsageReport(
            daily=daily,
            requests=sum(d.requests for d in daily),
            tokens=sum(d.tokens for d in daily),
            cost=from_units(sum(int(r["cost_units"]) for r in sums)),
            unique_end_users=int(unique["n"]),
        )
