"""Server-Sent Events for clients that do not speak NATS: the same messages as on JetStream,
read straight from the event store, so a client resumes exactly where it left off by sending
the last position it saw as `Last-Event-ID`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, get
from litestar.concurrency import sync_to_thread
from litestar.exceptions import HTTPException
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from adapters.event_message import MessageEncoder, Outgoing
from adapters.services import Services
from domain.values import Scope

BATCH = 500
IDLE_POLL = 0.05
KEEPALIVE_SECONDS = 15.0


def resume_position(request: Request[Any, Any, Any], since: int | None) -> int:
    header = request.headers.get("last-event-id")
    if header is None:
        return since or 0
    if not header.strip().isdigit():
        raise HTTPException(status_code=400, detail="Last-Event-ID must be a stream position")
    return int(header)


async def follow(
    services: Services, after: int, wanted: Any, limit: int | None = None
) -> AsyncIterator[ServerSentEventMessage]:
    encoder = MessageEncoder(services.app)
    position = after
    sent = 0
    last_beat = time.monotonic()
    while limit is None or sent < limit:
        found = await sync_to_thread(
            services.app.recorder.select_notifications,
            start=position,
            limit=BATCH,
            inclusive_of_start=False,
        )
        if not found:
            if time.monotonic() - last_beat > KEEPALIVE_SECONDS:
                last_beat = time.monotonic()
                yield ServerSentEventMessage(comment="keepalive")
            await asyncio.sleep(IDLE_POLL)
            continue
        for notification in found:
            position = notification.id
            message = encoder.encode(notification)
            if wanted(message):
                sent += 1
                yield ServerSentEventMessage(
                    data=message.payload.decode(), event=message.type, id=message.position
                )
                if limit is not None and sent >= limit:
                    return


@get(
    "/v1/events/stream",
    operation_id="streamTenantEvents",
    tags=["events"],
    include_in_schema=True,
)
async def tenant_stream(
    request: Request[Any, Any, Any],
    services: Services,
    caller: Scope,
    since: Annotated[int | None, Parameter(ge=0)] = None,
    limit: Annotated[int | None, Parameter(ge=1, le=100_000)] = None,
) -> ServerSentEvent:
    """Every event of the tenant, live, as Server-Sent Events (resume with Last-Event-ID)."""
    after = resume_position(request, since)

    def wanted(message: Outgoing) -> bool:
        return message.tenant == caller.tenant_id and (
            caller.is_admin or _owned_by(services, caller, message)
        )

    return ServerSentEvent(follow(services, after, wanted, limit))


@get(
    "/v1/instances/{instance_id:uuid}/events/stream",
    operation_id="streamInstanceEvents",
    tags=["events"],
)
async def instance_stream(
    request: Request[Any, Any, Any],
    services: Services,
    caller: Scope,
    instance_id: UUID,
    since: Annotated[int | None, Parameter(ge=0)] = None,
    limit: Annotated[int | None, Parameter(ge=1, le=100_000)] = None,
) -> ServerSentEvent:
    """The instance's events (and its logs', plans' and usage's), live, as Server-Sent Events."""
    await sync_to_thread(services.app.authorize, caller, instance_id)
    after = resume_position(request, since)

    def wanted(message: Outgoing) -> bool:
        return message.instance_id == instance_id

    return ServerSentEvent(follow(services, after, wanted, limit))


def _owned_by(services: Services, caller: Scope, message: Outgoing) -> bool:
    if message.instance_id is None:
        return False
    row = services.instance_row(message.instance_id)
    return row is not None and row.user_id == caller.user_id
