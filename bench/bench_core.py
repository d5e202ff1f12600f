"""The core, without HTTP (issue: core performance), on PostgreSQL.

1. Commands/s (rename on distinct instances, create) with 1 and 8 threads, against a raw
   psycopg loop inserting rows of the same size into a table shaped like the events table,
   one transaction per insert, with the same thread counts.
2. Projection catch-up: a fresh `instances` view applying a stored log of more than 100,000
   events from zero, against reading the same log raw and reading + decoding it.
3. Projection lag at a steady ~200 commands/s with the views running in-process: commit ->
   visible in the `instances` view, against a raw PostgreSQL NOTIFY -> LISTEN delivery.
4. Loading an instance with a 10,000-event history: snapshots every 50 events, against no
   snapshots; cold (cache evicted) and warm (the aggregate cache, as commands see it).
5. `list_instances` at 100,000 instances (one tenant, then 100 tenants): the view's call
   against the same page query run raw with psycopg (no COUNT, no row conversion).

Every scenario runs on a fresh database; 2 and 5 (one tenant) share one, as the list needs
the caught-up view anyway. Sizes can be lowered with BENCH_CORE_* variables for a quick look.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import psycopg
from eventsourcing.cryptography import AESCipher

from adapters.runner import Runner
from adapters.services import Services
from adapters.settings import load_settings
from adapters.store import datastore_of, open_application
from adapters.views.registry import build
from bench.common import console, fresh_database, percentile, show
from domain.application import Lifeline
from domain.instance import Instance
from domain.values import Scope
from projections.instances import InstanceQuery, InstancesView

SECONDS = float(os.environ.get("BENCH_CORE_SECONDS", "5"))
LIST_INSTANCES = int(os.environ.get("BENCH_CORE_LIST_INSTANCES", "100000"))
HISTORY = int(os.environ.get("BENCH_CORE_HISTORY", "10000"))
LAG_RATE = float(os.environ.get("BENCH_CORE_LAG_RATE", "200"))
LAG_SECONDS = float(os.environ.get("BENCH_CORE_LAG_SECONDS", "10"))
QUERY_SAMPLES = int(os.environ.get("BENCH_CORE_QUERY_SAMPLES", "100"))
THREADS = (1, 8)
KEY = AESCipher.create_key(32)
SCOPE = Scope("t")
NOW = datetime.now(UTC)


def settings_for(url: str, **extra: str) -> Any:
    return load_settings(
        {
            "LIFELINE_DATABASE_URL": url,
            "LIFELINE_CIPHER_KEY": KEY,
            "LIFELINE_PROVIDER": "simulated",
            **{f"LIFELINE_{k.upper()}": v for k, v in extra.items()},
        }
    )


@contextmanager
def application(url: str, **extra: str) -> Iterator[Lifeline]:
    app = open_application(settings_for(url, **extra))
    try:
        yield app
    finally:
        app.close()


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.3f}x" if baseline else "n/a"


def fmt_time(seconds: float) -> str:
    return f"{seconds * 1000:,.2f} ms"


# -- helpers -------------------------------------------------------------------------------


def seed(
    app: Lifeline,
    count: int,
    tenants: int = 1,
    extra_events: Callable[[Instance, int], None] | None = None,
    batch_size: int = 1000,
) -> list[uuid.UUID]:
    """Stores `count` instances through the application, `batch_size` per transaction."""
    ids: list[uuid.UUID] = []
    batch: list[Instance] = []
    for n in range(count):
        instance = Instance.create(
            instance_id=uuid.uuid4(),
            tenant_id="t" if tenants == 1 else f"t{n % tenants}",
            name=f"bench instance {n}",
            at=NOW,
            region=("eu", "us", "ap")[n % 3],
            site_id=f"site-{n % 50}",
        )
        if extra_events is not None:
            extra_events(instance, n)
        batch.append(instance)
        ids.append(instance.id)
        if len(batch) == batch_size:
            app.save_many(batch)
            batch = []
    if batch:
        app.save_many(batch)
    return ids


def varied_status(instance: Instance, n: int) -> None:
    """Half creating (1 event), a quarter running, a quarter error (2 events), in every
    tenant: the mix shifts by one every 100 instances."""
    kind = (n + n // 100) % 4
    if kind == 2:
        instance.mark_provisioned(f"h{n}", f"10.0.{n // 250 % 250}.{n % 250}", NOW)
    elif kind == 3:
        instance.fail_provisioning("boot", "bench failure", NOW)


def run_threads(threads: int, seconds: float, work: Callable[[int, int], None]) -> float:
    """Runs `work(thread, n)` in `threads` threads for `seconds`; returns calls per second."""
    counts = [0] * threads
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)
    stop = threading.Event()

    def loop(t: int) -> None:
        barrier.wait()
        n = 0
        try:
            while not stop.is_set():
                work(t, n)
                n += 1
        except BaseException as e:
            errors.append(e)
        counts[t] = n

    workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return sum(counts) / elapsed


def events_table(app: Lifeline) -> str:
    return str(app.recorder.events_table_name)  # type: ignore[attr-defined]


# -- 1. commands/s ---------------------------------------------------------------------------


def raw_inserts(url: str, threads: int, state_size: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS raw_events (notification_id BIGSERIAL PRIMARY KEY, "
            "originator_id UUID NOT NULL, originator_version BIGINT NOT NULL, "
            "topic TEXT NOT NULL, state BYTEA NOT NULL, "
            "UNIQUE (originator_id, originator_version))"
        )
    conns = [psycopg.connect(url, autocommit=True) for _ in range(threads)]
    ids = [uuid.uuid4() for _ in range(threads)]
    payload = os.urandom(state_size)

    def insert(t: int, n: int) -> None:
        conns[t].execute(
            "INSERT INTO raw_events (originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s)",
            (ids[t], n + 1, "domain.instance:Instance.Renamed", payload),
        )

    try:
        return run_threads(threads, SECONDS, insert)
    finally:
        for c in conns:
            c.close()


def commands() -> list[list[object]]:
    rows: list[list[object]] = []
    with fresh_database("core_cmd") as url, application(url) as app:
        per_thread = 2000
        ids = seed(app, per_thread * max(THREADS))
        results: dict[str, float] = {}
        for threads in THREADS:
            mine = [ids[t * per_thread : (t + 1) * per_thread] for t in range(threads)]

            def rename(t: int, n: int, mine: list[list[uuid.UUID]] = mine) -> None:
                app.rename(SCOPE, mine[t][n % per_thread], f"renamed {t} {n}")

            results[f"rename {threads}"] = run_threads(threads, SECONDS, rename)

            def create(t: int, n: int) -> None:
                app.create_instance(SCOPE, name=f"created {t} {n}", region="eu")

            results[f"create {threads}"] = run_threads(threads, SECONDS, create)
        with psycopg.connect(url) as conn:
            state_size = int(
                conn.execute(
                    f"SELECT avg(octet_length(state)) FROM {events_table(app)}"
                ).fetchone()[0]  # type: ignore[index]
            )
        for threads in THREADS:
            baseline = raw_inserts(url, threads, state_size)
            rows.append(
                [f"raw psycopg INSERT, {state_size} B row, {threads} thr (baseline)",
                 f"{baseline:,.0f}/s", "", "1.000x"]
            )  # fmt: skip
            for kind in ("rename", "create"):
                value = results[f"{kind} {threads}"]
                rows.append(
                    [f"app.{'rename' if kind == 'rename' else 'create_instance'}, {threads} thr",
                     f"{value:,.0f}/s", f"{1000 / value * threads:.2f} ms",
                     ratio(value, baseline)]
                )  # fmt: skip
    return rows


# -- 2. catch-up, and 5. list_instances --------------------------------------------------------


def catch_up(app: Lifeline, total: int) -> list[list[object]]:
    """Times raw reads, reads + decode, and a fresh instances view applying everything."""

    def read(decode: bool) -> float:
        started = time.perf_counter()
        position = 0
        while True:
            found = app.recorder.select_notifications(
                start=position, limit=500, inclusive_of_start=False
            )
            if not found:
                break
            if decode:
                for n in found:
                    app.mapper.to_domain_event(n)
            position = found[-1].id
        return time.perf_counter() - started

    raw = read(decode=False)
    decoded = read(decode=True)
    model = build("instances", datastore_of(app))
    model.view.clear()
    started = time.perf_counter()
    Runner(app, model).catch_up_once()
    applied = time.perf_counter() - started
    return [
        ["select_notifications, 500/batch (baseline)", f"{total / raw:,.0f} ev/s",
         f"{raw:.2f} s", "1.000x"],
        ["select + decrypt/decode", f"{total / decoded:,.0f} ev/s", f"{decoded:.2f} s",
         ratio(raw, decoded)],
        ["instances view catch-up from zero", f"{total / applied:,.0f} ev/s",
         f"{applied:.2f} s", ratio(raw, applied)],
    ]  # fmt: skip


def sample(call: Callable[[], object], count: int = QUERY_SAMPLES) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def listing(app: Lifeline, url: str, label: str, tenant: str) -> list[list[object]]:
    model = build("instances", datastore_of(app))
    view = model.view
    if not isinstance(view, InstancesView):
        raise TypeError(view)
    table = view.prefix  # type: ignore[attr-defined]
    queries: dict[str, tuple[InstanceQuery, str, list[Any]]] = {
        "first page, limit 50": (
            InstanceQuery(tenant_id=tenant),
            "tenant_id=%s AND status<>'deleted'",
            [tenant],
        ),
        "status=error": (
            InstanceQuery(tenant_id=tenant, status="error"),
            "tenant_id=%s AND status=%s AND status<>'deleted'",
            [tenant, "error"],
        ),
        "name contains 'instance 7'": (
            InstanceQuery(tenant_id=tenant, name_contains="instance 7"),
            "tenant_id=%s AND status<>'deleted' AND name_lower LIKE %s",
            [tenant, "%instance 7%"],
        ),
        "name contains '99999' (rare)": (
            InstanceQuery(tenant_id=tenant, name_contains="99999"),
            "tenant_id=%s AND status<>'deleted' AND name_lower LIKE %s",
            [tenant, "%99999%"],
        ),
    }
    rows: list[list[object]] = []
    with psycopg.connect(url) as conn:
        for name, (query, where, params) in queries.items():
            page = view.list_instances(query)
            statement = f"SELECT * FROM {table} WHERE {where} ORDER BY position DESC LIMIT 51"
            base = sample(lambda s=statement, p=params: conn.execute(s, p).fetchall())
            got = sample(lambda q=query: view.list_instances(q))
            rows.append(_list_row(f"{label}: {name} (total {page.total:,})", got, base))
        # Cursor pages: 200 consecutive pages of 50, newest first.
        first = view.list_instances(InstanceQuery(tenant_id=tenant))
        cursors = [first.next_after]
        for _ in range(QUERY_SAMPLES):
            page = view.list_instances(InstanceQuery(tenant_id=tenant, after=cursors[-1]))
            if page.next_after is None:
                break
            cursors.append(page.next_after)
        statement = (
            f"SELECT * FROM {table} WHERE tenant_id=%s AND status<>'deleted' "
            "AND position<%s ORDER BY position DESC LIMIT 51"
        )
        base_i = itertools.cycle(cursors)
        got_i = itertools.cycle(cursors)
        base = sample(lambda: conn.execute(statement, (tenant, next(base_i))).fetchall())
        got = sample(
            lambda: view.list_instances(InstanceQuery(tenant_id=tenant, after=next(got_i)))
        )
        rows.append(_list_row(f"{label}: cursor pages 2..{len(cursors) + 1}", got, base))
    return rows


def _list_row(label: str, got: list[float], base: list[float]) -> list[object]:
    return [
        label,
        fmt_time(percentile(got, 50)),
        fmt_time(percentile(got, 99)),
        fmt_time(percentile(base, 99)),
        ratio(percentile(got, 99), percentile(base, 99)),
    ]


def catch_up_and_list() -> tuple[list[list[object]], list[list[object]]]:
    catch_rows: list[list[object]] = []
    list_rows: list[list[object]] = []
    with fresh_database("core_catchup") as url, application(url) as app:
        started = time.perf_counter()
        seed(app, LIST_INSTANCES, extra_events=varied_status)
        total = app.recorder.max_notification_id() or 0
        console.print(f"  seeded {LIST_INSTANCES:,} instances, {total:,} events "
                      f"in {time.perf_counter() - started:.1f}s")  # fmt: skip
        catch_rows = catch_up(app, total)
        list_rows += listing(app, url, "1 tenant", "t")
    with fresh_database("core_list") as url, application(url) as app:
        started = time.perf_counter()
        seed(app, LIST_INSTANCES, tenants=100, extra_events=varied_status)
        Runner(app, build("instances", datastore_of(app))).catch_up_once()
        console.print(f"  seeded + projected {LIST_INSTANCES:,} instances over 100 tenants "
                      f"in {time.perf_counter() - started:.1f}s")  # fmt: skip
        list_rows += listing(app, url, "100 tenants", "t7")
    return catch_rows, list_rows


# -- 3. projection lag -------------------------------------------------------------------------


def paced(rate: float, seconds: float, step: Callable[[int], None]) -> None:
    interval = 1 / rate
    start = time.perf_counter()
    n = 0
    while (due := start + n * interval) < start + seconds:
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        step(n)
        n += 1


def lag() -> list[list[object]]:
    with fresh_database("core_lag") as url:
        services = Services(settings_for(url))
        try:
            app = services.app
            ids = seed(app, 500)
            services.start_projections()
            services.wait_for(app.recorder.max_notification_id(), ["instances"], timeout=30)
            view = services.models["instances"].view
            pending: queue.Queue[tuple[int, float] | None] = queue.Queue()
            lags: list[float] = []
            command_times: list[float] = []

            def observe() -> None:
                while (item := pending.get()) is not None:
                    position, committed = item
                    view.wait(app.name, position, timeout=10)
                    lags.append(time.perf_counter() - committed)

            observer = threading.Thread(target=observe)
            observer.start()

            def step(n: int) -> None:
                started = time.perf_counter()
                result = app.rename(SCOPE, ids[n % len(ids)], f"lag {n}")
                committed = time.perf_counter()
                command_times.append(committed - started)
                pending.put((result.position or 0, committed))

            paced(LAG_RATE, LAG_SECONDS, step)
            pending.put(None)
            observer.join()
            achieved = len(command_times) / LAG_SECONDS
        finally:
            services.close()
        base = notify_latency(url)
    return [
        ["raw INSERT+NOTIFY -> LISTEN delivery (baseline)", fmt_time(percentile(base, 50)),
         fmt_time(percentile(base, 99)), "1.000x"],
        [f"rename commit -> visible in instances view ({achieved:.0f} cmd/s)",
         fmt_time(percentile(lags, 50)), fmt_time(percentile(lags, 99)),
         ratio(percentile(lags, 99), percentile(base, 99))],
        ["(rename command latency, for reference)", fmt_time(percentile(command_times, 50)),
         fmt_time(percentile(command_times, 99)), ""],
    ]  # fmt: skip


def notify_latency(url: str) -> list[float]:
    """At the same rate: a committed INSERT + NOTIFY until a listener has it."""
    with (
        psycopg.connect(url, autocommit=True) as writer,
        psycopg.connect(url, autocommit=True) as listener,
    ):
        writer.execute("CREATE TABLE IF NOT EXISTS raw_lag (id BIGSERIAL PRIMARY KEY, v TEXT)")
        listener.execute("LISTEN raw_lag")
        sent: dict[str, float] = {}
        samples: list[float] = []
        done = threading.Event()

        def listen() -> None:
            while not done.is_set():
                samples.extend(
                    time.perf_counter() - sent.pop(note.payload)
                    for note in listener.notifies(timeout=0.2)
                )

        thread = threading.Thread(target=listen)
        thread.start()

        # Stamped before the commit: the notification can arrive before commit() returns.
        def stamped(n: int) -> None:
            sent[str(n)] = time.perf_counter()
            with writer.transaction():
                writer.execute("INSERT INTO raw_lag (v) VALUES (%s)", (str(n),))
                writer.execute("SELECT pg_notify('raw_lag', %s)", (str(n),))

        paced(LAG_RATE, min(LAG_SECONDS, 5), stamped)
        time.sleep(0.5)
        done.set()
        thread.join()
    return samples


# -- 4. loading a long history -----------------------------------------------------------------


def loads() -> list[list[object]]:
    with fresh_database("core_load") as url:
        with application(url) as app:
            instance = Instance.create(instance_id=uuid.uuid4(), tenant_id="t", name="n0", at=NOW)
            for n in range(1, HISTORY):
                instance.rename(f"n{n}", NOW)
            # One save: the application takes a snapshot at every 50th version on the way.
            app.save(instance)
        rows: list[list[object]] = []
        figures: dict[str, list[float]] = {}
        for label, interval, count in (("snapshots every 50", "50", 200),
                                       ("no snapshots", "0", 20)):  # fmt: skip
            with application(url, snapshot_interval=interval) as app:
                repo = app.repository
                if repo.get(instance.id).version != HISTORY:
                    raise RuntimeError("the history was not stored whole")

                def cold(repo: Any = repo) -> None:
                    if repo.cache is not None:
                        with suppress(KeyError):
                            repo.cache.get(instance.id, evict=True)
                    repo.get(instance.id)

                figures[f"{label} cold"] = sample(cold, count)
                repo.get(instance.id)
                figures[f"{label} warm"] = sample(lambda repo=repo: repo.get(instance.id), 200)
        base = figures["no snapshots cold"]
        for name, got in figures.items():
            rows.append([f"load {HISTORY:,}-event instance, {name}"
                         + (" (baseline)" if got is base else ""),
                         fmt_time(median(got)), fmt_time(percentile(got, 99)),
                         ratio(median(base), median(got)) + " faster"])  # fmt: skip
    return rows


def median(samples: list[float]) -> float:
    return percentile(samples, 50)


def main() -> None:
    started = time.perf_counter()
    console.print("[bold]core benchmarks[/bold] (PostgreSQL)")
    show(
        f"1. Commands/s, {SECONDS:g}s per figure (one transaction per command / insert)",
        commands(),
        ["what", "throughput", "mean latency", "ratio to raw insert"],
    )
    catch_rows, list_rows = catch_up_and_list()
    show(
        "2. Projection catch-up from zero",
        catch_rows,
        ["what", "rate", "time", "speed vs raw read"],
    )
    show(
        f"3. Projection lag at ~{LAG_RATE:g} commands/s, views in-process",
        lag(),
        ["what", "p50", "p99", "p99 ratio to baseline"],
    )
    show("4. Loading a long history", loads(), ["what", "median", "p99", "vs no snapshots"])
    show(
        f"5. list_instances at {LIST_INSTANCES:,} instances ({QUERY_SAMPLES} samples each)",
        list_rows,
        ["query", "p50", "p99", "raw SQL p99 (baseline)", "p99 ratio"],
    )
    console.print(f"core benchmarks took {time.perf_counter() - started:.0f}s")
