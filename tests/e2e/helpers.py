"""Small steps the end-to-end tests share."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import LiveApi


def create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "test instance")
    response = client.post("/v1/instances", json=body)
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


def running(api: LiveApi, client: httpx.Client, **body: Any) -> str:
    """A new instance that has reached `running` (the provisioner drives it there)."""
    instance_id = str(create(client, **body)["instance_id"])
    response = client.get(
        f"/v1/instances/{instance_id}/wait", params={"status": "running", "timeout": 15}
    )
    assert response.status_code == 200, response.text
    return instance_id


def total(client: httpx.Client, **params: Any) -> int:
    response = client.get("/v1/instances", params=params)
    assert response.status_code == 200, response.text
    return int(response.json()["total"])
