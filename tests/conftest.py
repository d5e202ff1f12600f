"""Fixtures for real services. Under CI=true a service that cannot be reached or started is a
failure, never a skip."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.services import (
    ThrowawayNats,
    ThrowawayPostgres,
    nats_reachable,
    postgres_reachable,
)

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_URL = os.environ.get("LIFELINE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("LIFELINE_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable and no throwaway server could be started: {error}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL server URL (an existing database) the tests may create databases on."""
    if postgres_reachable(PG_URL):
        yield PG_URL
        return
    try:
        server = ThrowawayPostgres().start()
    except Exception as error:
        _unavailable("PostgreSQL", error)
        raise
    try:
        yield server.url
    finally:
        server.close()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def fresh_database(pg_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"lifeline_t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(pg_url, name)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_db_url(pg_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with fresh_database(pg_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every behaviour runs on both stores."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/lifeline.db"
    return str(request.getfixturevalue("pg_db_url"))


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    if nats_reachable(NATS_URL):
        yield NATS_URL
        return
    try:
        server = ThrowawayNats().start()
    except Exception as error:
        _unavailable("NATS", error)
        raise
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def own_nats() -> Iterator[ThrowawayNats]:
    """A NATS server of the test's own, for tests that stop or restart it."""
    try:
        server = ThrowawayNats().start()
    except Exception as error:
        _unavailable("nats-server binary", error)
        raise
    try:
        yield server
    finally:
        server.close()
