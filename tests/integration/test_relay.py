"""The relay against a real nats-server, on both stores: every stored event lands in the
stream exactly once and in store order, whatever dies in between."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from adapters.event_message import MSG_ID_HEADER, decode
from adapters.services import Services
from adapters.settings import Settings, load_settings
from domain.values import Scope
from tests.services import ThrowawayNats, wait_until

ADMIN = Scope("acme")


def relay_settings(database_url: str, tmp: Path, nats_url: str) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return load_settings(
        {
            "LIFELINE_DATABASE_URL": database_url,
            "LIFELINE_KEY_FILE": str(tmp / "key"),
            "LIFELINE_NATS_URL": nats_url,
            "LIFELINE_NATS_STREAM": f"TEST_{tag}",
            "LIFELINE_NATS_SUBJECT_PREFIX": f"t{tag}",
            "LIFELINE_PROVIDER": "simulated",
        }
    )


def head(services: Services) -> int:
    return services.app.recorder.max_notification_id() or 0


def stored_ids(services: Services) -> list[str]:
    found = services.app.recorder.select_notifications(start=1, limit=1_000_000)
    return [f"{n.originator_id}:{n.originator_version}" for n in found]


async def _stream_ids(nats_url: str, stream: str) -> list[str]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        ids = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, seq)
            ids.append((message.headers or {})[MSG_ID_HEADER])
        return ids
    finally:
        await nc.close()


def stream_ids(settings: Settings) -> list[str]:
    return asyncio.run(_stream_ids(settings.nats_url, settings.nats_stream))


async def _delete_stream(nats_url: str, stream: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().delete_stream(stream)
    except Exception:  # noqa: S110 - it may never have been made
        pass
    finally:
        await nc.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, nats_url: str) -> Iterator[Settings]:
    settings = relay_settings(database_url, tmp_path, nats_url)
    yield settings
    asyncio.run(_delete_stream(settings.nats_url, settings.nats_stream))


def burst(services: Services, count: int) -> list[Any]:
    ids = []
    for n in range(count):
        created = services.app.create_instance(ADMIN, name=f"burst {n}")
        services.app.rename(ADMIN, created.id, f"burst {n} renamed")
        ids.append(created.id)
    return ids


def relayed_everything(services: Services, settings: Settings) -> bool:
    return stream_ids(settings) == stored_ids(services)


def test_a_burst_lands_exactly_once_in_store_order(settings: Settings) -> None:
    services = Services(settings)
    try:
        relay = services.start_relay()
        burst(services, 150)
        wait_until(lambda: relay.position() == head(services), 30)
        ids = stream_ids(settings)
        assert ids == stored_ids(services)
        assert len(ids) == len(set(ids)) == 300
        assert services.lags()["relay"] == 0
    finally:
        services.close()


def test_messages_carry_subject_body_and_masked_secrets(settings: Settings) -> None:
    services = Services(settings)
    try:
        relay = services.start_relay()
        created = services.app.create_instance(
            ADMIN, name="subject", environment_variables={"TOKEN": "top-secret"}
        )
        services.app.rename(ADMIN, created.id, "renamed")
        wait_until(lambda: relay.position() == head(services), 30)

        async def read() -> list[Any]:
            nc = await nats.connect(settings.nats_url)
            js = nc.jetstream()
            messages = [await js.get_msg(settings.nats_stream, seq) for seq in (1, 2)]
            await nc.close()
            return messages

        first, second = asyncio.run(read())
        prefix = settings.nats_subject_prefix
        assert first.subject == f"{prefix}.acme.instances.{created.id}.Created"
        assert second.subject == f"{prefix}.acme.instances.{created.id}.Renamed"
        assert b"top-secret" not in first.data
        body = decode(first.data)
        assert (body.position, body.version, body.tenant, body.type) == (1, 1, "acme", "Created")
        assert body.data["environment_variables"] == {"TOKEN": "********"}
        assert decode(second.data).tenant == "acme", "later events know their tenant too"
    finally:
        services.close()


def test_a_relay_behind_the_stream_resumes_from_it_without_republishing(
    settings: Settings,
) -> None:
    """Killed after the acknowledgements but before recording its position, the relay finds
    its events in the stream on restart and moves past them: exactly once even after the
    duplicate window has passed (nothing is published again, so dedup is not needed)."""
    services = Services(settings)
    try:
        relay = services.start_relay()
        burst(services, 20)
        wait_until(lambda: relay.position() == head(services), 30)
        services.close()
        services = Services(settings)
        with services.datastore.transaction(commit=True) as c:
            c.execute("UPDATE relay_tracking SET notification_id = 0")
        assert _relay_position(services) == 0
        again = services.start_relay()
        wait_until(lambda: again.position() == head(services), 30)
        assert again.published == 0
        burst(services, 5)
        wait_until(lambda: again.position() == head(services), 30)
        assert again.published == 10
        assert stream_ids(settings) == stored_ids(services)
    finally:
        services.close()


def relay_command(settings: Settings) -> tuple[list[str], dict[str, str]]:
    env = {
        **os.environ,
        "LIFELINE_DATABASE_URL": settings.database_url,
        "LIFELINE_KEY_FILE": settings.key_file,
        "LIFELINE_NATS_URL": settings.nats_url,
        "LIFELINE_NATS_STREAM": settings.nats_stream,
        "LIFELINE_NATS_SUBJECT_PREFIX": settings.nats_subject_prefix,
        "LIFELINE_PROVIDER": "simulated",
    }
    return [sys.executable, "-c", "from api.cli import main; main()", "relay"], env


def test_a_relay_killed_mid_burst_still_publishes_exactly_once(settings: Settings) -> None:
    services = Services(settings)
    command, env = relay_command(settings)
    relay = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    writing = threading.Event()
    writing.set()

    def write() -> None:
        while writing.is_set():
            burst(services, 1)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        # Killed once it has published something, while the writer is still writing.
        wait_until(lambda: _relay_position(services) > 20, 30, 0.005)
        relay.send_signal(signal.SIGKILL)
        relay.wait()
        killed_at = head(services)
        wait_until(lambda: head(services) > killed_at + 100, 30)
        writing.clear()
        writer.join()
        assert _relay_position(services) < head(services)
        relay = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        wait_until(lambda: relayed_everything(services, settings), 60, 0.2)
    finally:
        writing.clear()
        relay.terminate()
        relay.wait(10)
        services.close()


def _relay_position(services: Services) -> int:
    from adapters.views.position import RelayPosition  # noqa: PLC0415

    return RelayPosition(services.datastore).max_tracking_id(services.app.name) or 0


def test_the_relay_rides_out_a_nats_restart(
    database_url: str, tmp_path: Path, own_nats: ThrowawayNats
) -> None:
    settings = relay_settings(database_url, tmp_path, own_nats.url)
    services = Services(settings)
    try:
        relay = services.start_relay()
        writer = threading.Thread(target=burst, args=(services, 300))
        writer.start()
        wait_until(lambda: relay.position() > 50, 30)
        own_nats.stop()  # returns once the server process has exited
        own_nats.start()
        writer.join()
        wait_until(lambda: relayed_everything(services, settings), 60, 0.2)
    finally:
        services.close()


def test_nats_down_does_not_stop_commands_and_the_backlog_drains(
    database_url: str, tmp_path: Path, own_nats: ThrowawayNats
) -> None:
    settings = relay_settings(database_url, tmp_path, own_nats.url)
    services = Services(settings)
    try:
        relay = services.start_relay()
        burst(services, 5)
        wait_until(lambda: relay.position() == head(services), 30)
        own_nats.stop()
        down_until = time.monotonic() + 10
        accepted = 0
        while time.monotonic() < down_until:
            burst(services, 1)
            accepted += 1
        assert accepted > 20, "commands must keep succeeding while NATS is down"
        assert relay.position() < head(services)
        assert services.lags()["relay"] > 0
        own_nats.start()
        wait_until(lambda: relayed_everything(services, settings), 60, 0.2)
        assert services.lags()["relay"] == 0
    finally:
        services.close()


def test_events_tail_prints_events_from_a_position(settings: Settings) -> None:
    services = Services(settings)
    try:
        relay = services.start_relay()
        ids = burst(services, 3)
        wait_until(lambda: relay.position() == head(services), 30)
        _, env = relay_command(settings)
        command = [sys.executable, "-c", "from api.cli import main; main()", "events", "tail"]
        done = subprocess.run(
            [*command, "--since", "2", "--count", "3", "--json"],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        bodies = [decode(line.encode()) for line in done.stdout.splitlines()]
        assert [b.position for b in bodies] == [3, 4, 5]
        only = ["--type", "Renamed", "--instance", str(ids[1])]
        typed = subprocess.run(
            [*command, "--since", "0", "--count", "1", *only],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        [line] = typed.stdout.splitlines()
        assert str(ids[1]) in line
        assert "\tRenamed\t" in line
    finally:
        services.close()
