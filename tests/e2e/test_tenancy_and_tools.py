"""Who may do what: every instance endpoint against every kind of caller; the assistants'
instance tool; and the key commands."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.e2e.conftest import LiveApi
from tests.e2e.helpers import create, running

# (method, path under /v1/instances/{id}, body, admin's expected status), in an order in
# which each action is allowed for the admin: the instance goes running → ... → deleted.
ENDPOINTS: list[tuple[str, str, object, int]] = [
    ("GET", "", None, 200),
    ("PATCH", "", {"region": "eu"}, 200),
    ("PUT", "", {"name": "secret project"}, 200),
    ("GET", "/health", None, 200),
    ("GET", "/events", None, 200),
    ("GET", "/wait?status=running&timeout=1", None, 200),
    ("GET", "/logs", None, 200),
    ("POST", "/logs", {"log_type": "system", "message": "hello"}, 201),
    ("GET", "/plans", None, 200),
    ("POST", "/plans", {"title": "t", "plan_type": "task"}, 201),
    ("GET", "/usage", None, 200),
    ("PATCH", "/consent", {"consent_debug_access": True}, 200),
    ("PATCH", "/model-policy", {"default_model": "m"}, 200),
    ("GET", "/platform-config", None, 200),
    ("PATCH", "/platform-config", {"skills": ["x"]}, 200),
    ("POST", "/pause", None, 200),
    ("POST", "/resume", None, 200),
    ("POST", "/stop", None, 200),
    ("POST", "/start", None, 200),
    ("DELETE", "", None, 200),
]
ADMIN_ONLY = [("POST", "/v1/instances/admin/{id}/rotate-key", None, 200)]


def call(client: httpx.Client, method: str, path: str, body: object) -> httpx.Response:
    return (
        client.request(method, path, json=body)
        if body is not None
        else client.request(method, path)
    )


def test_every_endpoint_answers_each_kind_of_caller_as_documented(api: LiveApi) -> None:
    admin = api.client()
    owner = api.client(admin.tenant, role="member", user="owner-1")  # type: ignore[attr-defined]
    stranger = api.client(admin.tenant, role="member", user="someone-else")  # type: ignore[attr-defined]
    foreign = api.client()
    anonymous = api.anonymous()
    instance_id = running(api, owner, name="secret project")
    for method, suffix, body, expected in [
        *ADMIN_ONLY,
        *((m, f"/v1/instances/{{id}}{s}", b, e) for m, s, b, e in ENDPOINTS),
    ]:
        path = suffix.format(id=instance_id)
        assert call(anonymous, method, path, body).status_code == 401, path
        other = call(foreign, method, path, body)
        assert other.status_code == 404, (method, path, other.text)
        assert "secret project" not in other.text
        not_owner = call(stranger, method, path, body)
        assert not_owner.status_code == 403, (method, path, not_owner.text)
        assert "secret project" not in not_owner.text
        allowed = call(admin, method, path, body)
        assert allowed.status_code == expected, (method, path, allowed.text)


def test_members_see_and_act_on_their_own_instances_only(api: LiveApi) -> None:
    admin = api.client()
    alice = api.client(admin.tenant, role="member", user="alice")  # type: ignore[attr-defined]
    bob = api.client(admin.tenant, role="member", user="bob")  # type: ignore[attr-defined]
    mine = create(alice, name="alice's")["instance_id"]
    create(bob, name="bob's")
    assert [i["id"] for i in alice.get("/v1/instances").json()["instances"]] == [mine]
    assert alice.get("/v1/instances", params={"user_id": "bob"}).json()["total"] == 0
    assert admin.get("/v1/instances").json()["total"] == 2
    assert alice.get(f"/v1/instances/{mine}").json()["user_id"] == "alice"
    assert alice.post("/v1/instances/cleanup").status_code == 403
    foreign = api.client()
    assert foreign.get("/v1/instances").json()["total"] == 0


def test_keys_in_either_header_and_revocation(api: LiveApi) -> None:
    record, secret = api.keys.create("tenant-h", "admin")
    with httpx.Client(base_url=api.url) as client:
        bearer = client.get("/v1/instances", headers={"Authorization": f"Bearer {secret}"})
        assert bearer.status_code == 200
        api.keys.revoke(record.id)
        assert client.get("/v1/instances", headers={"X-API-Key": secret}).status_code == 401
        assert client.get("/v1/instances", headers={"X-API-Key": "nope"}).status_code == 401


def test_the_instance_tool_creates_reads_and_renames(api: LiveApi, admin: httpx.Client) -> None:
    tool = "/v1/agents/tools/instance"
    created = admin.post(
        tool, json={"action": "create", "site_id": "s1", "activity": "Assistant Session"}
    )
    assert created.status_code == 200, created.text
    instance = created.json()["instance"]
    assert instance["name"] == "Assistant Session"
    listed = admin.post(tool, json={"action": "read", "site_id": "s1"}).json()
    assert [i["id"] for i in listed["instances"]] == [instance["id"]]
    one = admin.post(tool, json={"action": "read", "instance_id": instance["id"]}).json()
    assert one["instance"]["id"] == instance["id"]
    renamed = admin.post(
        tool,
        json={
            "action": "update",
            "instance_id": instance["id"],
            "context": "a SaaS lead generation campaign for the US",
        },
    ).json()
    assert renamed["renamed"] is True
    assert renamed["old_name"] == "Assistant Session"
    assert renamed["new_name"] == "SaaS Lead Generation Campaign US"
    assert admin.get(f"/v1/instances/{instance['id']}").json()["name"] == renamed["new_name"]
    kept = admin.post(
        tool,
        json={"action": "update", "instance_id": instance["id"], "context": "the SaaS campaign"},
    ).json()
    assert kept["renamed"] is False
    assert kept["similarity"] >= 0.25
    explicit = admin.post(
        tool, json={"action": "update", "instance_id": instance["id"], "name": "Q3 outreach"}
    ).json()
    assert explicit["new_name"] == "Q3 outreach"
    missing = admin.post(tool, json={"action": "create", "site_id": "s1"})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "activity"]
    assert admin.post(tool, json={"action": "explode"}).status_code == 422


@pytest.mark.parametrize("role", ["admin", "member"])
def test_keys_create_prints_only_the_key_on_stdout(api: LiveApi, role: str) -> None:
    env = {
        **os.environ,
        "LIFELINE_DATABASE_URL": api.settings.database_url,
        "LIFELINE_KEY_FILE": api.settings.key_file,
    }
    command = [sys.executable, "-c", "from api.cli import main; main()", "keys", "create"]
    command += ["--tenant", "cli-tenant", "--role", role, "--user", "u9"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    key = done.stdout.strip()
    assert "\n" not in key
    assert "cli-tenant" in done.stderr
    with httpx.Client(base_url=api.url, headers={"X-API-Key": key}) as client:
        assert client.get("/v1/instances").status_code == 200
    listed = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "keys", "list"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "cli-tenant" in listed.stdout
    assert key not in listed.stdout
