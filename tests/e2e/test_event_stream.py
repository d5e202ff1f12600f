"""Server-Sent Events: a client that disconnects and comes back with Last-Event-ID misses
nothing and sees nothing twice; it sees only its own tenant's events."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.conftest import LiveApi
from tests.e2e.helpers import create


def read_events(
    client: httpx.Client,
    path: str,
    count: int | Callable[[list[dict[str, Any]]], bool],
    last_id: str | None = None,
) -> list[dict[str, Any]]:
    """Reads events until `count` of them (or until `count(events)` holds), then disconnects."""
    enough = count if callable(count) else (lambda events: len(events) == count)
    headers = {"Last-Event-ID": last_id} if last_id else {}
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with client.stream("GET", path, headers=headers, timeout=20) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id:"):
                current["id"] = line.split(":", 1)[1].strip()
            elif line.startswith("event:"):
                current["event"] = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                current["data"] = json.loads(line.split(":", 1)[1])
            elif not line and "data" in current:
                events.append(current)
                current = {}
                if enough(events):
                    break
    return events


def test_a_reconnecting_client_misses_nothing(api: LiveApi, admin: httpx.Client) -> None:
    ids = [create(admin, name=f"streamed {n}")["instance_id"] for n in range(6)]
    first = read_events(admin, "/v1/events/stream", 3)
    for instance_id in ids[:2]:
        admin.patch(f"/v1/instances/{instance_id}", json={"name": "renamed"})

    def both_renames(events: list[dict[str, Any]]) -> bool:
        return sum(e["event"] == "Renamed" for e in events) == 2

    rest = read_events(admin, "/v1/events/stream", both_renames, last_id=first[-1]["id"])
    seen = first + rest
    positions = [int(e["id"]) for e in seen]
    assert positions == sorted(set(positions)), "a repeat or a step back"
    stored = sorted(
        e["position"]
        for instance_id in ids
        for e in admin.get(f"/v1/instances/{instance_id}/events").json()["events"]
        if e["position"] <= positions[-1]
    )
    assert positions == stored, "the stream skipped stored events"
    created = [e["data"]["aggregate_id"] for e in seen if e["event"] == "Created"]
    assert created == ids
    assert all(e["data"]["tenant"] == admin.tenant for e in seen)  # type: ignore[attr-defined]
    assert all(int(e["id"]) == e["data"]["position"] for e in seen)


def test_an_instance_stream_and_tenant_isolation(api: LiveApi, admin: httpx.Client) -> None:
    mine = create(admin, name="watched", environment_variables={"K": "hidden-value"})
    other = api.client()
    create(other, name="someone else's")
    admin.patch(f"/v1/instances/{mine['instance_id']}", json={"region": "eu"})
    events = read_events(
        admin,
        f"/v1/instances/{mine['instance_id']}/events/stream",
        lambda events: events[-1]["event"] == "Updated",
    )
    assert events[0]["event"] == "Created"
    assert {e["data"]["aggregate_id"] for e in events} == {mine["instance_id"]}
    assert "hidden-value" not in json.dumps(events)
    theirs = read_events(other, "/v1/events/stream", 1)
    assert theirs[0]["data"]["tenant"] == other.tenant  # type: ignore[attr-defined]
    assert other.get(f"/v1/instances/{mine['instance_id']}/events/stream").status_code == 404
