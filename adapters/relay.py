"""The relay: publishes every stored event to NATS JetStream, in store order, exactly once.

The event store is the outbox. The relay reads the notification log after its recorded
position and keeps up to `max_in_flight` publishes unacknowledged (`publish_async`). Its
position moves only over the contiguous prefix of acknowledged events, so nothing is ever
skipped.

Three things together make every stored event land in the stream once and in store order:

- Each message carries `Nats-Msg-Id` = the stable event id, so a retry inside the stream's
  duplicate window is dropped by JetStream (and answered with the original's acknowledgement).
- Each message also carries `Nats-Expected-Last-Sequence`: the stream accepts it only right
  after its predecessor. If a message is lost on a dying connection while later ones get
  through (buffered and flushed on reconnect, or a server that comes back between two
  messages), the later ones are refused instead of overtaking it. The stream therefore always
  holds a contiguous prefix of the store's events.
- On every (re)connection the relay resynchronises: when the stream's last message is an event
  of this store beyond the recorded position (the relay died between the acknowledgement and
  recording its position), it moves its position there instead of publishing those events
  again. So exactly-once holds even when the restart comes after the duplicate window.

Any failure (NATS down, a refused message, an acknowledgement that does not come) ends the
session; a new one reconnects, resynchronises and carries on. Command handling never waits for
any of this: the relay only reads the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections import deque
from typing import Any
from uuid import UUID

import nats
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from nats.js.api import StorageType, StreamConfig, StreamInfo
from nats.js.errors import NotFoundError

from adapters.event_message import (
    MSG_ID_HEADER,
    POSITION_HEADER,
    MessageEncoder,
    Outgoing,
    event_id,
)
from adapters.views.position import RelayPosition
from domain.application import Lifeline

log = logging.getLogger(__name__)

EXPECTED_LAST_SEQUENCE_HEADER = "Nats-Expected-Last-Sequence"
# No acknowledgement progress for this long means the connection is no good: start over.
ACK_TIMEOUT = 5.0
# How long one wait (for the store, or for acknowledgements) lasts before the loop looks at
# the stop flag again; bounds how long `stop()` takes.
IDLE_WAIT = 0.25
RETRY_DELAY = 0.5
# Record the position at most this often while busy (each record is a transaction); it is
# always recorded once nothing is in flight, so an idle relay's position is exact.
RECORD_INTERVAL = 0.1


class ConnectionLostError(Exception):
    """The NATS connection went away with publishes unacknowledged."""


class Window:
    """The publishes in flight, in store order, and how far they are acknowledged."""

    def __init__(self) -> None:
        self.in_flight: deque[tuple[int, asyncio.Future[Any]]] = deque()
        self.acked = 0  # every event up to here is acknowledged
        self.read = 0  # the last position handed to publish
        self.recorded = 0
        self.recorded_at = time.monotonic()
        self.last_seq = 0  # the stream sequence the next message expects before it
        self.progress_at = time.monotonic()

    def begin(self, position: int, last_seq: int) -> None:
        self.acked = self.read = self.recorded = position
        self.last_seq = last_seq

    def add(self, position: int, future: asyncio.Future[Any]) -> None:
        if not self.in_flight:
            self.progress_at = time.monotonic()
        self.in_flight.append((position, future))
        self.read = position
        self.last_seq += 1

    def settle(self, raising: bool = True) -> int:
        """Moves over the acknowledged prefix; returns how many it moved over. Raises the
        first failed publish's error (unless told not to, and then stops there)."""
        moved = 0
        while self.in_flight and self.in_flight[0][1].done():
            position, future = self.in_flight[0]
            if not raising and (future.cancelled() or future.exception() is not None):
                break
            future.result()
            self.in_flight.popleft()
            self.acked = position
            moved += 1
        if moved:
            self.progress_at = time.monotonic()
        return moved

    async def wait_for_room(self, refill: int, capacity: int) -> None:
        """Waits (briefly) until enough acknowledgements are in to refill the window."""
        if time.monotonic() - self.progress_at > ACK_TIMEOUT:
            raise TimeoutError("no acknowledgement from JetStream in time")
        room = capacity - len(self.in_flight)
        need = min(len(self.in_flight), max(1, refill - room))
        await asyncio.wait({self.in_flight[need - 1][1]}, timeout=IDLE_WAIT)

    def fail(self, error: Exception) -> None:
        # Fail whatever waits for an acknowledgement at once, rather than after
        # ACK_TIMEOUT: those messages may never have reached the server.
        for _, future in self.in_flight:
            if not future.done():
                future.set_exception(error)

    def abandon(self) -> None:
        for _, future in self.in_flight:
            if future.done():
                if not future.cancelled():
                    future.exception()  # retrieved: no "never retrieved" warnings
            else:
                future.cancel()


