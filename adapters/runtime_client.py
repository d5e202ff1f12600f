"""Calls to an instance's runtime over its HTTP contract, each with a bounded time.

`contract_call` is the one place that talks HTTP to a runtime (the local provider uses it);
`RuntimeClient` is what the API holds: it hands each call to the provider, which knows
whether the runtime is paused, stopped or served in memory (the simulated provider).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from adapters.providers.base import Provider, RuntimeUnavailableError

# Connecting to a loopback or private address is instant when the runtime is there, so a short
# connect timeout makes a dead runtime fail fast; the read timeout leaves room for a model.
TIMEOUT = httpx.Timeout(15.0, connect=1.0)


def contract_call(
    http: httpx.Client,
    instance_id: UUID,
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    try:
        response = http.request(method, base_url + path, json=body, params=params)
    except httpx.TimeoutException:
        raise RuntimeUnavailableError(instance_id, "unreachable", "not answering in time") from None
    except httpx.TransportError as e:
        why = str(e) or type(e).__name__
        raise RuntimeUnavailableError(instance_id, "unreachable", why) from None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {"detail": response.text[:500]}


class RuntimeClient:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def call(
        self, instance_id: UUID, method: str, path: str, body: Any = None, **params: Any
    ) -> tuple[int, Any]:
        return self.provider.call(instance_id, method, path, body, params or None)

    def close(self) -> None:
        """The provider owns the connections; kept so holders can close what they hold."""
