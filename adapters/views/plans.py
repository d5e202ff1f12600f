"""The `plans` view in SQL (one class serves SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from adapters.views.sql import Cursor, Row, SQLView, parse_time
from projections.plans import AddPlan, ChangePlan, PlanPage, PlanQuery, PlanRow, PlansView

COLUMNS = (
    "id", "instance_id", "tenant_id", "title", "description", "plan_type", "status", "priority",
    "instructions", "version", "created_at", "updated_at",
)  # fmt: skip
CHANGEABLE = frozenset({"title", "description", "status", "priority", "instructions"})


class SQLPlansView(SQLView, PlansView):
    name = "plans"
    schema: ClassVar = (
        (
            "CREATE TABLE IF NOT EXISTS {t} ("
            "id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, tenant_id TEXT NOT NULL, "
            "title TEXT NOT NULL, description TEXT, plan_type TEXT NOT NULL, "
            "status TEXT NOT NULL, priority BIGINT NOT NULL, instructions TEXT, "
            "version BIGINT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
        ),
        "CREATE INDEX IF NOT EXISTS {t}_instance ON {t} (instance_id, created_at)",
    )
    indexes: ClassVar = ("_instance",)

    def apply_op(self, c: Cursor, op: Any, position: int) -> None:
        if isinstance(op, AddPlan):
            values = [getattr(op.row, col) for col in COLUMNS]
            self.run(
                c,
                f"INSERT INTO {{t}} ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(COLUMNS))}) ON CONFLICT (id) DO NOTHING",
                *values,
            )
        elif isinstance(op, ChangePlan):
            fields = {k: v for k, v in op.fields.items() if k in CHANGEABLE}
            fields.update(version=op.version, updated_at=op.updated_at)
            assignments = ", ".join(f"{k}=?" for k in fields)
            self.run(c, f"UPDATE {{t}} SET {assignments} WHERE id=?", *fields.values(), op.id)

    def list_plans(self, query: PlanQuery) -> PlanPage:
        filters = {
            "instance_id": query.instance_id,
            "status": query.status,
            "plan_type": query.plan_type,
        }
        rows, total = self.page(COLUMNS, filters, "created_at, id", query.limit, query.offset)
        return PlanPage([_row(r) for r in rows], total)

    def get_plan(self, instance_id: UUID, plan_id: UUID) -> PlanRow | None:
        with self.reading() as c:
            row = self.run(
                c,
                f"SELECT {', '.join(COLUMNS)} FROM {{t}} WHERE id=? AND instance_id=?",
                plan_id,
                instance_id,
            ).fetchone()
        return None if row is None else _row(row)


def _row(r: Row) -> PlanRow:
    return PlanRow(
        id=UUID(str(r["id"])),
        instance_id=UUID(str(r["instance_id"])),
        tenant_id=r["tenant_id"],
        title=r["title"],
        description=r["description"],
        plan_type=r["plan_type"],
        status=r["status"],
        priority=int(r["priority"]),
        instructions=r["instructions"],
        version=int(r["version"]),
        created_at=parse_time(r["created_at"]),
        updated_at=parse_time(r["updated_at"]),
    )
