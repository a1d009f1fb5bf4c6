"""`notifications bench`: what a notification costs the engine, against a bare Temporal workflow, in one run.

Temporal's dev server is the bottleneck on one machine, so the only honest yardstick is the
same server running the smallest possible workflow. Every scenario gets its own fresh dev
server (the flags of `notifications dev`, SQLite file with WAL, in a temp dir) and its own
SQL database, so nothing one scenario leaves behind (history rows, held workflows) slows the
next. Workers run as separate processes, started the way operators start them, so the CPU
seconds of the server and of the worker, and the worker's peak RSS, are measured apart.

Scenarios (all by default):
  baseline     N bare workflows of one trivial activity (defined here), same worker settings
  ours         N notifications through the Python client, outbox provider, per --latency-ms
  resend       N emails through the Resend SDK against the local fake Resend API (tests/fakes)
  concurrency  a 100 ms provider at low and high configured concurrency: concurrency-bound throughput
  backlog      queues paused, --backlog notifications held, worker RSS at 10 % and 100 %, resume, drain
  unloaded     a few notifications one at a time: enqueue-to-sent p50 vs the bare round trip p50

The headline pair (baseline and ours at 0 ms) runs in --rounds alternating rounds (B O O B),
each on a fresh server, merged into one result: this machine's speed drifts between minutes,
and alternating makes a drift weigh on both sides of the ratio.

The module's top level imports only the standard library and temporalio: the bare workflow
lives here and the workflow sandbox re-imports its module for every run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results.json"
BASELINE_WORKFLOW = "BenchBaselineWorkflow"
BASELINE_ACTIVITY = "bench_trivial"
BASELINE_QUEUES = {"email": "bench-baseline-email", "push": "bench-baseline-push"}
ALL_SCENARIOS = ("baseline", "ours", "resend", "concurrency", "backlog", "unloaded")
RESEND_TEST_KEY = "re_bench_key"


# -- the bare workflow: the yardstick ----------------------------------------------------------------
@activity.defn(name=BASELINE_ACTIVITY)
async def bench_trivial(arg: str) -> float:
    """Does nothing but return when it ran, so the round trip can be timed without a long-poll per workflow."""
    return time.time()


@workflow.defn(name=BASELINE_WORKFLOW)
class BenchBaselineWorkflow:
    @workflow.run
    async def run(self, arg: str) -> float:
        result: float = await workflow.execute_activity(
            BASELINE_ACTIVITY, arg, result_type=float, start_to_close_timeout=timedelta(seconds=30)
        )
        return result


async def run_baseline_worker(email_concurrency: int, push_concurrency: int, graceful_shutdown: float) -> None:
    """The bare workflow's worker, built like `notifications worker`: one Worker per queue, same caps."""
    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from notifications.config import get_settings
    from notifications.temporal import connect
    from processes.logs import configure_logging

    configure_logging()
    settings = get_settings()
    runtime = None
    if settings.metrics_bind:  # SDK metrics cost CPU: on for both sides, as `notifications worker` has them
        from activities.metrics import prometheus_runtime

        runtime = prometheus_runtime(settings.metrics_bind)
    client = await connect(settings, runtime=runtime)
    # Passing this module through keeps the bare workflow bare: a real one would sit in a tiny module.
    runner = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules("bench.run"))
    workers = [
        Worker(
            client,
            task_queue=BASELINE_QUEUES[channel],
            workflows=[BenchBaselineWorkflow],
            activities=[bench_trivial],
            max_concurrent_activities=concurrency,
            # The SDK's poller split (1 normal, 4 sticky), not ours (4 normal, 1 sticky): a bare
            # workflow's second task goes to the sticky queue, and with one sticky poller it
            # waited past the 10 s sticky timeout under a 2000 backlog (11.85 events, not 11).
            graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown),
            workflow_runner=runner,
        )
        for channel, concurrency in (("email", email_concurrency), ("push", push_concurrency))
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    await stop.wait()
    await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)


# -- options ----------------------------------------------------------------------------------------
@dataclass
class BenchOptions:
    n: int = 2000
    quick: bool = False
    latencies_ms: list[int] = field(default_factory=lambda: [0, 100])
    scenarios: list[str] = field(default_factory=lambda: list(ALL_SCENARIOS))
    output: Path = DEFAULT_OUTPUT
    database_url: str | None = None
    enqueue_concurrency: int = 32
    rounds: int = 2
    email_concurrency: int = 5
    push_concurrency: int = 10
    high_concurrency: int = 50
    low_concurrency: int = 1
    concurrency_latency_ms: int = 100
    backlog: int = 10_000
    unloaded_count: int = 10
    history_sample: int = 20
    secondary_n: int | None = None  # N of the resend and concurrency scenarios; None: same as n
    scenario_timeout: float = 600.0
    profile_dir: Path | None = None
    keep_temp: bool = False

    @classmethod
    def quick_defaults(cls) -> BenchOptions:
        # Under a minute in all: the headline pair at N=300, the other scenarios smaller, one latency.
        return cls(
            n=300,
            quick=True,
            rounds=1,
            latencies_ms=[0],
            backlog=200,
            unloaded_count=3,
            history_sample=10,
            secondary_n=100,
            scenario_timeout=120.0,
        )

    @property
    def other_n(self) -> int:
        return self.secondary_n or self.n


