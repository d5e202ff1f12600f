"""What every benchmark shares: a fresh PostgreSQL database, percentiles, and the table."""

from __future__ import annotations

import os
import statistics
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from rich.console import Console
from rich.table import Table

SERVER_URL = os.environ.get(
    "LIFELINE_BENCH_DATABASE_URL",
    os.environ.get("LIFELINE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
)
NATS_URL = os.environ.get("LIFELINE_BENCH_NATS_URL", "nats://127.0.0.1:4222")
console = Console()


@contextmanager
def fresh_database(prefix: str = "bench") -> Iterator[str]:
    """A new, empty database on the benchmark server, dropped afterwards."""
    name = f"lifeline_{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(SERVER_URL)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(samples: Sequence[float], pct: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def show(title: str, rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    table = Table(title=title)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
