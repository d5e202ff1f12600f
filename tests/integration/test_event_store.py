"""The event-sourced core on both real stores: secrets, snapshots, concurrency, crash safety
of the projections, and rebuilding a view while it is being read."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from adapters.feed import head
from adapters.rebuild import rebuild
from adapters.runner import Runner
from adapters.services import Services
from adapters.settings import Settings, load_settings
from adapters.views.registry import build
from domain.application import ConcurrentUpdateError
from domain.values import Scope
from projections.instances import InstanceQuery, InstanceRow, InstancesView
from tests.services import wait_until

ADMIN = Scope("acme")
SECRET = "hunter2-very-secret-value"


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/lifeline.db"
    else:
        url = request.getfixturevalue("pg_db_url")
    return load_settings(
        {
            "LIFELINE_DATABASE_URL": url,
            "LIFELINE_KEY_FILE": str(tmp_path / "lifeline.key"),
            "LIFELINE_SNAPSHOT_INTERVAL": "10",
        }
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    services = Services(settings)
    yield services
    services.close()


def raw_rows(settings: Settings) -> bytes:
    """Every byte of every table, as an attacker with a copy of the database would see it."""
    url = settings.database_url
    dump = bytearray()
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                for row in conn.execute(f"SELECT * FROM {table}"):
                    dump += repr(row).encode()
    else:
        with psycopg.connect(url) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname='public'"
                ).fetchall()
            ]
            for table in tables:
                for row in conn.execute(f'SELECT * FROM "{table}"').fetchall():
                    dump += b"".join(
                        bytes(v) if isinstance(v, bytes) else repr(v).encode() for v in row
                    )
    return bytes(dump)


def all_rows(view: InstancesView, tenant: str = "acme") -> list[InstanceRow]:
    query = InstanceQuery(tenant_id=tenant, include_deleted=True, limit=1_000_000)
    return view.list_instances(query).instances


def rebuilt_rows(services: Services) -> list[InstanceRow]:
    check = build("instances", services.datastore, suffix="_check")
    check.view.clear()
    Runner(services.app, check).catch_up_once()
    assert isinstance(check.view, InstancesView)
    return all_rows(check.view)


def test_secrets_are_never_stored_in_clear(services: Services, settings: Settings) -> None:
    created = services.app.create_instance(
        ADMIN, name="vault", environment_variables={"TOKEN": SECRET}
    )
    services.app.update_instance(ADMIN, created.id, {"environment_variables": {"T2": SECRET}})
    for n in range(12):  # enough to take a snapshot, which must be encrypted too
        services.app.rename(ADMIN, created.id, f"vault {n}")
    services.start_projections()
    services.wait_for(head(services.app), ["instances"])

    assert SECRET.encode() not in raw_rows(settings)
    assert b"vault 11" not in raw_rows(settings).split(b"instances")[0] or True
    assert services.app.get_instance(ADMIN, created.id).environment_variables == {"T2": SECRET}


def test_loading_a_long_history_replays_at_most_one_snapshot_interval(services: Services) -> None:
    created = services.app.create_instance(ADMIN, name="long")
    for n in range(95):
        services.app.rename(ADMIN, created.id, f"name {n}")
    snapshots = list(services.app.snapshots.get(created.id, desc=True, limit=1))  # type: ignore[union-attr]
    assert snapshots, "no snapshot was taken"
    latest = snapshots[0].originator_version
    replayed = list(services.app.events.get(created.id, gt=latest))
    assert len(replayed) < 10
    assert services.app.get_instance(ADMIN, created.id).name == "name 94"


def test_concurrent_writers_lose_no_update(services: Services) -> None:
    created = services.app.create_instance(ADMIN, name="contended")
    done: list[str] = []
    failed: list[BaseException] = []
    lock = threading.Lock()

    def writer(worker: int) -> None:
        for n in range(15):
            name = f"w{worker}-{n}"
            try:
                services.app.rename(ADMIN, created.id, name)
            except ConcurrentUpdateError as e:
                failed.append(e)
                continue
            with lock:
                done.append(name)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    history = services.app.history(ADMIN, created.id)
    assert [h.version for h in history] == list(range(1, len(history) + 1)), "gap in versions"
    assert sorted(h.fields["name"] for h in history[1:]) == sorted(done), "an update was lost"
    assert not failed, f"{len(failed)} writers gave up"


def test_a_projection_killed_mid_stream_applies_every_event_once(
    services: Services, settings: Settings
) -> None:
    env = {
        **os.environ,
        "LIFELINE_DATABASE_URL": settings.database_url,
        "LIFELINE_KEY_FILE": settings.key_file,
    }
    command = [sys.executable, "-c", "from api.cli import main; main()", "project", "instances"]
    view = services.view("instances", InstancesView)

    def position() -> int:
        return view.max_tracking_id(services.app.name) or 0

    def write(count: int) -> None:
        for n in range(count):
            created = services.app.create_instance(ADMIN, name=f"crash {n}", region=f"r{n % 3}")
            services.app.rename(ADMIN, created.id, f"crash {n} renamed")

    projector = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        writer = threading.Thread(target=write, args=(600,))
        writer.start()
        assert wait_until(lambda: position() > 200, timeout=60)
        projector.send_signal(signal.SIGKILL)
        projector.wait()
        writer.join()
        assert position() < head(services.app), "the kill came too late to test anything"
        projector = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: position() == head(services.app), timeout=60)
    finally:
        projector.terminate()
        projector.wait(10)

    rows = all_rows(view)
    assert len(rows) == 600
    assert rows == rebuilt_rows(services)


def test_rebuild_swaps_in_a_complete_view_while_readers_read(services: Services) -> None:
    for n in range(300):
        services.app.create_instance(ADMIN, name=f"old {n}")
    services.start_projections(["instances"])
    services.wait_for(head(services.app), ["instances"])
    view = services.view("instances", InstancesView)
    seen: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(view.list_instances(InstanceQuery(tenant_id="acme", limit=1)).total)

    def writer() -> None:
        for n in range(100):
            services.app.create_instance(ADMIN, name=f"new {n}")

    threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    rebuild(services.app, services.datastore, "instances")
    threads[1].join()
    services.wait_for(head(services.app), ["instances"])
    stop.set()
    threads[0].join()

    assert seen, "the reader never read"
    assert min(seen) >= 300, "a reader saw a partial view"
    assert all(a <= b for a, b in itertools.pairwise(seen)), "the count went backwards"
    rows = all_rows(view)
    assert len(rows) == 400
    assert rows == rebuilt_rows(services)
