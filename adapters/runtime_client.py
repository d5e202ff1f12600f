"""Calls to an instance's runtime over its HTTP contract, each with a bounded time."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from adapters.providers.base import Provider, RuntimeUnavailableError

TIMEOUT = httpx.Timeout(10.0, connect=2.0)


class RuntimeClient:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.http = httpx.Client(timeout=TIMEOUT)

    def call(
        self, instance_id: UUID, method: str, path: str, body: Any = None, **params: Any
    ) -> tuple[int, Any]:
        url = self.provider.base_url(instance_id) + path
        try:
            response = self.http.request(method, url, json=body, params=params or None)
        except httpx.TimeoutException:
            raise RuntimeUnavailableError(instance_id, "not answering in time") from None
        except httpx.TransportError as e:
            raise RuntimeUnavailableError(instance_id, f"unreachable ({e})") from None
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {"detail": response.text[:500]}

    def close(self) -> None:
        self.http.close()
