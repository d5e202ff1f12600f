"""The relay: publishes every stored event to NATS JetStream, in store order.

The event store is the outbox. The relay reads the notification log after its recorded
position, publishes a batch asynchronously (at most `max_in_flight` unacknowledged), and moves
its position past the batch only once JetStream has acknowledged every message in it. A relay
that dies, or a NATS server that restarts, makes it publish some events again from the recorded
position; the stream's duplicate window drops those by their stable `Nats-Msg-Id`, so each
stored event is in the stream exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import nats
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from adapters.event_message import MSG_ID_HEADER, POSITION_HEADER, MessageEncoder, Outgoing
from adapters.views.position import RelayPosition
from domain.application import Lifeline

log = logging.getLogger(__name__)
ACK_TIMEOUT = 5.0
IDLE_WAIT = 0.25
RETRY_DELAY = 0.5


class Relay:
    name = "relay"

    def __init__(
        self,
        app: Lifeline,
        datastore: SQLiteDatastore | PostgresDatastore,
        nats_url: str,
        stream: str = "LIFELINE",
        prefix: str = "lifeline",
        duplicate_window: float = 120.0,
        max_in_flight: int = 1000,
    ) -> None:
        self.app = app
        self.nats_url = nats_url
        self.stream = stream
        self.prefix = prefix
        self.duplicate_window = duplicate_window
        self.max_in_flight = max_in_flight
        self.tracking = RelayPosition(datastore)
        self.tracking.create_table()
        self.encoder = MessageEncoder(app, prefix=prefix)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.published = 0
        self.error: BaseException | None = None

    def position(self) -> int:
        return self.tracking.max_tracking_id(self.app.name) or 0

    def start(self) -> Relay:
        self.thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        while not self.stopping.is_set():
            try:
                await self._session()
            except Exception as e:  # noqa: BLE001 - NATS down or store hiccup: retry, never die
                self.error = e
                self.connected.clear()
                log.warning("relay: %s; retrying", e)
                await asyncio.sleep(RETRY_DELAY)

    async def _session(self) -> None:
        nc = await nats.connect(
            self.nats_url,
            connect_timeout=2,
            reconnect_time_wait=0.2,
            max_reconnect_attempts=-1,
            allow_reconnect=True,
        )
        try:
            js = nc.jetstream(publish_async_max_pending=self.max_in_flight)
            await self.ensure_stream(js)
            self.connected.set()
            await self._follow(js)
        finally:
            self.connected.clear()
            await nc.close()

    async def ensure_stream(self, js: Any) -> None:
        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.prefix}.>"],
            storage=StorageType.FILE,
            duplicate_window=self.duplicate_window,
        )
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)

    async def _follow(self, js: Any) -> None:
        position = await asyncio.to_thread(self.position)
        waiter = self.app.recorder.waiter()  # type: ignore[attr-defined]
        try:
            while not self.stopping.is_set():
                waiter.arm()
                batch = await asyncio.to_thread(self._next_batch, position)
                if not batch:
                    await asyncio.to_thread(waiter.wait, IDLE_WAIT)
                    continue
                try:
                    await self._publish(js, batch)
                except TimeoutError:
                    # NATS went away mid-batch; the client reconnects by itself. The position
                    # did not move, so the whole batch goes again and dedup drops repeats.
                    log.warning("relay: acknowledgements timed out; republishing the batch")
                    continue
                position = batch[-1].position
                await asyncio.to_thread(self.tracking.record, position, self.app.name)
                self.published += len(batch)
        finally:
            waiter.close()

    def _next_batch(self, position: int) -> list[Outgoing]:
        found = self.app.recorder.select_notifications(
            start=position, limit=self.max_in_flight, inclusive_of_start=False
        )
        return [self.encoder.encode(n) for n in found]

    async def _publish(self, js: Any, batch: list[Outgoing]) -> None:
        acks = [
            await js.publish_async(
                m.subject,
                m.payload,
                headers={MSG_ID_HEADER: m.msg_id, POSITION_HEADER: str(m.position)},
            )
            for m in batch
        ]
        async with asyncio.timeout(ACK_TIMEOUT):
            await asyncio.gather(*acks)