# -- small helpers ----------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), so p99 of 300 samples is not the max."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _ms_stats(values_s: Sequence[float], qs: Iterable[int] = (50, 95, 99)) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for q in qs:
        v = percentile(values_s, q)
        out[f"p{q}"] = None if v is None else round(v * 1000, 1)
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _epoch(value: datetime) -> float:
    """SQLite hands back naive datetimes; the mirror writes UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _proc_status(pid: int, key: str) -> int | None:
    """A kB field of /proc/<pid>/status (VmHWM is the kernel's exact peak RSS, no sampling needed)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children, 0 when it is gone."""
    import psutil

    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            with suppress(psutil.Error):
                total += sum(child.cpu_times()[:2])
        return float(total)
    except psutil.Error:
        return 0.0


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "OUTBOX_", "EMAIL_", "PUSH_"))}
    # Without bytecode the workflow sandbox recompiles the workflow modules on every run (shared facts).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def precompile() -> None:
    """Write the bytecode the workers' sandboxes will load, so neither side pays compilation per workflow."""
    import compileall

    for package in ("notifications", "workflows", "activities"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


def _scrape_metrics(port: int) -> dict[str, float]:
    """Totals of the dev server's Prometheus counters we care about (per fresh server = per scenario)."""
    wanted = ("persistence_requests", "service_requests", "task_requests", "workflow_task_attempt_count")
    totals: dict[str, float] = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return totals
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in wanted:
            with suppress(ValueError):
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


# -- processes --------------------------------------------------------------------------------------
@dataclass
class Stack:
    """One scenario's dev server, database and worker process."""

    workdir: Path
    address: str
    metrics_port: int
    database_url: str
    server: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes] | None = None
    worker_log: Path | None = None
    profiler: subprocess.Popen[bytes] | None = None

    def cpu(self) -> tuple[float, float]:
        return _cpu_seconds(self.server.pid), _cpu_seconds(self.worker.pid) if self.worker else 0.0

    def worker_rss_kb(self) -> int | None:
        return _proc_status(self.worker.pid, "VmRSS") if self.worker else None

    def worker_peak_rss_kb(self) -> int | None:
        return _proc_status(self.worker.pid, "VmHWM") if self.worker else None

    def check_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is not None:
            tail = self.worker_log.read_text()[-2000:] if self.worker_log and self.worker_log.exists() else ""
            raise RuntimeError(f"the worker exited with {self.worker.returncode}:\n{tail}")


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@asynccontextmanager
async def stack(opts: BenchOptions, name: str, base: Path) -> AsyncIterator[Stack]:
    """A fresh dev server and database for one scenario; every process is stopped on the way out."""
    from processes.devserver import start_dev_server

    workdir = base / name
    workdir.mkdir(parents=True, exist_ok=True)
    port, metrics_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    database_url = opts.database_url or f"sqlite:///{workdir / 'notifications.db'}"
    server = await asyncio.to_thread(
        start_dev_server,
        address,
        db_file=workdir / "temporal.db",
        ui_port=None,
        extra=["--metrics-port", str(metrics_port)],
        log_file=workdir / "temporal.log",
    )
    st = Stack(workdir, address, metrics_port, database_url, server)
    try:
        from notifications.config import Settings
        from notifications.sql.migrate import upgrade

        await asyncio.to_thread(upgrade, Settings(database_url=database_url, data_dir=workdir))
        yield st
    finally:
        _stop(st.profiler, 10, signal.SIGINT)  # py-spy writes its output on SIGINT, not on SIGTERM
        # Both told at once: the measurement is over, and the server's 1.3 s shutdown overlaps the worker's.
        for proc in (st.worker, st.server):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        _stop(st.worker)
        _stop(st.server)


async def start_worker(
    st: Stack,
    opts: BenchOptions,
    *,
    kind: str,
    email_concurrency: int | None = None,
    push_concurrency: int | None = None,
    queues: Iterable[str] | None = None,
    **env: str,
) -> None:
    """`notifications worker` (or the bare workflow's worker) in its own process, same settings for both;
    returns once it polls its queues, so no scenario's clock includes worker start-up."""
    _spawn_worker(
        st, opts, kind, email_concurrency or opts.email_concurrency, push_concurrency or opts.push_concurrency, env
    )
    if queues is None:
        queues = ["notification-email", "notification-push"] if kind == "ours" else BASELINE_QUEUES.values()
    await wait_worker_ready(st, queues)


def _spawn_worker(
    st: Stack, opts: BenchOptions, kind: str, email_concurrency: int, push_concurrency: int, env: dict[str, str]
) -> None:
    exe = str(Path(sys.executable).parent / "notifications")
    cmd = [exe, "worker" if kind == "ours" else "bench-worker"]
    cmd += ["--email-concurrency", str(email_concurrency), "--push-concurrency", str(push_concurrency)]
    st.worker_log = st.workdir / f"worker-{kind}.log"
    environment = _child_env(
        TEMPORAL_ADDRESS=st.address,
        DATABASE_URL=st.database_url,
        DATA_DIR=str(st.workdir),
        METRICS_BIND=f"127.0.0.1:{free_port()}",
        **env,
    )
    with open(st.worker_log, "ab") as log:
        st.worker = subprocess.Popen(cmd, env=environment, cwd=st.workdir, stdout=log, stderr=subprocess.STDOUT)
    if opts.profile_dir is not None and shutil.which("py-spy", path=str(Path(sys.executable).parent)):
        opts.profile_dir.mkdir(parents=True, exist_ok=True)
        # Collapsed stacks ("a;b;c count" lines): flamegraph tools read them, and so does grep.
        out = opts.profile_dir / f"{st.workdir.name}.collapsed.txt"
        st.profiler = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(st.worker.pid),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(st.workdir / "py-spy.log", "ab"),
        )


async def wait_worker_ready(st: Stack, queues: Iterable[str], limit_s: float = 60) -> None:
    """Wait until the worker polls every queue, so no scenario's clock includes worker start-up."""
    from temporalio.client import Client

    from notifications.temporal import task_queue_pollers

    client = await Client.connect(st.address)
    deadline = time.monotonic() + limit_s
    pending = set(queues)
    while pending and time.monotonic() < deadline:
        st.check_worker()
        for queue in list(pending):
            if await task_queue_pollers(client, queue, "activity"):
                pending.discard(queue)
        await asyncio.sleep(0.2)
    if pending:
        raise TimeoutError(f"the worker did not poll {sorted(pending)} within {limit_s:.0f} s")


async def wait_idle(st: Stack, *, quiet_cpu: float = 0.05, limit_s: float = 60) -> None:
    """Until the worker uses under 5 % of a core for a second: its held workflows are all in place."""
    deadline = time.monotonic() + limit_s
    last = st.cpu()[1]
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = st.cpu()[1]
        if now - last < quiet_cpu:
            return
        last = now


# -- measurements --------------------------------------------------------------------------------------
RAW = "_raw"  # per-notification samples, kept until rounds are merged; not written out
RAW_HISTORY = "_raw_history"  # the same for the sampled histories


