"""The instance API over real HTTP, on both stores: what a platform's client does and sees."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from tests.e2e.conftest import LiveApi
from tests.e2e.helpers import create, running, total
from tests.services import wait_until


def test_a_created_instance_is_listed_and_readable_at_once(admin: httpx.Client) -> None:
    answer = create(admin, name="docs browser", region="eu-west", site_id="site-1")
    assert answer["status"] == "creating"
    listed = admin.get("/v1/instances", params={"site_id": "site-1"}).json()
    assert [i["id"] for i in listed["instances"]] == [answer["instance_id"]]
    assert listed["total"] == 1
    got = admin.get(f"/v1/instances/{answer['instance_id']}")
    assert got.status_code == 200
    assert got.json()["name"] == "docs browser"
    assert got.json()["region"] == "eu-west"
    assert got.headers["etag"] == f'"{got.json()["version"]}"'


def test_create_is_idempotent_by_header_or_field(admin: httpx.Client) -> None:
    first = admin.post("/v1/instances", json={"name": "once"}, headers={"Idempotency-Key": "k1"})
    again = admin.post("/v1/instances", json={"name": "once"}, headers={"Idempotency-Key": "k1"})
    field = admin.post("/v1/instances", json={"name": "once", "idempotency_key": "k1"})
    assert first.status_code == again.status_code == field.status_code == 202
    assert first.json()["instance_id"] == again.json()["instance_id"] == field.json()["instance_id"]
    clash = admin.post("/v1/instances", json={"name": "other"}, headers={"Idempotency-Key": "k1"})
    assert clash.status_code == 409
    assert "different parameters" in clash.json()["detail"]
    assert total(admin) == 1


def test_secrets_are_masked_unless_asked_for(admin: httpx.Client) -> None:
    answer = create(admin, environment_variables={"TOKEN": "s3cret-value"})
    url = f"/v1/instances/{answer['instance_id']}"
    assert "s3cret-value" not in admin.get(url).text
    assert admin.get(url).json()["environment_variables"] == {"TOKEN": "********"}
    revealed = admin.get(url, params={"include_secrets": "true"}).json()
    assert revealed["environment_variables"] == {"TOKEN": "s3cret-value"}
    assert "s3cret-value" not in admin.get(f"{url}/events").text


def test_bad_input_is_refused_with_a_clear_error_and_writes_nothing(admin: httpx.Client) -> None:
    before = total(admin)
    empty = admin.post("/v1/instances", json={"name": ""})
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["loc"] == ["body", "name"]
    kind = admin.post("/v1/instances", json={"name": "a", "instance_type": "mainframe"})
    assert kind.status_code == 422
    assert kind.json()["detail"][0]["loc"] == ["body", "instance_type"]
    config = admin.post("/v1/instances", json={"name": "a", "configuration": [1, 2]})
    assert config.status_code == 422
    assert config.json()["detail"][0]["loc"] == ["body", "configuration"]
    long_name = admin.post("/v1/instances", json={"name": "x" * 201})
    assert long_name.status_code == 422
    malformed = admin.post(
        "/v1/instances", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert "malformed" in malformed.json()["detail"]
    huge = admin.post(
        "/v1/instances",
        content=b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert admin.get("/v1/instances", params={"limit": 201}).status_code == 422
    assert admin.get("/v1/instances", params={"cursor": "nonsense"}).status_code == 400
    assert total(admin) == before


def test_unknown_instances_are_404(admin: httpx.Client) -> None:
    missing = uuid.uuid4()
    for method, path in [
        ("GET", f"/v1/instances/{missing}"),
        ("POST", f"/v1/instances/{missing}/pause"),
        ("DELETE", f"/v1/instances/{missing}"),
        ("GET", f"/v1/instances/{missing}/events"),
    ]:
        response = admin.request(method, path)
        assert response.status_code == 404, (method, path)
        assert str(missing) in response.json()["detail"]
    assert admin.get("/v1/instances/not-a-uuid").status_code in {400, 404}


def test_lifecycle_actions_follow_the_status_machine(api: LiveApi, admin: httpx.Client) -> None:
    instance_id = running(api, admin)
    base = f"/v1/instances/{instance_id}"
    assert admin.post(f"{base}/pause").json()["status"] == "paused"
    repeat = admin.post(f"{base}/pause")
    assert repeat.status_code == 200
    assert repeat.json()["changed"] is False
    refused = admin.post(f"{base}/start")
    assert refused.status_code == 409
    assert refused.json()["current_status"] == "paused"
    assert admin.post(f"{base}/resume").json()["status"] == "running"
    assert admin.post(f"{base}/stop").json()["status"] == "stopped"
    assert admin.post(f"{base}/start").json()["status"] == "running"
    assert admin.post(f"{base}/restart").json()["status"] in {"restarting", "running"}
    waited = admin.get(f"{base}/wait", params={"status": "running", "timeout": 10})
    assert waited.status_code == 200
    # Lists follow the store within milliseconds; an action's answer carries the new status.
    wait_until(
        lambda: (
            instance_id
            in [
                i["id"]
                for i in admin.get("/v1/instances", params={"status": "running"}).json()[
                    "instances"
                ]
            ]
        ),
        message="the list to show the instance running",
    )


def test_wait_times_out_with_408(api: LiveApi, admin: httpx.Client) -> None:
    instance_id = running(api, admin)
    response = admin.get(
        f"/v1/instances/{instance_id}/wait", params={"status": "stopped", "timeout": 0.3}
    )
    assert response.status_code == 408
    assert response.json()["current_status"] == "running"
    too_long = admin.get(f"/v1/instances/{instance_id}/wait", params={"status": "x", "timeout": 61})
    assert too_long.status_code == 422


def test_put_and_patch_honour_if_match(api: LiveApi, admin: httpx.Client) -> None:
    url = f"/v1/instances/{running(api, admin, name='first', region='eu')}"
    # The first health sample bumps the version; take the ETag after it.
    wait_until(lambda: admin.get(url).json()["health_status"] == "healthy", message="health")
    version = admin.get(url).headers["etag"]
    stale = admin.patch(url, json={"region": "us"}, headers={"If-Match": '"999"'})
    assert stale.status_code == 412
    patched = admin.patch(url, json={"region": "us"}, headers={"If-Match": version})
    assert patched.status_code == 200
    assert patched.json()["region"] == "us"
    assert patched.json()["name"] == "first"
    replaced = admin.put(url, json={"name": "second"})
    assert replaced.status_code == 200
    assert replaced.json()["name"] == "second"
    assert replaced.json()["region"] is None, "PUT clears the fields it was not given"
    assert admin.patch(url, json={"region": "us"}, headers={"If-Match": version}).status_code == 412


def test_state_as_it_was_at_a_version_or_moment(api: LiveApi, admin: httpx.Client) -> None:
    url = f"/v1/instances/{running(api, admin, name='before')}"
    moment = datetime.now(UTC).isoformat()
    admin.patch(url, json={"name": "after"})
    assert admin.get(url, params={"version": 1}).json()["name"] == "before"
    assert admin.get(url, params={"at": moment}).json()["name"] == "before"
    assert admin.get(url).json()["name"] == "after"
    assert admin.get(url, params={"version": 99}).status_code == 422
    events = admin.get(f"{url}/events").json()
    types = [e["type"] for e in events["events"]]
    assert types[0] == "Created"
    # The health sampler may record a HealthChanged at any moment; it is telemetry's event.
    lifecycle = [t for t in types if t != "HealthChanged"]
    assert lifecycle[-2:] == ["Provisioned", "Renamed"]
    assert "ProvisioningStageReached" in types
    positions = [e["position"] for e in events["events"]]
    assert positions == sorted(positions)
    assert [e["version"] for e in events["events"]] == list(range(1, len(types) + 1))
    renamed_at = types.index("Renamed")
    page = admin.get(f"{url}/events", params={"limit": 1, "offset": renamed_at}).json()
    assert [e["type"] for e in page["events"]] == ["Renamed"]
    assert page["total"] >= len(types)


def test_delete_is_soft_and_repeatable(api: LiveApi, admin: httpx.Client) -> None:
    instance_id = running(api, admin)
    url = f"/v1/instances/{instance_id}"
    first = admin.delete(url)
    assert first.status_code == 200
    assert first.json()["already_deleted"] is False
    second = admin.delete(url)
    assert second.status_code == 200
    assert second.json()["already_deleted"] is True
    assert admin.get(f"{url}/wait", params={"status": "deleted"}).status_code == 200
    wait_until(
        lambda: (
            instance_id not in [i["id"] for i in admin.get("/v1/instances").json()["instances"]]
        ),
        message="the list to drop the deleted instance",
    )
    assert admin.get(url).json()["status"] == "deleted", "the history stays readable"


def test_list_filters_and_pages(admin: httpx.Client) -> None:
    for n in range(5):
        create(admin, name=f"alpha {n}", region="eu" if n % 2 else "us", instance_type="ubuntu")
    create(admin, name="beta", instance_type="agent")
    assert total(admin) == 6
    assert total(admin, region="eu") == 2
    assert total(admin, instance_type="agent") == 1
    assert total(admin, q="ALPHA") == 5
    assert total(admin, q="%") == 0, "search text is literal"
    first = admin.get("/v1/instances", params={"limit": 4}).json()
    assert len(first["instances"]) == 4
    rest = admin.get("/v1/instances", params={"limit": 4, "cursor": first["next_cursor"]}).json()
    assert len(rest["instances"]) == 2
    assert rest["next_cursor"] is None
    seen = [i["id"] for i in first["instances"] + rest["instances"]]
    assert len(set(seen)) == 6
    by_offset = admin.get("/v1/instances", params={"limit": 4, "offset": 4}).json()
    assert [i["id"] for i in by_offset["instances"]] == seen[4:]
    newest = [i["name"] for i in first["instances"]]
    assert newest[0] == "beta", "newest first"


def test_consent_model_policy_and_platform_config(admin: httpx.Client) -> None:
    answer = create(admin)
    base = f"/v1/instances/{answer['instance_id']}"
    consent = admin.patch(f"{base}/consent", json={"consent_debug_access": True})
    assert consent.status_code == 200
    assert consent.json()["consent_debug_access"] is True
    assert admin.get(base).json()["consent_debug_access"] is True
    policy = admin.patch(
        f"{base}/model-policy", json={"default_model": "small", "temperature": 0.2}
    )
    assert policy.status_code == 200
    assert admin.get(base).json()["model_policy"] == {"default_model": "small", "temperature": 0.2}
    assert admin.patch(f"{base}/model-policy", json={"temperature": 5}).status_code == 422
    first = admin.patch(f"{base}/platform-config", json={"skills": ["search"], "recipe_id": "r1"})
    assert first.json()["platform_config"] == {"skills": ["search"], "recipe_id": "r1"}
    merged = admin.patch(f"{base}/platform-config", json={"channels": {"slack": True}})
    assert merged.json()["platform_config"] == {
        "skills": ["search"],
        "recipe_id": "r1",
        "channels": {"slack": True},
    }
    assert admin.get(f"{base}/platform-config").json() == merged.json()
    assert admin.patch(f"{base}/platform-config", json={"skills": "x"}).status_code == 422


def test_rotate_key_and_cleanup_are_for_admins(api: LiveApi, admin: httpx.Client) -> None:
    instance_id = create(admin, configuration={"simulate_failure": "boot"})["instance_id"]
    member = api.client(admin.tenant, role="member")  # type: ignore[attr-defined]
    assert member.post(f"/v1/instances/admin/{instance_id}/rotate-key").status_code == 403
    rotated = admin.post(f"/v1/instances/admin/{instance_id}/rotate-key")
    assert rotated.status_code == 200
    assert admin.get(f"/v1/instances/{instance_id}").json()["agent_key_rotated_at"] is not None
    assert member.post("/v1/instances/cleanup").status_code == 403
    assert admin.get(f"/v1/instances/{instance_id}/wait", params={"status": "error"}).is_success
    failed = admin.get(f"/v1/instances/{instance_id}").json()
    assert failed["error_message"] == "boot: boot failed as asked"
    assert failed["failed_stage"] == "boot"
    cleaned = admin.post("/v1/instances/cleanup")
    assert cleaned.status_code == 200
    assert cleaned.json()["cleaned"] == 1
    deleted = admin.get(f"/v1/instances/{instance_id}/wait", params={"status": "deleted"})
    assert deleted.status_code == 200


def test_health_reports_the_instance(api: LiveApi, admin: httpx.Client) -> None:
    instance_id = running(api, admin)
    health = admin.get(f"/v1/instances/{instance_id}/health")
    assert health.status_code == 200
    assert health.json()["status"] == "running"
    assert health.json()["health_status"] in {"healthy", "unknown", "degraded"}


def test_liveness_readiness_and_schema(api: LiveApi) -> None:
    with api.anonymous() as anonymous:
        assert anonymous.get("/health").json() == {"status": "ok"}
        ready = anonymous.get("/ready").json()
        assert ready["store"] == "ok"
        assert "instances" in ready["lags"]
        schema = anonymous.get("/schema/openapi.json").json()
        assert schema["openapi"].startswith("3.1")
        assert "/v1/instances" in schema["paths"]
        assert anonymous.get("/v1/instances").status_code == 401


def test_provisioning_can_be_polled_by_key_and_retried(api: LiveApi, admin: httpx.Client) -> None:
    unknown = admin.get("/v1/instances/by-key/never-used").json()
    assert unknown["found"] is False
    assert unknown["instance_id"] is None
    answer = admin.post(
        "/v1/instances",
        json={"name": "fails once", "configuration": {"simulate_failure": "configure"}},
        headers={"Idempotency-Key": "deploy-7"},
    ).json()
    assert answer["idempotency_key"] == "deploy-7"
    base = f"/v1/instances/{answer['instance_id']}"
    assert admin.get(f"{base}/wait", params={"status": "error"}).status_code == 200
    polled = admin.get("/v1/instances/by-key/deploy-7").json()
    assert polled["found"] is True
    assert polled["status"] == "error"
    assert polled["provisioning_stage"] == "configure"
    assert polled["error_message"] == "configure: configure failed as asked"
    assert [log["stage"] for log in polled["logs"]] == [
        "allocate", "boot", "install_runtime", "configure", "configure",
    ]  # fmt: skip
    admin.patch(base, json={"configuration": {}})
    assert admin.post(f"{base}/retry").json()["status"] == "creating"
    assert admin.get(f"{base}/wait", params={"status": "running"}).status_code == 200
    healed = admin.get("/v1/instances/by-key/deploy-7").json()
    assert healed["status"] == "running"
    assert healed["hostname"]
