"""Provisioning on the local provider (issue: provisioning and runtimes): 20 instances created
at once through `POST /v1/instances`; the time from the request to `running` for each, with
the provisioner in-process and a real runtime process per instance. Target: p50 at most 1 s.
The baseline is the bare cost of starting one runtime process and waiting for it to answer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from tempfile import mkdtemp

import httpx

from adapters.providers.local import LocalProvider, free_port
from bench.bench_api import KEY, serve
from bench.common import fresh_database, median, percentile, show

COUNT = 20


def bare_start() -> float:
    """One runtime process started and answering, without Lifeline around it."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.reference_runtime", "--port", str(port)]
    )
    try:
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=1)
                return time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.005)
    finally:
        process.terminate()
        process.wait()


async def create_and_wait(client: httpx.AsyncClient, n: int) -> float:
    started = time.perf_counter()
    answer = await client.post("/v1/instances", json={"name": f"bench {n}"})
    instance_id = answer.json()["instance_id"]
    waited = await client.get(
        f"/v1/instances/{instance_id}/wait", params={"status": "running", "timeout": 60}
    )
    if waited.status_code != 200:
        raise RuntimeError(f"instance {instance_id} did not run: {waited.text}")
    return time.perf_counter() - started


async def burst(url: str) -> list[float]:
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, timeout=90) as client:
        return list(await asyncio.gather(*(create_and_wait(client, n) for n in range(COUNT))))


def main() -> None:
    tmp = Path(mkdtemp(prefix="lifeline-bench-provision-"))
    baseline = [bare_start() for _ in range(5)]
    with fresh_database("provision") as url:
        env = {
            **os.environ,
            "LIFELINE_DATABASE_URL": url,
            "LIFELINE_KEY_FILE": str(tmp / "key"),
            "LIFELINE_BOOTSTRAP_API_KEY": KEY,
            "LIFELINE_PROVIDER": "local",
            "LIFELINE_RUNTIME_DIR": str(tmp / "runtimes"),
        }
        port = free_port()
        server = serve(["--factory", "api.app:create_app"], env, port)
        try:
            times = asyncio.run(burst(f"http://127.0.0.1:{port}"))
        finally:
            server.terminate()
            server.wait()
            provider = LocalProvider(tmp / "runtimes")
            for instance_id in provider.known():
                provider.destroy(instance_id)
    show(
        f"POST /v1/instances to running, {COUNT} at once, local provider (PostgreSQL)",
        [
            ["one bare runtime start (baseline)", median(baseline) * 1000,
             percentile(baseline, 99) * 1000, "-"],
            ["create to running", median(times) * 1000, percentile(times, 99) * 1000,
             f"{median(times) / median(baseline):.1f}x"],
        ],
        ["what", "p50 ms", "p99 ms", "vs baseline"],
    )  # fmt: skip
