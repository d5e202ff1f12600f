"""The NATS relay (issue: events on NATS JetStream), on PostgreSQL and the machine's NATS.

1. Throughput publishing a stored backlog of 100,000 events, against a raw nats-py
   `publish_async` loop of the same (pre-encoded) messages into a stream like Lifeline's,
   measured in the same run. Targets: at least 20,000 events/s and at least 0.5x the raw loop.
2. End-to-end lag from commit to a subscriber while events are stored at a steady 500/s.
   Target: p99 at most 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from tempfile import mkdtemp

import nats
from nats.aio.msg import Msg
from nats.js.api import StorageType, StreamConfig

from adapters.event_message import MSG_ID_HEADER, POSITION_HEADER, MessageEncoder
from adapters.relay import EXPECTED_LAST_SEQUENCE_HEADER, Relay
from adapters.settings import load_settings
from adapters.store import datastore_of, open_application
from bench.common import NATS_URL, fresh_database, median, percentile, show
from domain.application import Lifeline
from domain.log_entry import LogEntry

BACKLOG = int(os.environ.get("BENCH_RELAY_EVENTS", "100000"))
RATE = 500
STEADY_SECONDS = float(os.environ.get("BENCH_RELAY_SECONDS", "10"))
WRITERS = 4
PER_COMMIT = 5


def store_backlog(app: Lifeline, count: int) -> None:
    instance_id = uuid.uuid4()
    now = datetime.now(UTC)
    for start in range(0, count, 1000):
        entries = [
            LogEntry.record(
                entry_id=uuid.uuid4(), instance_id=instance_id, tenant_id="bench",
                log_type="system", message=f"line {n}", at=now,
            )
            for n in range(start, min(count, start + 1000))
        ]  # fmt: skip
        app.save(*entries)


async def raw_publish(
    messages: list[tuple[str, bytes, str, int]], stream: str, prefix: str
) -> float:
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream(publish_async_max_pending=1000)
    await js.add_stream(
        StreamConfig(name=stream, subjects=[f"{prefix}.>"], storage=StorageType.FILE,
                     duplicate_window=120)
    )  # fmt: skip
    started = time.perf_counter()
    # The idiomatic loop: publish_async stalls by itself at max_pending unacknowledged, then
    # wait for the rest. Same headers as the relay's, so only the relay's own work differs.
    futures = []
    for sequence, (subject, payload, msg_id, position) in enumerate(messages):
        headers = {
            MSG_ID_HEADER: msg_id,
            POSITION_HEADER: str(position),
            EXPECTED_LAST_SEQUENCE_HEADER: str(sequence),
        }
        futures.append(await js.publish_async(subject, payload, headers=headers))
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await js.delete_stream(stream)
    await nc.close()
    return elapsed


async def drop_stream(name: str) -> None:
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


def throughput(url: str, tmp: Path) -> list[list[object]]:
    settings = load_settings({"LIFELINE_DATABASE_URL": url, "LIFELINE_KEY_FILE": str(tmp / "k")})
    app = open_application(settings)
    store_backlog(app, BACKLOG)
    tag = uuid.uuid4().hex[:6]
    encoder = MessageEncoder(app, prefix=f"raw{tag}")
    found = app.recorder.select_notifications(start=1, limit=BACKLOG)
    encode_started = time.perf_counter()
    outgoing = [encoder.encode(n) for n in found]
    encode_rate = len(outgoing) / (time.perf_counter() - encode_started)
    messages = [(m.subject, m.payload, m.msg_id, m.position) for m in outgoing]
    raw_seconds = asyncio.run(raw_publish(messages, f"RAW{tag}", f"raw{tag}"))

    relay = Relay(app, datastore_of(app), NATS_URL, stream=f"REL{tag}", prefix=f"rel{tag}")
    started = time.perf_counter()
    relay.start()
    head = app.recorder.max_notification_id() or 0
    while relay.position() < head:
        time.sleep(0.01)
    relay_seconds = time.perf_counter() - started
    relay.stop()
    asyncio.run(drop_stream(f"REL{tag}"))
    app.close()
    raw_rate, relay_rate = BACKLOG / raw_seconds, BACKLOG / relay_seconds
    return [
        ["raw nats-py publish_async, pre-encoded (baseline)", raw_rate, 1.0, "-"],
        ["encoding only (decrypt + JSON), for reference", encode_rate, encode_rate / raw_rate, "-"],
        ["relay: store → JetStream, acked, position recorded", relay_rate, relay_rate / raw_rate,
         ">= 20,000/s and >= 0.5x"],
    ]  # fmt: skip


def steady_lag(url: str, tmp: Path) -> list[list[object]]:
    settings = load_settings({"LIFELINE_DATABASE_URL": url, "LIFELINE_KEY_FILE": str(tmp / "k2")})
    app = open_application(settings)
    tag = uuid.uuid4().hex[:6]
    relay = Relay(app, datastore_of(app), NATS_URL, stream=f"LAG{tag}", prefix=f"lag{tag}")
    relay.start()
    committed: dict[int, float] = {}
    lags: list[float] = []
    done = threading.Event()

    def write(rate: float) -> None:
        # One save costs several milliseconds on a busy PostgreSQL, so paced writers share
        # the load and each commit holds a few entries (each its own event and position).
        instance_id = uuid.uuid4()
        interval = PER_COMMIT / rate
        next_at = time.perf_counter()
        n = 0
        while not done.is_set():
            entries = [
                LogEntry.record(
                    entry_id=uuid.uuid4(), instance_id=instance_id, tenant_id="bench",
                    log_type="system", message=f"steady {n + k}", at=datetime.now(UTC),
                )
                for k in range(PER_COMMIT)
            ]  # fmt: skip
            recordings = app.save(*entries)
            at = time.perf_counter()
            for recording in recordings:
                committed[recording.notification.id] = at
            n += PER_COMMIT
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))

    async def listen() -> None:
        nc = await nats.connect(NATS_URL)

        async def received(msg: Msg) -> None:
            position = int((msg.headers or {})[POSITION_HEADER])
            at = committed.get(position)
            if at is not None:
                lags.append(time.perf_counter() - at)

        await nc.subscribe(f"lag{tag}.>", cb=received)
        relay.connected.wait(10)
        writers = [threading.Thread(target=write, args=(RATE / WRITERS,)) for _ in range(WRITERS)]
        for writer in writers:
            writer.start()
        await asyncio.sleep(STEADY_SECONDS)
        done.set()
        for writer in writers:
            writer.join()
        await asyncio.sleep(0.5)
        await nc.close()

    asyncio.run(listen())
    relay.stop()
    asyncio.run(drop_stream(f"LAG{tag}"))
    app.close()
    achieved = len(committed) / STEADY_SECONDS
    load = (
        f"commit → subscriber, asked {RATE}/s, stored {achieved:.0f}/s "
        f"({WRITERS} writers, {PER_COMMIT} events a commit)"
    )
    return [[load, len(lags), median(lags) * 1000, percentile(lags, 99) * 1000, "p99 <= 50 ms"]]


def main() -> None:
    tmp = Path(mkdtemp(prefix="lifeline-bench-relay-"))
    with fresh_database("relay") as url:
        rows = throughput(url, tmp)
    show(f"Relay throughput, backlog of {BACKLOG:,} events", rows,
         ["what", "events/s", "ratio to raw", "target"])  # fmt: skip
    with fresh_database("lag") as url:
        rows = steady_lag(url, tmp)
    show("Relay end-to-end lag", rows, ["load", "events", "p50 ms", "p99 ms", "target"])
