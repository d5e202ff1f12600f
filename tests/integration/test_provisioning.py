"""The provisioner with real runtime processes on both stores: an instance's whole life (create,
chat, pause, resume, restart, delete) seen in the process table; killed halfway it still ends
with exactly one runtime per instance; a runtime that cannot start fails with a useful message
and a retry heals it; an instance stuck in a transition goes to error; health changes are
recorded once; a restarted provisioner tears down what deleted instances left behind. The
simulated provider, which the API tests use, serves the same contract in memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import psutil
import pytest

from adapters.providers.base import RuntimeUnavailableError
from adapters.providers.local import LocalProvider
from adapters.providers.simulated import SimulatedProvider
from adapters.provisioner import Provisioner
from adapters.services import Services
from adapters.settings import Settings, load_settings
from domain.instance import Instance
from domain.values import Scope
from tests.services import wait_until

ADMIN = Scope("acme")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        {
            "LIFELINE_DATABASE_URL": database_url,
            "LIFELINE_KEY_FILE": str(tmp_path / "key"),
            "LIFELINE_RUNTIME_DIR": str(tmp_path / "runtimes"),
            "LIFELINE_PROVIDER": "local",
        }
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    services = Services(settings)
    yield services
    for instance_id in services.provider.known():
        services.provider.destroy(instance_id)
    services.close()


def status(services: Services, instance_id: UUID) -> str:
    return services.app.get_instance(None, instance_id).status


def local(services: Services) -> LocalProvider:
    assert isinstance(services.provider, LocalProvider)
    return services.provider


def runtimes(services: Services, instance_id: UUID) -> list[psutil.Process]:
    return local(services).processes(instance_id, scan=True)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def stages(services: Services, instance_id: UUID) -> list[str]:
    return [
        h.fields["stage"]
        for h in services.app.history(None, instance_id)
        if h.type == "ProvisioningStageReached"
    ]


def test_a_provisioner_killed_halfway_leaves_exactly_one_runtime(
    services: Services, settings: Settings
) -> None:
    env = {
        **os.environ,
        "LIFELINE_DATABASE_URL": settings.database_url,
        "LIFELINE_KEY_FILE": settings.key_file,
        "LIFELINE_RUNTIME_DIR": settings.runtime_dir,
        "LIFELINE_PROVIDER": "local",
    }
    command = [sys.executable, "-c", "from api.cli import main; main()", "provision"]
    provisioner = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        ids = [services.app.create_instance(ADMIN, name=f"crash {n}").id for n in range(6)]
        # Kill it as soon as the runtimes are being started, before all are running.
        wait_until(lambda: any("boot" in stages(services, i) for i in ids), 30, 0.001)
        provisioner.send_signal(signal.SIGKILL)
        provisioner.wait()
        assert any(status(services, i) == "creating" for i in ids), "the kill came too late"
        provisioner = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        wait_until(lambda: all(status(services, i) == "running" for i in ids), 60)
    finally:
        provisioner.terminate()
        provisioner.wait(10)
    provider = services.provider
    assert isinstance(provider, LocalProvider)
    for instance_id in ids:
        assert len(provider.processes(instance_id, scan=True)) == 1, "two runtimes for one instance"
        state = services.app.get_instance(None, instance_id)
        assert state.ip_address == f"127.0.0.1:{provider._record(instance_id)['port']}"


def test_a_runtime_that_cannot_start_fails_usefully_and_a_retry_heals_it(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFELINE_RUNTIME_FAIL_START", "1")
    services.start_provisioner()
    instance_id = services.app.create_instance(ADMIN, name="broken").id
    wait_until(lambda: status(services, instance_id) == "error", 30)
    state = services.app.get_instance(None, instance_id)
    assert state.error_code == "runtime_exited"
    assert state.failed_stage == "install_runtime"
    assert "LIFELINE_RUNTIME_FAIL_START" in (state.error_message or "")
    monkeypatch.delenv("LIFELINE_RUNTIME_FAIL_START")
    services.app.retry(ADMIN, instance_id)
    wait_until(lambda: status(services, instance_id) == "running", 30)
    provider = services.provider
    assert isinstance(provider, LocalProvider)
    assert len(provider.processes(instance_id, scan=True)) == 1


def test_an_instance_stuck_in_a_transition_goes_to_error(services: Services) -> None:
    provisioner = services.start_provisioner()
    services.start_projections(["instances"])
    stuck = Instance.create(
        instance_id=UUID(int=7), tenant_id="acme", name="stuck", at=datetime.now(UTC)
    )
    # A Created event whose provisioning never happened (say, the provider lost it).
    provisioner.stop()
    services.app.save(stuck)
    services.wait_for(services.app.recorder.max_notification_id(), ["instances"])
    later = datetime.now(UTC) + timedelta(seconds=provisioner.transition_timeout + 1)
    assert provisioner.fail_stuck(later) == [stuck.id]
    state = services.app.get_instance(None, stuck.id)
    assert state.status == "error"
    assert "stuck in creating" in (state.error_message or "")
    assert provisioner.fail_stuck(later) == []


def test_an_instance_lives_and_dies_as_a_real_process(services: Services) -> None:
    services.start_provisioner()
    instance_id = services.app.create_instance(ADMIN, name="lives").id
    wait_until(lambda: status(services, instance_id) == "running", 30)
    assert stages(services, instance_id) == [
        "allocate", "boot", "install_runtime", "configure", "health_check"
    ]  # fmt: skip
    [process] = runtimes(services, instance_id)
    assert process.is_running()
    port = int(str(services.app.get_instance(None, instance_id).ip_address).rsplit(":", 1)[1])
    assert port_in_use(port)

    provider = services.provider
    answer = provider.chat(instance_id, "hello there runtime", end_user="u-1")
    assert answer["usage"]["input_tokens"] == 3
    assert answer["usage"]["output_tokens"] == len(answer["reply"].split())
    conversation_id = answer["conversation_id"]
    provider.chat(instance_id, "and again", conversation_id=conversation_id)
    assert len(provider.conversation(instance_id, conversation_id)["messages"]) == 4

    services.app.pause(ADMIN, instance_id)
    wait_until(lambda: process.status() == psutil.STATUS_STOPPED, 10)
    asked = time.monotonic()
    with pytest.raises(RuntimeUnavailableError) as refused:
        provider.chat(instance_id, "are you there?")
    assert refused.value.reason == "paused"
    assert time.monotonic() - asked < 1.0, "a paused runtime must be refused at once"

    services.app.resume(ADMIN, instance_id)
    wait_until(lambda: process.status() != psutil.STATUS_STOPPED, 10)
    assert provider.status(instance_id)["pid"] == process.pid

    services.app.restart(ADMIN, instance_id)
    wait_until(lambda: status(services, instance_id) == "running", 30)
    [restarted] = runtimes(services, instance_id)
    assert restarted.pid != process.pid
    assert not process.is_running()
    # The runtime keeps its conversations in its state directory, across processes.
    assert [c["id"] for c in provider.conversations(instance_id)] == [conversation_id]

    services.app.request_deletion(ADMIN, instance_id)
    wait_until(lambda: status(services, instance_id) == "deleted", 30)
    assert not restarted.is_running()
    assert runtimes(services, instance_id) == []
    assert not port_in_use(port)
    assert instance_id not in provider.known()
    with pytest.raises(RuntimeUnavailableError) as gone:
        provider.chat(instance_id, "hello?")
    assert gone.value.reason == "stopped"


def test_health_changes_are_recorded_once_and_telemetry_kept(services: Services) -> None:
    provisioner = services.start_provisioner()
    instance_id = services.app.create_instance(ADMIN, name="sampled").id
    wait_until(lambda: status(services, instance_id) == "running", 30)
    provisioner.stop()  # sampled by hand below, not by the watch thread
    provisioner.sample_health()
    provisioner.sample_health()
    sample = services.telemetry(instance_id)
    assert sample is not None
    assert sample.health_status == "healthy"
    assert sample.memory_mb
    assert sample.uptime_secs is not None
    assert sample.last_heartbeat
    [process] = runtimes(services, instance_id)
    process.kill()  # the runtime crashes
    process.wait(5)
    provisioner.sample_health()
    provisioner.sample_health()
    sample = services.telemetry(instance_id)
    assert sample is not None
    assert (sample.health_status, sample.failures) == ("unreachable", 2)
    changes = [
        h.fields["health_status"]
        for h in services.app.history(None, instance_id)
        if h.type == "HealthChanged"
    ]
    assert changes == ["healthy", "unreachable"]
    assert services.app.get_instance(None, instance_id).health_status == "unreachable"


def test_a_restarted_provisioner_tears_down_what_deleted_instances_left(
    services: Services,
) -> None:
    provisioner = services.start_provisioner()
    kept = services.app.create_instance(ADMIN, name="kept").id
    orphaned = services.app.create_instance(ADMIN, name="orphaned").id
    paused = services.app.create_instance(ADMIN, name="paused").id
    ids = (kept, orphaned, paused)
    wait_until(lambda: all(status(services, i) == "running" for i in ids), 30)
    provisioner.stop()
    # What a provisioner that died before handling these events would leave behind.
    services.app.request_deletion(ADMIN, orphaned)
    services.app.complete_deletion(orphaned)
    services.app.pause(ADMIN, paused)
    [left] = runtimes(services, orphaned)
    fresh = Provisioner(services.app, services.provider, services.datastore)
    try:
        assert fresh.reconcile() == {orphaned: "destroyed", paused: "paused"}
    finally:
        fresh.stop()
    assert not left.is_running()
    [process] = runtimes(services, paused)
    assert process.status() == psutil.STATUS_STOPPED
    assert len(runtimes(services, kept)) == 1


def test_the_simulated_provider_serves_the_contract_and_fails_when_told(
    database_url: str, tmp_path: Path
) -> None:
    services = Services(
        load_settings(
            {
                "LIFELINE_DATABASE_URL": database_url,
                "LIFELINE_KEY_FILE": str(tmp_path / "key"),
                "LIFELINE_PROVIDER": "simulated",
            }
        )
    )
    try:
        provider = services.provider
        assert isinstance(provider, SimulatedProvider)
        services.start_provisioner()
        provider.fail_stages[None] = "configure"
        instance_id = services.app.create_instance(ADMIN, name="sim").id
        wait_until(lambda: status(services, instance_id) == "error", 10)
        state = services.app.get_instance(None, instance_id)
        assert (state.failed_stage, state.error_code) == ("configure", "simulated_failure")
        del provider.fail_stages[None]
        services.app.retry(ADMIN, instance_id)
        wait_until(lambda: status(services, instance_id) == "running", 10)
        answer = provider.chat(instance_id, "one two three", end_user="u")
        assert answer["usage"]["input_tokens"] == 3
        assert provider.push_model_policy(instance_id, {"default_model": "m-2"})
        assert provider.chat(instance_id, "hi")["usage"]["model"] == "m-2"
        services.app.pause(ADMIN, instance_id)
        wait_until(lambda: provider.runtimes[instance_id].state == "paused", 10)
        with pytest.raises(RuntimeUnavailableError) as refused:
            provider.chat(instance_id, "hi")
        assert refused.value.reason == "paused"
        services.app.request_deletion(ADMIN, instance_id)
        wait_until(lambda: status(services, instance_id) == "deleted", 10)
        assert provider.known() == []
    finally:
        services.close()
