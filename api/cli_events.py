"""`lifeline relay` publishes the store's events to NATS JetStream; `lifeline events tail`
prints them live from there."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

import click
import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from adapters.event_message import POSITION_HEADER, decode
from adapters.services import Services
from adapters.settings import SettingsError, get_settings
from api.cli_workers import run_until_stopped


@click.command()
def relay() -> None:
    """Run the relay as this process: publish every stored event to JetStream."""
    run_until_stopped("the NATS relay", Services.start_relay)


@click.group()
def events() -> None:
    """Follow Lifeline's events on NATS JetStream."""


def subject_filter(prefix: str, instance: str | None, event_type: str | None) -> str:
    if instance is None and event_type is None:
        return f"{prefix}.>"
    return f"{prefix}.*.{'instances' if instance else '*'}.{instance or '*'}.{event_type or '*'}"


async def first_sequence_after(js: nats.js.JetStreamContext, stream: str, position: int) -> int:
    """The stream sequence of the first event stored after `position` (binary search: the
    relay publishes in store order, so positions grow with sequences)."""
    info = await js.stream_info(stream)
    if not info.state.messages:
        return info.state.last_seq + 1  # empty: whatever comes next
    low, high = info.state.first_seq, info.state.last_seq + 1
    while low < high:
        middle = (low + high) // 2
        try:
            message = await js.get_msg(stream, middle)
            found = int((message.headers or {}).get(POSITION_HEADER, 0))
        except nats.js.errors.NotFoundError:
            found = 0  # deleted by limits: count it as older
        if found <= position:
            low = middle + 1
        else:
            high = middle
    return low


async def tail(
    instance: str | None, event_type: str | None, since: int | None, count: int | None, raw: bool
) -> None:
    settings = get_settings()
    if not settings.nats_url:
        raise SettingsError("set LIFELINE_NATS_URL (e.g. nats://127.0.0.1:4222) to tail events")
    nc = await nats.connect(settings.nats_url, connect_timeout=5)
    js = nc.jetstream()
    stream = settings.nats_stream
    try:
        await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        await nc.close()
        problem = f"no stream {stream} on {settings.nats_url}: start the relay"
        raise click.ClickException(problem) from None
    if since is None:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
    else:
        start = await first_sequence_after(js, stream, since)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
    subject = subject_filter(settings.nats_subject_prefix, instance, event_type)
    subscription = await js.subscribe(subject, stream=stream, ordered_consumer=True, config=config)
    shown = 0
    try:
        async for message in subscription.messages:
            if raw:
                sys.stdout.write(message.data.decode() + "\n")
            else:
                event = decode(message.data)
                fields = json.dumps(event.data, default=str, sort_keys=True)
                sys.stdout.write(
                    f"{event.position}\t{event.timestamp.isoformat()}\t{event.tenant}\t"
                    f"{event.aggregate_type}/{event.aggregate_id}\tv{event.version}\t"
                    f"{event.type}\t{fields}\n"
                )
            sys.stdout.flush()
            shown += 1
            if count is not None and shown >= count:
                break
    finally:
        await nc.close()


@events.command("tail")
@click.option("--instance", default=None, help="only this instance's events")
@click.option("--type", "event_type", default=None, help="only this event type, e.g. Paused")
@click.option("--since", type=int, default=None, help="start after this store position")
@click.option("--count", type=int, default=None, help="stop after this many events")
@click.option("--json", "raw", is_flag=True, help="print each event's JSON body")
def tail_command(
    instance: str | None, event_type: str | None, since: int | None, count: int | None, raw: bool
) -> None:
    """Print events live from JetStream (from now, or after --since POSITION)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(instance, event_type, since, count, raw))