async def history_stats(address: str, workflow_ids: Sequence[str], sample: int) -> dict[str, Any]:
    """Events per workflow from real histories: the engine's cost per notification, in its own unit."""
    from temporalio.client import Client

    client = await Client.connect(address)
    picked = random.Random(7).sample(list(workflow_ids), min(sample, len(workflow_ids)))
    counts: list[int] = []
    types: Counter[str] = Counter()
    # Where a workflow task's time goes: waiting on the server for a poller, then in the worker.
    waits: list[float] = []
    runs: list[float] = []
    for wid in picked:
        history = await client.get_workflow_handle(wid).fetch_history()
        counts.append(len(history.events))
        at: dict[str, float] = {}
        for event in history.events:
            name = _event_name(event.event_type)
            types[name] += 1
            t = event.event_time.ToMicroseconds() / 1e6
            if name == "WORKFLOW_TASK_SCHEDULED":
                # a task that timed out on the sticky queue is scheduled again: its wait runs from the first
                at.setdefault("scheduled", t)
            elif name == "WORKFLOW_TASK_STARTED" and "scheduled" in at:
                waits.append(t - at.pop("scheduled"))
                at["started"] = t
            elif name in ("WORKFLOW_TASK_COMPLETED", "WORKFLOW_TASK_FAILED", "WORKFLOW_TASK_TIMED_OUT"):
                if "started" in at:
                    runs.append(t - at.pop("started"))
    return _history_summary(counts, types, waits, runs)


def _history_summary(counts: list[int], types: Counter[str], waits: list[float], runs: list[float]) -> dict[str, Any]:
    """The histories' numbers, with their samples kept under RAW_HISTORY so rounds can pool them."""
    if not counts:
        return {"history_events_per_workflow": None}
    return {
        "history_events_per_workflow": round(sum(counts) / len(counts), 2),
        "history_events_min_max": [min(counts), max(counts)],
        "history_event_types_per_workflow": {k: round(v / len(counts), 2) for k, v in sorted(types.items())},
        "workflow_task_schedule_to_start_ms": _ms_stats(waits, (50, 95)) if waits else None,
        "workflow_task_start_to_complete_ms": _ms_stats(runs, (50, 95)) if runs else None,
        RAW_HISTORY: {"counts": counts, "types": dict(types), "waits": waits, "runs": runs},
    }


def _event_name(value: int) -> str:
    from temporalio.api.enums.v1 import EventType

    return EventType.Name(value).removeprefix("EVENT_TYPE_")  # type: ignore[arg-type]


@dataclass
class Meter:
    """CPU of server, worker and this process between start() and stop()."""

    st: Stack
    server0: float = 0.0
    worker0: float = 0.0
    client0: float = 0.0
    server_s: float = 0.0
    worker_s: float = 0.0
    client_s: float = 0.0
    metrics0: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self.server0, self.worker0 = self.st.cpu()
        self.client0 = time.process_time()
        self.metrics0 = _scrape_metrics(self.st.metrics_port)

    def stop(self) -> None:
        server, worker = self.st.cpu()
        self.server_s, self.worker_s = server - self.server0, worker - self.worker0
        self.client_s = time.process_time() - self.client0
        after = _scrape_metrics(self.st.metrics_port)
        self.metrics = {k: v - self.metrics0.get(k, 0.0) for k, v in after.items()}

    def report(self, n: int) -> dict[str, Any]:
        per = 1000 / n if n else 0.0
        out: dict[str, Any] = {
            "server_cpu_s_per_1000": round(self.server_s * per, 2),
            "worker_cpu_s_per_1000": round(self.worker_s * per, 2),
            "client_cpu_s_per_1000": round(self.client_s * per, 2),
            "server_cpu_s": round(self.server_s, 2),
            "worker_cpu_s": round(self.worker_s, 2),
        }
        for name, value in sorted(self.metrics.items()):
            out[f"server_{name}_per_workflow"] = round(value / n, 2) if n else None
        return out


