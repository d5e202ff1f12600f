"""The provisioner with real runtime processes on both stores: killed halfway it still ends
with exactly one runtime per instance; a runtime that cannot start fails with a useful message
and a retry heals it; an instance stuck in a transition goes to error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from adapters.providers.local import LocalProvider
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
