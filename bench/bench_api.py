"""The REST API under load (issue: REST API v1).

1. Lifecycle commands over HTTP: pause/resume alternating over many running instances, 32
   concurrent clients, uvicorn with one worker, against a bare Litestar endpoint that validates
   a msgspec body, measured in the same run. Target: at least 0.5x the bare endpoint's req/s.
2. `GET /v1/instances` latency at 100,000 instances. Target: p99 at most 20 ms.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from tempfile import mkdtemp

import httpx

from adapters.settings import load_settings
from adapters.store import open_application
from bench.common import fresh_database, percentile, show
from bench.http_load import run_load
from domain.instance import Instance

CLIENTS = 32
DURATION = float(os.environ.get("BENCH_API_SECONDS", "10"))
COMMAND_INSTANCES = 2_000
LIST_INSTANCES = int(os.environ.get("BENCH_LIST_INSTANCES", "100000"))
KEY = "bench-admin-key"
TENANT = "default"


def seed(url: str, tmp: Path, count: int, tenants: int = 1) -> list[uuid.UUID]:
    """Stores `count` running instances quickly (batched saves, no HTTP)."""
    settings = load_settings({"LIFELINE_DATABASE_URL": url, "LIFELINE_KEY_FILE": str(tmp / "key")})
    app = open_application(settings)
    ids: list[uuid.UUID] = []
    now = datetime.now(UTC)
    batch: list[Instance] = []
    for n in range(count):
        instance = Instance.create(
            instance_id=uuid.uuid4(),
            tenant_id=TENANT if n % tenants == 0 else f"tenant-{n % tenants}",
            name=f"bench instance {n}",
            at=now,
            region=("eu", "us", "ap")[n % 3],
            site_id=f"site-{n % 50}",
        )
        instance.mark_provisioned(f"h{n}", f"10.0.{n // 250 % 250}.{n % 250}", now)
        batch.append(instance)
        if instance.tenant_id == TENANT:
            ids.append(instance.id)
        if len(batch) == 1000:
            app.save(*batch)
            batch = []
    if batch:
        app.save(*batch)
    app.close()
    return ids


def serve(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", *args, "--port", str(port), "--log-level", "warning",
         "--no-access-log", "--workers", "1"],
        env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code < 500:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server on {port} did not start")


def load(port: int, paths: list[list[str]], actions: list[str]) -> tuple[float, list[float]]:
    """`CLIENTS` connections POST in a loop for DURATION seconds; returns req/s, latencies."""

    def next_request(client: int, n: int) -> tuple[str, str, bytes]:
        mine = paths[client]
        action = actions[(n // len(mine)) % len(actions)]
        body = b'{"action": "%s"}' % action.encode()
        return "POST", mine[n % len(mine)].format(action=action), body

    return asyncio.run(run_load(port, CLIENTS, DURATION, next_request, {"X-API-Key": KEY}))


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def commands(url: str, tmp: Path) -> list[list[object]]:
    ids = seed(url, tmp, COMMAND_INSTANCES)
    env = {
        **os.environ,
        "LIFELINE_DATABASE_URL": url,
        "LIFELINE_KEY_FILE": str(tmp / "key"),
        "LIFELINE_BOOTSTRAP_API_KEY": KEY,
        "LIFELINE_PROVIDER": "simulated",
    }
    rows: list[list[object]] = []
    per_client = [ids[i::CLIENTS] for i in range(CLIENTS)]
    port = free_port()
    server = serve(["bench.bare_app:app"], env, port)
    try:
        bare_paths = [[f"/bare/{i}" for i in mine] for mine in per_client]
        bare_rps, bare_lat = load(port, bare_paths, ["x"])
    finally:
        server.terminate()
        server.wait()
    port = free_port()
    server = serve(["--factory", "api.app:create_app"], env, port)
    try:
        paths = [[f"/v1/instances/{i}/{{action}}" for i in mine] for mine in per_client]
        rps, lat = load(port, paths, ["pause", "resume"])
    finally:
        server.terminate()
        server.wait()
    rows.append(["bare Litestar POST (baseline)", bare_rps, percentile(bare_lat, 99) * 1000, 1.0])
    rows.append(
        [
            "pause/resume over HTTP",
            rps,
            percentile(lat, 99) * 1000,
            rps / bare_rps if bare_rps else 0,
        ]
    )
    return rows


def listing(url: str, tmp: Path) -> list[list[object]]:
    seed(url, tmp, LIST_INSTANCES, tenants=1)
    env = {
        **os.environ,
        "LIFELINE_DATABASE_URL": url,
        "LIFELINE_KEY_FILE": str(tmp / "key"),
        "LIFELINE_BOOTSTRAP_API_KEY": KEY,
        "LIFELINE_PROVIDER": "simulated",
    }
    port = free_port()
    server = serve(["--factory", "api.app:create_app"], env, port)
    rows: list[list[object]] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}) as c:
            deadline = time.monotonic() + 600
            while c.get("/ready").json()["lags"].get("instances", 1) > 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("the instances view did not catch up")
                time.sleep(0.5)
            queries = {
                "first page (limit 50)": {"limit": 50},
                "status=running, region=eu": {"status": "running", "region": "eu", "limit": 50},
                "site_id filter": {"site_id": "site-7", "limit": 50},
                "name search q=instance 99": {"q": "instance 99", "limit": 50},
                "deep offset 50,000": {"offset": 50_000, "limit": 50},
            }
            for label, params in queries.items():
                samples = []
                for _ in range(200):
                    started = time.perf_counter()
                    response = c.get("/v1/instances", params=params)
                    samples.append(time.perf_counter() - started)
                    response.raise_for_status()
                rows.append([f"GET /v1/instances {label}", percentile(samples, 50) * 1000,
                             percentile(samples, 99) * 1000, "<= 20 ms"])  # fmt: skip
            cursor = c.get("/v1/instances", params={"limit": 50}).json()["next_cursor"]
            samples = []
            for _ in range(200):
                started = time.perf_counter()
                page = c.get("/v1/instances", params={"limit": 50, "cursor": cursor}).json()
                samples.append(time.perf_counter() - started)
                cursor = page["next_cursor"]
            rows.append(["GET /v1/instances cursor pages", percentile(samples, 50) * 1000,
                         percentile(samples, 99) * 1000, "<= 20 ms"])  # fmt: skip
    finally:
        server.terminate()
        server.wait()
    return rows


def main() -> None:
    tmp = Path(mkdtemp(prefix="lifeline-bench-api-"))
    with fresh_database("api") as url:
        rows = commands(url, tmp)
    show(
        f"Lifecycle commands over HTTP ({CLIENTS} clients, {DURATION:g}s, uvicorn 1 worker)",
        rows,
        ["endpoint", "requests/s", "p99 ms", "ratio to bare"],
    )
    with fresh_database("list") as url:
        rows = listing(url, tmp)
    show(
        f"GET /v1/instances at {LIST_INSTANCES:,} instances (PostgreSQL)",
        rows,
        ["query", "p50 ms", "p99 ms", "target"],
    )