class Relay:
    """A background worker (a thread running an asyncio loop) for `Services.add_worker`."""

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
        self.max_in_flight = max(1, max_in_flight)
        # Fetch from the store once this much room is free, so a busy relay reads in batches
        # rather than one row per acknowledgement.
        self.refill = max(1, self.max_in_flight // 4)
        self.tracking = RelayPosition(datastore)
        self.tracking.create_table()
        self.encoder = MessageEncoder(app, prefix=prefix)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.published = 0
        self.sessions = 0
        self.error: BaseException | None = None

    # -- the worker interface ---------------------------------------------------------------

    def position(self) -> int:
        """The store position up to which every event is acknowledged by JetStream."""
        return self.tracking.max_tracking_id(self.app.name) or 0

    def lag(self) -> int:
        """How many stored events are not yet acknowledged by JetStream."""
        return max(0, (self.app.recorder.max_notification_id() or 0) - self.position())

    def start(self) -> Relay:
        self.stopping.clear()
        self.thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        failing = False
        while not self.stopping.is_set():
            try:
                await self._session()
                failing = False
            except Exception as e:  # noqa: BLE001 - NATS down or a store hiccup: retry, never die
                self.error = e
                # Warn once per outage, not every half second while NATS is down.
                log.log(logging.DEBUG if failing else logging.WARNING, "relay: %r; retrying", e)
                failing = True
                await asyncio.sleep(RETRY_DELAY)

    async def _session(self) -> None:
        window = Window()

        async def lost() -> None:
            window.fail(ConnectionLostError("NATS connection lost"))

        # The client's own reconnect is off: after a disconnect the session starts over, so
        # it can resynchronise with the stream before publishing anything else.
        nc = await nats.connect(
            self.nats_url,
            connect_timeout=2,
            allow_reconnect=False,
            disconnected_cb=lost,
            closed_cb=lost,
        )
        try:
            js = nc.jetstream(publish_async_max_pending=self.max_in_flight)
            info = await self.ensure_stream(js)
            self.sessions += 1
            self.connected.set()
            await self._follow(js, info, window)
        finally:
            self.connected.clear()
            window.abandon()
            with contextlib.suppress(Exception):
                await nc.close()

    async def ensure_stream(self, js: Any) -> StreamInfo:
        """Creates the stream, or brings an existing one to the configuration from settings."""
        subject = f"{self.prefix}.>"
        config = StreamConfig(
            name=self.stream,
            subjects=[subject],
            storage=StorageType.FILE,
            duplicate_window=self.duplicate_window,
        )
        try:
            info: StreamInfo = await js.stream_info(self.stream)
        except NotFoundError:
            return await js.add_stream(config)  # type: ignore[no-any-return]
        current = info.config
        subjects = list(current.subjects or [])
        if subject in subjects and current.duplicate_window == self.duplicate_window:
            return info
        # Update only what the relay owns: limits, replicas and the like that an operator set
        # on the stream stay as they are.
        if subject not in subjects:
            subjects.append(subject)
        wanted = dataclasses.replace(
            current, subjects=subjects, duplicate_window=self.duplicate_window
        )
        return await js.update_stream(wanted)  # type: ignore[no-any-return]

    async def _resync(self, js: Any, info: StreamInfo) -> int:
        """The position to publish after: the recorded one, or further when the stream's last
        message is an event of this store beyond it (acknowledged, but not yet recorded)."""
        position = await asyncio.to_thread(self.position)
        if not info.state.last_seq:
            return position
        try:
            last = await js.get_msg(self.stream, info.state.last_seq)
        except NotFoundError:
            return position  # removed by the stream's limits: nothing to learn from it
        headers = last.headers or {}
        try:
            there = int(headers.get(POSITION_HEADER, 0))
        except ValueError:
            return position
        if there > position and await asyncio.to_thread(
            self._is_ours, there, headers.get(MSG_ID_HEADER, "")
        ):
            await asyncio.to_thread(self.tracking.record, there, self.app.name)
            log.info("relay: stream already holds events up to %d; resuming there", there)
            return there
        return position

    def _is_ours(self, position: int, msg_id: str) -> bool:
        # A stream left over from another store (a reset database) may hold other events
        # at the same positions: only skip ahead over events that are really ours.
        found = self.app.recorder.select_notifications(start=position, limit=1)
        if not found or found[0].id != position:
            return False
        originator_id = found[0].originator_id
        return msg_id == event_id(
            originator_id if isinstance(originator_id, UUID) else UUID(originator_id),
            found[0].originator_version,
        )

    async def _follow(self, js: Any, info: StreamInfo, window: Window) -> None:
        window.begin(await self._resync(js, info), info.state.last_seq)
        waiter = await asyncio.to_thread(self.app.recorder.waiter)  # type: ignore[attr-defined]
        try:
            while not self.stopping.is_set():
                # A refused or lost message raises here, before anything after it counts.
                self.published += window.settle()
                await self._record(window, force=not window.in_flight)
                if await self._fill(js, window, waiter):
                    continue
                # Nothing to send now: wait for acknowledgements, or for the store.
                if window.in_flight:
                    await window.wait_for_room(self.refill, self.max_in_flight)
                else:
                    await asyncio.to_thread(waiter.wait, IDLE_WAIT)
        finally:
            # Whatever was acknowledged before a stop or a failure is kept.
            window.settle(raising=False)
            with contextlib.suppress(Exception):
                await self._record(window, force=True)
            await asyncio.to_thread(waiter.close)

    async def _record(self, window: Window, force: bool) -> None:
        now = time.monotonic()
        if window.acked > window.recorded and (
            force or now - window.recorded_at >= RECORD_INTERVAL
        ):
            await asyncio.to_thread(self.tracking.record, window.acked, self.app.name)
            window.recorded, window.recorded_at = window.acked, now

    async def _fill(self, js: Any, window: Window, waiter: Any) -> bool:
        """Publishes what the store holds beyond the window, as room allows. True if any."""
        room = self.max_in_flight - len(window.in_flight)
        if room < self.refill and window.in_flight:
            return False
        waiter.arm()
        batch = await asyncio.to_thread(self._next_batch, window.read, room)
        for message in batch:
            headers = {
                MSG_ID_HEADER: message.msg_id,
                POSITION_HEADER: str(message.position),
                EXPECTED_LAST_SEQUENCE_HEADER: str(window.last_seq),
            }
            future = await js.publish_async(message.subject, message.payload, headers=headers)
            window.add(message.position, future)
        return bool(batch)

    def _next_batch(self, position: int, limit: int) -> list[Outgoing]:
        found = self.app.recorder.select_notifications(
            start=position, limit=limit, inclusive_of_start=False
        )
        return [self.encoder.encode(n) for n in found]
