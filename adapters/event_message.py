"""The wire format of a stored event on NATS (and on the SSE stream): subject, body, message id.

One place decides how an event looks to the outside, so the relay, the SSE endpoint and the
tail command can never disagree. Bodies are JSON with secret values masked.
"""

from __future__ import annotations

import string
from collections import OrderedDict
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification

from domain.application import Lifeline
from domain.state import mask_secrets

DEFAULT_PREFIX = "lifeline"
# Custom header with the store position, so the relay can read where a stream ends without
# decoding bodies, and `tail --since` can map a position to a stream sequence.
POSITION_HEADER = "Lifeline-Position"
MSG_ID_HEADER = "Nats-Msg-Id"
UNKNOWN_TENANT = "_unknown"
TENANT_CACHE_SIZE = 50_000

# Aggregate class (the first part of an event's qualified name) -> subject segment.
KINDS = {"Instance": "instances", "Plan": "plans", "LogEntry": "logs", "UsageSample": "usage"}
_SKIP = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})
_SAFE = frozenset(string.ascii_letters + string.digits + "_-")


class EventMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON body of one event."""

    event_id: str
    position: int
    aggregate_id: UUID
    aggregate_type: str
    version: int
    type: str
    timestamp: datetime
    tenant: str
    data: dict[str, Any]


class Outgoing(msgspec.Struct, frozen=True, array_like=True):
    """One event ready to publish: where, what, and the ids that make retries harmless."""

    position: int
    subject: str
    payload: bytes
    msg_id: str
    tenant: str
    aggregate_id: UUID
    instance_id: UUID | None
    type: str


def subject_token(value: str) -> str:
    """A subject token that stands for `value` and only for it.

    Dots, spaces and wildcards would split or widen a subject; every character outside
    [A-Za-z0-9_-] becomes `~` and its UTF-8 bytes in hex, so two tenants never share a token.
    """
    if value and all(c in _SAFE for c in value):
        return value
    out = [c if c in _SAFE else "".join(f"~{b:02x}" for b in c.encode()) for c in value]
    return "".join(out) or "~"


def event_id(aggregate_id: UUID, version: int) -> str:
    return f"{aggregate_id}:{version}"


def _enc_hook(value: Any) -> Any:
    # Decimals, enums and anything else a future event may carry: their text form.
    return str(value)


class TenantResolver:
    """Which tenant an aggregate belongs to. Only first events carry the tenant; later ones
    are looked up from the aggregate's first event once and remembered (LRU)."""

    def __init__(self, app: Lifeline, size: int = TENANT_CACHE_SIZE) -> None:
        self.app = app
        self.size = size
        self._cache: OrderedDict[UUID, str] = OrderedDict()

    def remember(self, aggregate_id: UUID, tenant: str) -> None:
        self._cache[aggregate_id] = tenant
        self._cache.move_to_end(aggregate_id)
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)

    def tenant_of(self, aggregate_id: UUID, domain_event: Any) -> str:
        tenant = getattr(domain_event, "tenant_id", None)
        if isinstance(tenant, str):
            self.remember(aggregate_id, tenant)
            return tenant
        cached = self._cache.get(aggregate_id)
        if cached is not None:
            self._cache.move_to_end(aggregate_id)
            return cached
        first = next(iter(self.app.events.get(aggregate_id, lte=1)), None)
        found = getattr(first, "tenant_id", None)
        tenant = found if isinstance(found, str) else UNKNOWN_TENANT
        self.remember(aggregate_id, tenant)
        return tenant


class MessageEncoder:
    """Turns notifications from the store into messages ready for NATS or SSE."""

    def __init__(self, app: Lifeline, prefix: str = DEFAULT_PREFIX) -> None:
        self.app = app
        self.prefix = prefix
        self.tenants = TenantResolver(app)
        self._json = msgspec.json.Encoder(enc_hook=_enc_hook)

    def encode(self, notification: Notification) -> Outgoing:
        domain_event = self.app.mapper.to_domain_event(notification)
        aggregate_id: UUID = domain_event.originator_id
        qualname = type(domain_event).__qualname__
        aggregate_class, _, name = qualname.rpartition(".")
        kind = KINDS.get(aggregate_class, aggregate_class.lower() or "events")
        tenant = self.tenants.tenant_of(aggregate_id, domain_event)
        fields = {k: v for k, v in vars(domain_event).items() if k not in _SKIP}
        version = domain_event.originator_version
        message = EventMessage(
            event_id=event_id(aggregate_id, version),
            position=notification.id,
            aggregate_id=aggregate_id,
            aggregate_type=kind,
            version=version,
            type=name,
            timestamp=getattr(domain_event, "timestamp"),  # noqa: B009 - not on the protocol
            tenant=tenant,
            data=mask_secrets(fields),
        )
        instance_id = aggregate_id if kind == "instances" else fields.get("instance_id")
        return Outgoing(
            position=notification.id,
            subject=f"{self.prefix}.{subject_token(tenant)}.{kind}.{aggregate_id}.{name}",
            payload=self._json.encode(message),
            msg_id=message.event_id,
            tenant=tenant,
            aggregate_id=aggregate_id,
            instance_id=instance_id if isinstance(instance_id, UUID) else None,
            type=name,
        )


_decoder = msgspec.json.Decoder(EventMessage)


def decode(payload: bytes) -> EventMessage:
    return _decoder.decode(payload)