async def _bounded(items: Sequence[Any], concurrency: int, fn: Callable[[Any], Awaitable[Any]]) -> list[Any]:
    limiter = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> Any:
        async with limiter:
            return await fn(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


# -- ours -------------------------------------------------------------------------------------------------
def _payload(i: int, channel: str, prefix: str) -> dict[str, Any]:
    nid = f"{prefix}-{i:06d}"
    if channel == "email":
        return {
            "notificationId": nid,
            "to": f"user{i}@example.com",
            "subject": f"Bench {i}",
            "html": f"<p>Hello {i}</p>",
            "text": f"Hello {i}",
            "type": "bench",
            "userId": f"u{i}",
        }
    return {
        "notificationId": nid,
        "userId": f"u{i}",
        "title": f"Bench {i}",
        "message": f"Hello {i}",
        "data": {"i": str(i)},
        "type": "bench",
    }


async def _client(st: Stack, **overrides: Any) -> Any:
    from notifications.client import NotificationClient
    from notifications.config import Settings

    settings = Settings(temporal_address=st.address, database_url=st.database_url, data_dir=st.workdir, **overrides)
    return await NotificationClient.connect(settings)


async def _enqueue_all(client: Any, plan: Sequence[tuple[int, str]], prefix: str, concurrency: int) -> list[float]:
    rng = random.Random(42)
    priorities = {i: rng.randint(1, 10) for i, _ in plan}

    async def one(item: tuple[int, str]) -> float:
        i, channel = item
        t0 = time.perf_counter()
        if channel == "email":
            await client.enqueue_email(_payload(i, channel, prefix), priorities[i])
        else:
            await client.enqueue_push(_payload(i, channel, prefix), priorities[i])
        return time.perf_counter() - t0

    return await _bounded(plan, concurrency, one)


async def _count_sent(client: Any, prefix: str) -> int:
    from sqlalchemy import func, select

    from notifications.sql.models import Notification

    async with client.db.sessions() as session:
        value = await session.scalar(
            select(func.count()).where(Notification.id.like(f"{prefix}-%"), Notification.status == "sent")
        )
    return int(value or 0)


async def _wait_sent(st: Stack, client: Any, prefix: str, n: int, limit_s: float) -> int:
    deadline = time.monotonic() + limit_s
    sent = 0
    while time.monotonic() < deadline:
        st.check_worker()
        sent = await _count_sent(client, prefix)
        if sent >= n:
            return sent
        await asyncio.sleep(0.25)
    return sent


async def _sql_results(client: Any, prefix: str) -> dict[str, Any]:
    """Latencies from the SQL mirror itself (created_at -> completed_at), plus the exactly-once checks."""
    from sqlalchemy import func, select

    from notifications.sql.models import DeliveryAttempt, Notification, OutboxMessage

    async with client.db.sessions() as session:
        rows = (
            await session.execute(
                select(Notification.id, Notification.status, Notification.created_at, Notification.completed_at).where(
                    Notification.id.like(f"{prefix}-%")
                )
            )
        ).all()
        attempts = (
            await session.execute(
                select(DeliveryAttempt.outcome, func.count())
                .where(DeliveryAttempt.notification_id.like(f"{prefix}-%"))
                .group_by(DeliveryAttempt.outcome)
            )
        ).all()
        outbox = await session.scalar(select(func.count()).where(OutboxMessage.notification_id.like(f"{prefix}-%")))
    e2e = [_epoch(r.completed_at) - _epoch(r.created_at) for r in rows if r.status == "sent" and r.completed_at]
    return {
        "rows": len(rows),
        "sent": sum(1 for r in rows if r.status == "sent"),
        "e2e": e2e,
        "first_created": min((_epoch(r.created_at) for r in rows), default=None),
        "last_completed": max((_epoch(r.completed_at) for r in rows if r.completed_at), default=None),
        "delivery_attempts": {str(o): int(c) for o, c in attempts},
        "outbox_messages": int(outbox or 0),
        "ids": [r.id for r in rows],
    }


async def run_ours(
    opts: BenchOptions,
    base: Path,
    name: str,
    *,
    n: int,
    latency_ms: int,
    email_concurrency: int,
    push_concurrency: int,
    channels: Sequence[str] = ("email", "push"),
    worker_env: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """N notifications through the client, concurrently, until every SQL row is `sent`."""
    from notifications.types import workflow_id_for

    async with stack(opts, name, base) as st:
        await start_worker(
            st,
            opts,
            kind="ours",
            email_concurrency=email_concurrency,
            push_concurrency=push_concurrency,
            queues=[f"notification-{c}" for c in channels],
            OUTBOX_LATENCY_MS=str(latency_ms),
            **(worker_env or {}),
        )
        client = await _client(st)
        prefix = f"{name}-{uuid.uuid4().hex[:6]}"
        plan = [(i, channels[i % len(channels)]) for i in range(n)]
        try:
            meter = Meter(st)
            meter.start()
            t0 = time.time()
            enqueue = await _enqueue_all(client, plan, prefix, opts.enqueue_concurrency)
            enqueue_done = time.time()
            sent = await _wait_sent(st, client, prefix, n, opts.scenario_timeout)
            meter.stop()
            peak = st.worker_peak_rss_kb()
            res = await _sql_results(client, prefix)
        finally:
            await client.close()
        end = res["last_completed"] or time.time()
        wall = end - t0
        hist = await history_stats(st.address, [workflow_id_for(i) for i in res["ids"]], opts.history_sample)
        result: dict[str, Any] = {
            "kind": "ours",
            "notifications": n,
            "sent": sent,
            "all_sent": sent == n,
            "latency_ms": latency_ms,
            "email_concurrency": email_concurrency,
            "push_concurrency": push_concurrency,
            "channels": list(channels),
            "wall_seconds": round(wall, 2),
            "throughput_per_s": round(n / wall, 2) if wall > 0 else None,
            "enqueue_seconds": round(enqueue_done - t0, 2),
            "e2e_latency_ms": _ms_stats(res["e2e"]),
            "enqueue_latency_ms": _ms_stats(enqueue, (50, 99)),
            **meter.report(n),
            "worker_peak_rss_mb": round(peak / 1024, 1) if peak else None,
            **hist,
            RAW: {"e2e": res["e2e"], "enqueue": enqueue},
            "delivery_attempts": res["delivery_attempts"],
            "outbox_messages": res["outbox_messages"],
            **(extra or {}),
        }
        if "outbox" not in (worker_env or {}).get("EMAIL_PROVIDER", "outbox"):
            result.pop("outbox_messages")
        return result


# -- baseline -------------------------------------------------------------------------------------------
async def run_baseline(opts: BenchOptions, base: Path, *, n: int, name: str) -> dict[str, Any]:
    """N bare workflows, started concurrently like the notifications, on their own queues and worker."""
    from temporalio.client import Client

    async with stack(opts, name, base) as st:
        await start_worker(st, opts, kind="baseline")
        client = await Client.connect(st.address)
        prefix = f"baseline-{uuid.uuid4().hex[:6]}"
        queues = list(BASELINE_QUEUES.values())
        started: dict[str, float] = {}

        async def start(i: int) -> float:
            wid = f"{prefix}-{i:06d}"
            t0 = time.perf_counter()
            started[wid] = time.time()
            await client.start_workflow(BASELINE_WORKFLOW, wid, id=wid, task_queue=queues[i % 2])
            return time.perf_counter() - t0

        meter = Meter(st)
        meter.start()
        t0 = time.time()
        enqueue = await _bounded(list(range(n)), opts.enqueue_concurrency, start)
        enqueue_done = time.time()
        deadline = time.monotonic() + opts.scenario_timeout
        done = 0
        query = f'WorkflowType = "{BASELINE_WORKFLOW}" AND ExecutionStatus = "Completed"'
        while time.monotonic() < deadline:
            st.check_worker()
            done = (await client.count_workflows(query)).count
            if done >= n:
                break
            await asyncio.sleep(0.25)
        meter.stop()
        peak = st.worker_peak_rss_kb()

        async def result(wid: str) -> float:
            value: float = await client.get_workflow_handle(wid, result_type=float).result()
            return value

        ids = sorted(started)
        finished = await _bounded(ids, 16, result) if done >= n else []
        e2e = [f - started[w] for w, f in zip(ids, finished, strict=True)]
        wall = (max(finished) if finished else time.time()) - t0
        hist = await history_stats(st.address, ids, opts.history_sample)
        return {
            "kind": "baseline",
            "notifications": n,
            "sent": done,
            "all_sent": done >= n,
            "latency_ms": 0,
            "email_concurrency": opts.email_concurrency,
            "push_concurrency": opts.push_concurrency,
            "wall_seconds": round(wall, 2),
            "throughput_per_s": round(n / wall, 2) if wall > 0 else None,
            "enqueue_seconds": round(enqueue_done - t0, 2),
            "e2e_latency_ms": _ms_stats(e2e),
            "enqueue_latency_ms": _ms_stats(enqueue, (50, 99)),
            **meter.report(n),
            "worker_peak_rss_mb": round(peak / 1024, 1) if peak else None,
            **hist,
            RAW: {"e2e": e2e, "enqueue": enqueue},
        }


# -- unloaded ------------------------------------------------------------------------------------------
async def run_unloaded(opts: BenchOptions, base: Path) -> dict[str, Any]:
    """One at a time, nothing else running: what a single notification waits for, against a bare round trip."""
    from temporalio.client import Client

    count = opts.unloaded_count
    out: dict[str, Any] = {"count": count}
    async with stack(opts, "unloaded-baseline", base) as st:
        await start_worker(st, opts, kind="baseline")
        client = await Client.connect(st.address)
        trips: list[float] = []
        for i in range(count + 1):  # the first one warms the worker's caches and is not counted
            t0 = time.perf_counter()
            await client.execute_workflow(
                BASELINE_WORKFLOW,
                str(i),
                id=f"unloaded-{uuid.uuid4().hex[:8]}",
                task_queue=BASELINE_QUEUES["email"],
                execution_timeout=timedelta(seconds=30),
            )
            if i:
                trips.append(time.perf_counter() - t0)
            await asyncio.sleep(0.2)
        out["baseline_round_trip_ms"] = _ms_stats(trips, (50, 99))
    async with stack(opts, "unloaded-ours", base) as st:
        await start_worker(st, opts, kind="ours", OUTBOX_LATENCY_MS="0")
        nclient = await _client(st)
        prefix = f"unloaded-{uuid.uuid4().hex[:6]}"
        observed: list[float] = []
        try:
            for i in range(count + 1):
                channel = "email" if i % 2 == 0 else "push"
                t0 = time.perf_counter()
                if channel == "email":
                    await nclient.enqueue_email(_payload(i, channel, prefix), 5)
                else:
                    await nclient.enqueue_push(_payload(i, channel, prefix), 5)
                deadline = time.monotonic() + 30
                nid = f"{prefix}-{i:06d}"
                while time.monotonic() < deadline:
                    row = await nclient.get(nid)
                    if row.status == "sent":
                        break
                    await asyncio.sleep(0.002)
                if i:
                    observed.append(time.perf_counter() - t0)
                await asyncio.sleep(0.2)
            res = await _sql_results(nclient, prefix)
        finally:
            await nclient.close()
        warm = sorted(res["ids"])[0]
        e2e_rows = await _per_row_e2e(st, prefix, exclude=warm)
        out["ours_enqueue_to_sent_ms"] = _ms_stats(e2e_rows, (50, 99))
        out["ours_client_observed_ms"] = _ms_stats(observed, (50, 99))
        out["all_sent"] = res["sent"] == count + 1
    ours = out["ours_enqueue_to_sent_ms"]["p50"]
    out["p50_ratio"] = _ratio(ours, out["baseline_round_trip_ms"]["p50"])
    return out


async def _per_row_e2e(st: Stack, prefix: str, exclude: str) -> list[float]:
    client = await _client(st)
    try:
        from sqlalchemy import select

        from notifications.sql.models import Notification

        async with client.db.sessions() as session:
            rows = (
                await session.execute(
                    select(Notification.id, Notification.created_at, Notification.completed_at).where(
                        Notification.id.like(f"{prefix}-%")
                    )
                )
            ).all()
    finally:
        await client.close()
    return [_epoch(r.completed_at) - _epoch(r.created_at) for r in rows if r.id != exclude and r.completed_at]


# -- backlog --------------------------------------------------------------------------------------------
async def run_backlog(opts: BenchOptions, base: Path) -> dict[str, Any]:
    """Queues paused, a backlog enqueued and held; worker RSS at 10 % and 100 % of it, then resume and drain."""
    from notifications.types import workflow_id_for

    total = opts.backlog
    checkpoint = max(1, total // 10)
    async with stack(opts, "backlog", base) as st:
        await start_worker(st, opts, kind="ours", OUTBOX_LATENCY_MS="0")
        client = await _client(st)
        prefix = f"backlog-{uuid.uuid4().hex[:6]}"
        out: dict[str, Any] = {"notifications": total, "checkpoint": checkpoint}
        try:
            await client.pause_queue("all", reason="bench backlog", actor="bench")
            rss0 = st.worker_rss_kb()
            plan = [(i, "email" if i % 2 == 0 else "push") for i in range(total)]
            t0 = time.time()
            await _enqueue_all(client, plan[:checkpoint], prefix, opts.enqueue_concurrency)
            await wait_idle(st)
            rss_a = st.worker_rss_kb()
            await _enqueue_all(client, plan[checkpoint:], prefix, opts.enqueue_concurrency)
            enqueue_s = time.time() - t0
            await wait_idle(st)
            rss_b = st.worker_rss_kb()
            sent_while_paused = await _count_sent(client, prefix)
            meter = Meter(st)
            meter.start()
            t1 = time.time()
            await client.resume_queue("all", actor="bench")
            sent = await _wait_sent(st, client, prefix, total, opts.scenario_timeout)
            meter.stop()
            res = await _sql_results(client, prefix)
            drain = (res["last_completed"] or time.time()) - t1
            peak = st.worker_peak_rss_kb()
        finally:
            await client.close()
        # held, then released by a signal: what the hold costs in events, and whether a resumed
        # workflow's task waited out the sticky queue's timeout (WORKFLOW_TASK_TIMED_OUT)
        hist = await history_stats(st.address, [workflow_id_for(i) for i in res["ids"]], opts.history_sample)

        def mb(kb: int | None) -> float | None:
            return round(kb / 1024, 1) if kb else None

        out.update(
            {
                "enqueue_seconds": round(enqueue_s, 2),
                "worker_rss_idle_mb": mb(rss0),
                "worker_rss_at_checkpoint_mb": mb(rss_a),
                "worker_rss_at_backlog_mb": mb(rss_b),
                "worker_rss_backlog_ratio": _ratio(rss_b, rss_a),
                "worker_peak_rss_mb": mb(peak),
                "sent_while_paused": sent_while_paused,
                "sent": sent,
                "all_sent": sent == total,
                "drain_seconds": round(drain, 2),
                "drain_throughput_per_s": round(sent / drain, 2) if drain > 0 else None,
                "drain_limit_seconds": opts.scenario_timeout,
                "delivery_attempts": res["delivery_attempts"],
                "outbox_messages": res["outbox_messages"],
                **meter.report(total),
                **hist,
            }
        )
        return out


# -- the fake Resend API --------------------------------------------------------------------------------
def _fake_resend() -> Any:
    """The fake Resend API the provider tests use too."""
    from fakes.resend import FakeResend

    return FakeResend(api_key=RESEND_TEST_KEY)


# -- the run --------------------------------------------------------------------------------------------
async def run_bench(opts: BenchOptions, progress: Callable[[str], None] = print) -> dict[str, Any]:
    import temporalio

    await asyncio.to_thread(precompile)
    scenarios: dict[str, Any] = {}
    started = time.time()
    base = Path(tempfile.mkdtemp(prefix="notifications-bench-"))
    from processes.devserver import dev_server_flags

    meta: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": opts.quick,
        "n": opts.n,
        "backlog": opts.backlog,
        "enqueue_concurrency": opts.enqueue_concurrency,
        "rounds": opts.rounds,
        "email_concurrency": opts.email_concurrency,
        "push_concurrency": opts.push_concurrency,
        "database": "postgresql" if (opts.database_url or "").startswith("postgres") else "sqlite",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "temporalio": temporalio.__version__,
        "server_flags": [
            *dev_server_flags(),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ],
        "scenarios": list(opts.scenarios),
    }

    async def scenario(name: str, coro: Awaitable[dict[str, Any]]) -> None:
        progress(f"[bench] {name} ...")
        t = time.monotonic()
        try:
            scenarios[name] = await coro
        except Exception as exc:  # one broken scenario must not hide the others' numbers
            scenarios[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        progress(f"[bench] {name} done in {time.monotonic() - t:.1f} s")

    def ours_at(latency: int, name: str) -> Awaitable[dict[str, Any]]:
        return run_ours(
            opts,
            base,
            name,
            n=opts.n,
            latency_ms=latency,
            email_concurrency=opts.email_concurrency,
            push_concurrency=opts.push_concurrency,
        )

    try:
        # The ratio's two sides alternate over --rounds (baseline, ours, ours, baseline, ...), each
        # round on its own fresh server and database: on a shared machine whose speed drifts by
        # +-15 % between minutes, a drift then weighs on both.
        pair = [
            name
            for name, wanted in (
                ("baseline", "baseline" in opts.scenarios),
                ("ours_0ms", "ours" in opts.scenarios and 0 in opts.latencies_ms),
            )
            if wanted
        ]
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in pair}
        for r in range(opts.rounds):
            for name in pair if r % 2 == 0 else pair[::-1]:
                label = f"{name} (round {r + 1}/{opts.rounds})"
                workdir = f"{name}-r{r + 1}"
                coro = run_baseline(opts, base, n=opts.n, name=workdir) if name == "baseline" else ours_at(0, workdir)
                await scenario(label, coro)
                rounds[name].append(scenarios.pop(label))
        for name, runs in rounds.items():
            scenarios[name] = merge_rounds(runs)
        if "ours" in opts.scenarios:
            for latency in opts.latencies_ms:
                if latency == 0 and "ours_0ms" in scenarios:
                    continue
                await scenario(f"ours_{latency}ms", ours_at(latency, f"ours_{latency}ms"))
        if "resend" in opts.scenarios:
            fake = _fake_resend()
            if fake is None:
                scenarios["ours_resend"] = {"skipped": "no activities/providers/resend.py or tests/fakes/resend.py"}
            else:
                async with fake:
                    await scenario(
                        "ours_resend",
                        run_ours(
                            opts,
                            base,
                            "ours_resend",
                            n=opts.other_n,
                            latency_ms=0,
                            email_concurrency=opts.email_concurrency,
                            push_concurrency=opts.push_concurrency,
                            channels=("email",),
                            worker_env={
                                "EMAIL_PROVIDER": "resend",
                                "RESEND_API_KEY": RESEND_TEST_KEY,
                                "RESEND_API_URL": fake.url,
                            },
                            extra={"provider": "resend SDK -> local fake Resend API (tests/fakes/resend.py)"},
                        ),
                    )
                    if "error" not in scenarios.get("ours_resend", {}):
                        scenarios["ours_resend"]["fake_resend_emails"] = len(fake.emails)
        if "concurrency" in opts.scenarios:
            await scenario("concurrency", run_concurrency(opts, base))
        if "backlog" in opts.scenarios:
            await scenario("backlog", run_backlog(opts, base))
        if "unloaded" in opts.scenarios:
            await scenario("unloaded", run_unloaded(opts, base))
    finally:
        if not opts.keep_temp:
            shutil.rmtree(base, ignore_errors=True)
        else:
            progress(f"[bench] scenario data kept in {base}")
    meta["total_seconds"] = round(time.time() - started, 1)
    _drop_raw(scenarios)
    results: dict[str, Any] = {"meta": meta, "scenarios": scenarios}
    results.update(compare(scenarios))
    return results


async def run_concurrency(opts: BenchOptions, base: Path) -> dict[str, Any]:
    """A slow provider at a low and a high concurrency cap: throughput is min(concurrency / latency, engine).

    The high run is bound by the engine, so it is bracketed by two bare-workflow runs of the same
    N (baseline, high, baseline): the engine's limit it is held to is measured in the same
    minutes, not several minutes earlier with the headline pair, as this machine drifts.
    """
    latency = opts.concurrency_latency_ms

    async def capped(conc: int, n: int) -> dict[str, Any]:
        res = await run_ours(
            opts,
            base,
            f"concurrency_{conc}x{conc}",
            n=n,
            latency_ms=latency,
            email_concurrency=conc,
            push_concurrency=conc,
        )
        bound = 2 * conc * 1000 / latency if latency else None  # both queues, each conc / latency
        res["concurrency_bound_per_s"] = bound
        res["achieved_of_bound"] = _ratio(res["throughput_per_s"], bound)
        return res

    low = await capped(opts.low_concurrency, max(20, opts.other_n // 10))
    before = await run_baseline(opts, base, n=opts.other_n, name="concurrency_baseline_before")
    high = await capped(opts.high_concurrency, opts.other_n)
    after = await run_baseline(opts, base, n=opts.other_n, name="concurrency_baseline_after")
    engine = merge_rounds([before, after])
    high["engine_reference_per_s"] = engine["throughput_per_s"]
    high["engine_reference_runs_per_s"] = [r["throughput_per_s"] for r in engine["rounds"]]
    return {"latency_ms": latency, "runs": [low, high]}


def merge_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario's rounds as one result: totals over all rounds, percentiles over all samples."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return {**failed[0], "rounds": runs}
    n = sum(r["notifications"] for r in runs)
    wall = sum(r["wall_seconds"] for r in runs)
    e2e = [v for r in runs for v in r[RAW]["e2e"]]
    enqueue = [v for r in runs for v in r[RAW]["enqueue"]]

    def weighted(key: str) -> float | None:
        values = [(r.get(key), r["notifications"]) for r in runs]
        if any(v is None for v, _ in values):
            return None
        return round(sum(v * w for v, w in values) / n, 2)

    merged = dict(runs[0])
    merged.update(
        notifications=n,
        sent=sum(r["sent"] for r in runs),
        all_sent=all(r["all_sent"] for r in runs),
        wall_seconds=round(wall, 2),
        throughput_per_s=round(n / wall, 2) if wall > 0 else None,
        enqueue_seconds=round(sum(r["enqueue_seconds"] for r in runs), 2),
        e2e_latency_ms=_ms_stats(e2e),
        enqueue_latency_ms=_ms_stats(enqueue, (50, 99)),
        worker_peak_rss_mb=max((r.get("worker_peak_rss_mb") or 0 for r in runs), default=None) or None,
    )
    merged[RAW] = {"e2e": e2e, "enqueue": enqueue}
    histories = [r[RAW_HISTORY] for r in runs if RAW_HISTORY in r]
    types: Counter[str] = Counter()
    for h in histories:
        types.update(h["types"])
    merged.update(
        _history_summary(
            [c for h in histories for c in h["counts"]],
            types,
            [w for h in histories for w in h["waits"]],
            [w for h in histories for w in h["runs"]],
        )
    )
    for key in runs[0]:
        if key.endswith("_per_1000") or (key.startswith("server_") and key.endswith("_per_workflow")):
            merged[key] = weighted(key)
        elif key in ("server_cpu_s", "worker_cpu_s", "outbox_messages"):
            merged[key] = round(sum(r.get(key) or 0 for r in runs), 2)
    if "delivery_attempts" in runs[0]:
        attempts: Counter[str] = Counter()
        for r in runs:
            attempts.update(r.get("delivery_attempts") or {})
        merged["delivery_attempts"] = dict(attempts)
    merged["rounds"] = [
        {
            "throughput_per_s": r["throughput_per_s"],
            "wall_seconds": r["wall_seconds"],
            "server_cpu_s_per_1000": r.get("server_cpu_s_per_1000"),
            "worker_cpu_s_per_1000": r.get("worker_cpu_s_per_1000"),
            "client_cpu_s_per_1000": r.get("client_cpu_s_per_1000"),
        }
        for r in runs
    ]
    return merged


def _drop_raw(value: Any) -> None:
    if isinstance(value, dict):
        value.pop(RAW, None)
        value.pop(RAW_HISTORY, None)
        for v in value.values():
            _drop_raw(v)
    elif isinstance(value, list):
        for v in value:
            _drop_raw(v)


def compare(scenarios: dict[str, Any]) -> dict[str, Any]:
    """Ratios ours / baseline (same run) and the issue's targets, pass or miss."""
    base = scenarios.get("baseline") or {}
    ours = scenarios.get("ours_0ms") or {}
    out: dict[str, Any] = {}
    if "throughput_per_s" not in base or "throughput_per_s" not in ours:
        out["throughput_ratio"] = None
        return out
    ratios = {
        "throughput_ratio": _ratio(ours["throughput_per_s"], base["throughput_per_s"]),
        "e2e_p50_ratio": _ratio(ours["e2e_latency_ms"]["p50"], base["e2e_latency_ms"]["p50"]),
        "e2e_p99_ratio": _ratio(ours["e2e_latency_ms"]["p99"], base["e2e_latency_ms"]["p99"]),
        "enqueue_p50_ratio": _ratio(ours["enqueue_latency_ms"]["p50"], base["enqueue_latency_ms"]["p50"]),
        "server_cpu_ratio": _ratio(ours["server_cpu_s_per_1000"], base["server_cpu_s_per_1000"]),
        "worker_cpu_ratio": _ratio(ours["worker_cpu_s_per_1000"], base["worker_cpu_s_per_1000"]),
        "history_events_ratio": _ratio(
            ours.get("history_events_per_workflow"), base.get("history_events_per_workflow")
        ),
        "worker_peak_rss_ratio": _ratio(ours.get("worker_peak_rss_mb"), base.get("worker_peak_rss_mb")),
    }
    out.update(ratios)
    out["ratios"] = ratios
    if base.get("rounds") and ours.get("rounds"):
        out["throughput_ratio_per_round"] = [
            _ratio(o["throughput_per_s"], b["throughput_per_s"])
            for b, o in zip(base["rounds"], ours["rounds"], strict=False)
        ]
    targets: dict[str, Any] = {"throughput_ratio>=0.9": (ratios["throughput_ratio"] or 0) >= 0.9}
    unloaded = scenarios.get("unloaded") or {}
    if unloaded.get("p50_ratio") is not None:
        targets["unloaded_p50<=baseline_round_trip"] = unloaded["p50_ratio"] <= 1.0
    conc = scenarios.get("concurrency") or {}
    for run in conc.get("runs", []):
        bound = run.get("concurrency_bound_per_s")
        # the engine measured beside the run where there is one, else with the headline pair
        engine = run.get("engine_reference_per_s") or base["throughput_per_s"]
        if bound and run.get("throughput_per_s"):
            limit = min(bound, engine)
            run["achieved_of_min_bound_engine"] = _ratio(run["throughput_per_s"], limit)
            label = f"{run['email_concurrency']}x{run['push_concurrency']}@{conc['latency_ms']}ms"
            targets[f"{label}>=0.9*min(bound,engine)"] = run["throughput_per_s"] >= 0.9 * limit
    backlog = scenarios.get("backlog") or {}
    if backlog.get("worker_rss_backlog_ratio") is not None:
        targets["backlog_rss_ratio<=1.2"] = backlog["worker_rss_backlog_ratio"] <= 1.2
    out["targets"] = targets
    return out


# -- output --------------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def table(results: dict[str, Any]) -> str:
    """A markdown table: pasteable into the README as is."""
    sc = results.get("scenarios", {})
    names = [n for n in sc if n == "baseline" or n.startswith("ours_")]
    columns = [name for name in names if "throughput_per_s" in sc.get(name, {})]
    for run in (sc.get("concurrency") or {}).get("runs", []):
        columns.append(f"concurrency_{run['email_concurrency']}x{run['push_concurrency']}")
        sc = {**sc, columns[-1]: run}
    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("notifications", lambda r: r.get("notifications")),
        (
            "provider ms / concurrency",
            lambda r: f"{r['latency_ms']} / {r['email_concurrency']}+{r['push_concurrency']}",
        ),
        ("all sent", lambda r: r.get("all_sent")),
        ("wall s", lambda r: r.get("wall_seconds")),
        ("throughput /s", lambda r: r.get("throughput_per_s")),
        ("e2e p50 ms", lambda r: r["e2e_latency_ms"]["p50"]),
        ("e2e p95 ms", lambda r: r["e2e_latency_ms"]["p95"]),
        ("e2e p99 ms", lambda r: r["e2e_latency_ms"]["p99"]),
        ("enqueue p50 ms", lambda r: r["enqueue_latency_ms"]["p50"]),
        ("enqueue p99 ms", lambda r: r["enqueue_latency_ms"]["p99"]),
        ("server CPU s / 1000", lambda r: r.get("server_cpu_s_per_1000")),
        ("worker CPU s / 1000", lambda r: r.get("worker_cpu_s_per_1000")),
        ("client CPU s / 1000", lambda r: r.get("client_cpu_s_per_1000")),
        ("worker peak RSS MB", lambda r: r.get("worker_peak_rss_mb")),
        ("history events / workflow", lambda r: r.get("history_events_per_workflow")),
        ("server persistence requests / wf", lambda r: r.get("server_persistence_requests_per_workflow")),
        ("workflow task wait p50 ms", lambda r: r["workflow_task_schedule_to_start_ms"]["p50"]),
        ("workflow task run p50 ms", lambda r: r["workflow_task_start_to_complete_ms"]["p50"]),
        ("bound: concurrency / latency /s", lambda r: r.get("concurrency_bound_per_s")),
        ("engine: bare workflows beside it /s", lambda r: r.get("engine_reference_per_s")),
    ]
    lines = ["| metric | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, get in rows:
        cells = []
        for name in columns:
            try:
                cells.append(_fmt(get(sc[name])))
            except (KeyError, TypeError):
                cells.append("-")
        if label.startswith("bound") and all(c == "-" for c in cells):
            continue
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    extra = [f"throughput_ratio (ours_0ms / baseline): {_fmt(results.get('throughput_ratio'))}"]
    if len(results.get("throughput_ratio_per_round") or []) > 1:
        per_round = ", ".join(_fmt(v) for v in results["throughput_ratio_per_round"])
        extra[0] += f" (all rounds together; round by round: {per_round})"
    for key in ("e2e_p50_ratio", "server_cpu_ratio", "worker_cpu_ratio", "history_events_ratio"):
        if results.get(key) is not None:
            extra.append(f"{key}: {_fmt(results[key])}")
    un = sc.get("unloaded") or {}
    if "baseline_round_trip_ms" in un:
        extra.append(
            f"unloaded ({un['count']} one at a time): ours enqueue-to-sent p50 "
            f"{_fmt(un['ours_enqueue_to_sent_ms']['p50'])} ms "
            f"(client-observed {_fmt(un['ours_client_observed_ms']['p50'])} ms) vs bare round trip p50 "
            f"{_fmt(un['baseline_round_trip_ms']['p50'])} ms"
        )
    bl = sc.get("backlog") or {}
    if "worker_rss_at_backlog_mb" in bl:
        extra.append(
            f"backlog {bl['notifications']} held: worker RSS {_fmt(bl['worker_rss_at_checkpoint_mb'])} MB at "
            f"{bl['checkpoint']}, {_fmt(bl['worker_rss_at_backlog_mb'])} MB at {bl['notifications']} "
            f"(x{_fmt(bl['worker_rss_backlog_ratio'])}); drained in {_fmt(bl['drain_seconds'])} s "
            f"({_fmt(bl['drain_throughput_per_s'])}/s), sent {bl['sent']} of {bl['notifications']}; "
            f"{_fmt(bl.get('history_events_per_workflow'))} history events per workflow, "
            f"{_fmt((bl.get('history_event_types_per_workflow') or {}).get('WORKFLOW_TASK_TIMED_OUT', 0))} "
            "workflow-task timeouts per workflow"
        )
    for name, value in sc.items():
        if isinstance(value, dict) and ("error" in value or "skipped" in value):
            extra.append(f"{name}: {value.get('error') or 'skipped: ' + value['skipped']}")
    if results.get("targets"):
        extra.append("targets: " + ", ".join(f"{k} {'PASS' if v else 'MISS'}" for k, v in results["targets"].items()))
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {e}" for e in extra)


def write_results(results: dict[str, Any], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    opts = BenchOptions.quick_defaults() if args.quick else BenchOptions()
    for name in (
        "n",
        "backlog",
        "enqueue_concurrency",
        "rounds",
        "email_concurrency",
        "push_concurrency",
        "high_concurrency",
        "low_concurrency",
        "unloaded_count",
        "history_sample",
        "scenario_timeout",
        "database_url",
        "secondary_n",
    ):
        value = getattr(args, name, None)
        if value is not None:
            setattr(opts, name, value)
    if args.database_url is None and os.environ.get("DATABASE_URL"):
        opts.database_url = os.environ["DATABASE_URL"]
    if args.latency_ms:
        opts.latencies_ms = [int(v) for part in args.latency_ms for v in part.split(",") if v.strip()]
    if args.scenario:
        opts.scenarios = chosen_scenarios(args.scenario, ALL_SCENARIOS)
    opts.output = Path(args.output) if args.output else DEFAULT_OUTPUT
    opts.profile_dir = Path(args.profile_dir) if args.profile_dir else None
    opts.keep_temp = bool(args.keep_temp)
    return opts


def chosen_scenarios(parts: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """`--scenario a,b --scenario c` as a list of names, each one checked against `allowed`."""
    names = [s.strip() for part in parts for s in part.split(",") if s.strip()]
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {', '.join(allowed)}")
    return names


def cancel_on_signals() -> None:
    """SIGTERM (and SIGINT, which a shell ignores in background jobs) cancel the running task, so
    every `finally` stops the dev servers and workers the run started instead of orphaning them."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)


def publish(results: dict[str, Any], output: Path, text: str) -> None:
    """The JSON to `output`, the table to stdout."""
    write_results(results, output)
    print()
    print(text)
    print(f"\nwritten to {output}")


async def main_async(opts: BenchOptions) -> int:
    cancel_on_signals()
    results = await run_bench(opts)
    publish(results, opts.output, table(results))
    scenarios = results["scenarios"]
    failed = [k for k, v in scenarios.items() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":  # `python -m bench.run worker` runs the bare workflow's worker
    if sys.argv[1:2] == ["worker"]:
        asyncio.run(run_baseline_worker(5, 10, 30.0))
    else:
        from processes.cli import main

        sys.exit(main(["bench", *sys.argv[1:]]))
