"""The `instances` view in SQL (one class serves SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from adapters.views.sql import Cursor, Row, SQLView, parse_time
from projections.instances import (
    AddInstance,
    ChangeInstance,
    InstancePage,
    InstanceQuery,
    InstanceRow,
    InstancesView,
)

COLUMNS = (
    "id", "tenant_id", "site_id", "user_id", "name", "instance_type", "status", "region",
    "runtime_type", "workload_type", "preset_id", "tier_id", "agent_id", "hostname",
    "ip_address", "health_status", "provisioning_stage", "error_message", "version",
    "position", "created_at", "updated_at",
)  # fmt: skip
CHANGEABLE = frozenset(COLUMNS) - {"id", "tenant_id", "position", "created_at"}
# Filters the per-status counts cannot answer: with any of these, the rows are counted.
COUNTED_BY_ROWS = ("site_id", "user_id", "instance_type", "region", "name_contains")


class SQLInstancesView(SQLView, InstancesView):
    name = "instances"
    schema: ClassVar = (
        (
            "CREATE TABLE IF NOT EXISTS {t} ("
            "id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, site_id TEXT, user_id TEXT, "
            "name TEXT NOT NULL, name_lower TEXT NOT NULL, instance_type TEXT NOT NULL, "
            "status TEXT NOT NULL, region TEXT, runtime_type TEXT, workload_type TEXT, "
            "preset_id TEXT, tier_id TEXT, agent_id TEXT, hostname TEXT, ip_address TEXT, "
            "health_status TEXT NOT NULL, provisioning_stage TEXT, error_message TEXT, "
            "version BIGINT NOT NULL, position BIGINT NOT NULL, "
            "created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
        ),
        # Every list is per tenant, newest first; the second columns serve the filters.
        "CREATE INDEX IF NOT EXISTS {t}_tenant_pos ON {t} (tenant_id, position)",
        "CREATE INDEX IF NOT EXISTS {t}_tenant_status ON {t} (tenant_id, status, position)",
        "CREATE INDEX IF NOT EXISTS {t}_tenant_site ON {t} (tenant_id, site_id, position)",
        "CREATE INDEX IF NOT EXISTS {t}_tenant_user ON {t} (tenant_id, user_id, position)",
        "CREATE INDEX IF NOT EXISTS {t}_tenant_type ON {t} (tenant_id, instance_type, position)",
        "CREATE INDEX IF NOT EXISTS {t}_tenant_region ON {t} (tenant_id, region, position)",
        # How many instances each tenant has in each status, kept with the rows: a list's
        # total then costs one small read instead of counting the tenant's rows each time.
        (
            "CREATE TABLE IF NOT EXISTS {t}_counts (tenant_id TEXT NOT NULL, "
            "status TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (tenant_id, status))"
        ),
    )
    tables: ClassVar = ("", "_counts")
    indexes: ClassVar = (
        "_tenant_pos", "_tenant_status", "_tenant_site", "_tenant_user", "_tenant_type",
        "_tenant_region",
    )  # fmt: skip

    def apply_op(self, c: Cursor, op: Any, position: int) -> None:
        if isinstance(op, AddInstance):
            row = op.row
            values = [getattr(row, col) for col in COLUMNS]
            values[COLUMNS.index("position")] = position
            inserted = self.run(
                c,
                f"INSERT INTO {{t}} ({', '.join(COLUMNS)}, name_lower) "
                f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))}) ON CONFLICT (id) DO NOTHING "
                "RETURNING id",
                *values,
                row.name.lower(),
            ).fetchone()
            if inserted is not None:
                self._count(c, row.tenant_id, row.status, 1)
        elif isinstance(op, ChangeInstance):
            fields = {k: v for k, v in op.fields.items() if k in CHANGEABLE}
            if "status" in fields:
                before = self.run(
                    c, "SELECT tenant_id, status FROM {t} WHERE id=?", op.id
                ).fetchone()
                if before is not None and before["status"] != fields["status"]:
                    self._count(c, before["tenant_id"], before["status"], -1)
                    self._count(c, before["tenant_id"], fields["status"], 1)
            fields.update(version=op.version, updated_at=op.updated_at)
            if "name" in fields:
                fields["name_lower"] = fields["name"].lower()
            assignments = ", ".join(f"{k}=?" for k in fields)
            self.run(c, f"UPDATE {{t}} SET {assignments} WHERE id=?", *fields.values(), op.id)

    def _count(self, c: Cursor, tenant_id: str, status: str, delta: int) -> None:
        self.run(
            c,
            "INSERT INTO {t}_counts (tenant_id, status, n) VALUES (?, ?, ?) "
            "ON CONFLICT (tenant_id, status) DO UPDATE SET n = {t}_counts.n + excluded.n",
            tenant_id, status, delta,
        )  # fmt: skip

    def _total(self, c: Cursor, query: InstanceQuery, condition: str, params: list[Any]) -> int:
        if any(getattr(query, f) is not None for f in COUNTED_BY_ROWS):
            row = self.run(c, f"SELECT COUNT(*) AS n FROM {{t}} WHERE {condition}", *params)
            return int(row.fetchone()["n"])
        where, values = "tenant_id=?", [query.tenant_id]
        if query.status is not None:
            where, values = where + " AND status=?", [*values, query.status]
        elif not query.include_deleted:
            where += " AND status<>'deleted'"
        found = self.run(
            c, f"SELECT COALESCE(SUM(n), 0) AS n FROM {{t}}_counts WHERE {where}", *values
        ).fetchone()
        return int(found["n"])

    def list_instances(self, query: InstanceQuery) -> InstancePage:
        where = ["tenant_id=?"]
        params: list[Any] = [query.tenant_id]
        for column in ("site_id", "user_id", "status", "instance_type", "region"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column}=?")
                params.append(value)
        if not query.include_deleted and query.status != "deleted":
            where.append("status<>'deleted'")
        if query.name_contains:
            where.append("name_lower LIKE ? ESCAPE '\\'")
            params.append(f"%{_escape_like(query.name_contains.lower())}%")
        condition = " AND ".join(where)
        page_where = condition
        page_params = list(params)
        if query.after is not None:
            page_where += " AND position" + ("<?" if query.newest_first else ">?")
            page_params.append(query.after)
        order = "DESC" if query.newest_first else "ASC"
        offset = 0 if query.after is not None else query.offset
        with self.reading() as c:
            rows = self.run(
                c,
                f"SELECT {', '.join(COLUMNS)} FROM {{t}} WHERE {page_where} "
                f"ORDER BY position {order} LIMIT ? OFFSET ?",
                *page_params, query.limit + 1, offset,
            ).fetchall()  # fmt: skip
            total = self._total(c, query, condition, params)
        more = len(rows) > query.limit
        instances = [_row(r) for r in rows[: query.limit]]
        return InstancePage(instances, total, instances[-1].position if more else None)

    def get_row(self, instance_id: UUID) -> InstanceRow | None:
        with self.reading() as c:
            row = self.run(
                c, f"SELECT {', '.join(COLUMNS)} FROM {{t}} WHERE id=?", instance_id
            ).fetchone()
        return None if row is None else _row(row)

    def count_by_status(self, tenant_id: str) -> dict[str, int]:
        with self.reading() as c:
            rows = self.run(
                c, "SELECT status, n FROM {t}_counts WHERE tenant_id=? AND n > 0", tenant_id
            ).fetchall()
        return {r["status"]: int(r["n"]) for r in rows}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _row(r: Row) -> InstanceRow:
    data = {col: r[col] for col in COLUMNS}
    data["id"] = UUID(str(data["id"]))
    data["created_at"] = parse_time(data["created_at"])
    data["updated_at"] = parse_time(data["updated_at"])
    return InstanceRow(**data)
