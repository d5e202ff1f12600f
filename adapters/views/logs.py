"""The `logs` view in SQL (one class serves SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any, ClassVar
from uuid import UUID

from adapters.views.sql import Cursor, Row, SQLView, parse_time
from projections.logs import AddLog, LogPage, LogQuery, LogRow, LogsView

COLUMNS = (
    "id", "instance_id", "tenant_id", "seq", "log_type", "level", "message", "details", "stage",
    "created_at",
)  # fmt: skip


class SQLLogsView(SQLView, LogsView):
    name = "logs"
    schema: ClassVar = (
        (
            "CREATE TABLE IF NOT EXISTS {t} ("
            "id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, tenant_id TEXT, seq BIGINT NOT NULL, "
            "log_type TEXT NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL, "
            "details TEXT NOT NULL, stage TEXT, created_at TEXT NOT NULL)"
        ),
        "CREATE INDEX IF NOT EXISTS {t}_instance_seq ON {t} (instance_id, seq)",
    )
    indexes: ClassVar = ("_instance_seq",)

    def apply_op(self, c: Cursor, op: Any, position: int) -> None:
        if isinstance(op, AddLog):
            row = op.row
            values = [getattr(row, col) for col in COLUMNS]
            values[COLUMNS.index("seq")] = position
            values[COLUMNS.index("details")] = json.dumps(row.details, sort_keys=True, default=str)
            self.run(
                c,
                f"INSERT INTO {{t}} ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(COLUMNS))}) ON CONFLICT (id) DO NOTHING",
                *values,
            )

    def list_logs(self, query: LogQuery) -> LogPage:
        filters = {
            "instance_id": query.instance_id,
            "log_type": query.log_type,
            "level": query.level,
            "stage": query.stage,
        }
        rows, total = self.page(COLUMNS, filters, "seq", query.limit, query.offset)
        return LogPage([_row(r) for r in rows], total)


def _row(r: Row) -> LogRow:
    return LogRow(
        id=r["id"],
        instance_id=UUID(str(r["instance_id"])),
        tenant_id=r["tenant_id"],
        seq=int(r["seq"]),
        log_type=r["log_type"],
        level=r["level"],
        message=r["message"],
        details=json.loads(r["details"]),
        stage=r["stage"],
        created_at=parse_time(r["created_at"]),
    )
