"""Instances that really run: the local provider starts a runtime process per instance, and the
API reaches it. Create → running → chat → usage → pause → resume → restart → delete."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from uuid import UUID

import psutil
import pytest

from adapters.providers.local import LocalProvider
from tests.conftest import fresh_database
from tests.e2e.conftest import LiveApi, api_settings
from tests.e2e.helpers import running
from tests.services import wait_until


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def local_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    tmp = tmp_path_factory.mktemp("local")

    def serve(url: str) -> Iterator[LiveApi]:
        live = LiveApi(api_settings(url, tmp, LIFELINE_PROVIDER="local")).start()
        try:
            yield live
        finally:
            provider = live.services.provider
            for instance_id in provider.known():
                provider.destroy(instance_id)
            live.stop()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp}/lifeline.db")
        return
    with fresh_database(request.getfixturevalue("pg_url")) as url:
        yield from serve(url)


def runtime_processes(api: LiveApi, instance_id: str) -> list[psutil.Process]:
    provider = api.services.provider
    assert isinstance(provider, LocalProvider)
    return provider.processes(UUID(instance_id), scan=True)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_an_instance_runs_chats_pauses_restarts_and_is_torn_down(local_api: LiveApi) -> None:
    api = local_api
    admin = api.client()
    instance_id = running(api, admin, name="real runtime")
    base = f"/v1/instances/{instance_id}"
    [process] = runtime_processes(api, instance_id)
    port = int(admin.get(base).json()["ip_address"].rsplit(":", 1)[1])
    assert process.is_running()

    reply = admin.post(f"{base}/chat", json={"message": "hello there runtime"},
                       headers={"X-End-User-Id": "visitor-1"})  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json()["reply"] == "You said: hello there runtime"
    assert reply.json()["usage"]["input_tokens"] == 3
    conversation = reply.json()["conversation_id"]
    wait_until(
        lambda: admin.get(f"{base}/usage", params={"days": 1}).json()["totals"]["requests"] == 1,
        message="the chat to show in usage",
    )
    totals = admin.get(f"{base}/usage", params={"days": 1}).json()["totals"]
    assert totals["tokens"] == 3 + 5, "three words in, five out"
    assert totals["unique_end_users"] == 1
    assert totals["cost"] == "0.000008", "8 tokens at the echo-1 price of 0.001 per 1,000"

    assert admin.get(f"{base}/conversations").status_code == 403, "no consent yet"
    admin.patch(f"{base}/consent", json={"consent_debug_access": True})
    listed = admin.get(f"{base}/conversations", params={"limit": 5}).json()
    assert [c["id"] for c in listed["conversations"]] == [conversation]
    detail = admin.get(f"{base}/conversations/{conversation}").json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert admin.get(f"{base}/conversations/bad id!").status_code in {400, 404, 422}
    assert admin.post(f"{base}/chat", json={"message": ""}).status_code == 422
    assert admin.post(f"{base}/chat", json={"message": "x" * 8001}).status_code == 422

    assert admin.post(f"{base}/config", json={"tone": "brief"}).json()["tone"] == "brief"
    assert admin.get(f"{base}/config").json()["tone"] == "brief"
    policy = admin.patch(f"{base}/model-policy", json={"default_model": "echo-2"}).json()
    assert policy["pushed_to_runtime"] is True
    assert admin.get(f"{base}/runtime").json()["runtime"]["model"] == "echo-2"
    assert admin.post(f"{base}/updates/apply").json()["applied"] is True

    assert admin.post(f"{base}/pause").json()["status"] == "paused"
    wait_until(lambda: process.status() == psutil.STATUS_STOPPED, message="SIGSTOP")
    refused = admin.post(f"{base}/chat", json={"message": "are you there"})
    assert refused.status_code == 409
    assert "paused" in refused.json()["detail"]
    status = admin.get(f"{base}/runtime").json()
    assert status["reachable"] is False
    assert status["status"] == "paused"
    assert status["hostname"]

    assert admin.post(f"{base}/resume").json()["status"] == "running"
    wait_until(lambda: process.status() != psutil.STATUS_STOPPED, message="SIGCONT")
    assert admin.post(f"{base}/chat", json={"message": "back"}).status_code == 200

    admin.post(f"{base}/restart")
    assert admin.get(f"{base}/wait", params={"status": "running"}).status_code == 200
    wait_until(lambda: not process.is_running(), message="the old process to end")
    [fresh] = runtime_processes(api, instance_id)
    assert fresh.pid != process.pid
    assert not port_is_free(port), "the new process serves on the instance's address"
    assert admin.post(f"{base}/chat", json={"message": "new process"}).status_code == 200
    health = admin.get(f"{base}/health")
    assert health.status_code == 200

    assert admin.delete(base).json()["already_deleted"] is False
    assert admin.get(f"{base}/wait", params={"status": "deleted"}).status_code == 200
    assert runtime_processes(api, instance_id) == []
    assert port_is_free(port)
    assert admin.get(base).json()["hostname"] is None, "unique fields are freed"


def test_a_stopped_runtime_gives_a_clear_error(local_api: LiveApi) -> None:
    admin = local_api.client()
    instance_id = running(local_api, admin)
    base = f"/v1/instances/{instance_id}"
    assert admin.post(f"{base}/stop").json()["status"] == "stopped"
    wait_until(lambda: runtime_processes(local_api, instance_id) == [], message="the process")
    refused = admin.post(f"{base}/chat", json={"message": "hi"})
    assert refused.status_code == 409
    assert "stopped" in refused.json()["detail"]
    assert admin.post(f"{base}/start").json()["status"] == "running"
    wait_until(lambda: len(runtime_processes(local_api, instance_id)) == 1, message="a process")
    wait_until(
        lambda: admin.post(f"{base}/chat", json={"message": "hi"}).status_code == 200,
        message="the started runtime to answer",
    )
