"""The processes of a scenario: a fresh dev server and database, the worker, and what they cost.

Workers run as separate processes, started the way operators start them, so the CPU seconds of
the server and of the worker, and the worker's peak RSS, are read apart (from /proc).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.baseline import BASELINE_QUEUES
from bench.options import ROOT, BenchOptions
from processes.devserver import free_port


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
    beside: list[subprocess.Popen[bytes]] = field(default_factory=list)  # more worker processes

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
async def stack(opts: BenchOptions, name: str, base: Path, *, postgres: bool = False) -> AsyncIterator[Stack]:
    """A fresh dev server and database for one scenario; every process is stopped on the way out.

    The database is a new SQLite file, or with `postgres` a new database on `opts.postgres_url`'s
    server, dropped afterwards; `--database-url` names one for every scenario instead.
    """
    from processes.devserver import start_dev_server

    workdir = base / name
    workdir.mkdir(parents=True, exist_ok=True)
    port, metrics_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    fresh_pg = f"bench_{name.replace('-', '_')}_{os.getpid()}_{port}" if postgres else None
    if fresh_pg:
        await asyncio.to_thread(_postgres_database, opts.postgres_url, fresh_pg, create=True)
        database_url = opts.postgres_url.rsplit("/", 1)[0] + f"/{fresh_pg}"
    else:
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
        # The worker first: its shutdown reports the webhook dispatcher's long activity to the server,
        # which, stopped at the same time, would keep it retrying for seconds.
        for proc in st.beside:
            _stop(proc)
        _stop(st.worker)
        _stop(st.server)
        if fresh_pg:
            await asyncio.to_thread(_postgres_database, opts.postgres_url, fresh_pg, create=False)


def _postgres_database(admin_url: str, name: str, *, create: bool) -> None:
    import psycopg

    with psycopg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


async def start_worker_beside(st: Stack, queues: Iterable[str], **env: str) -> None:
    """Another `notifications worker` process on the same stack (`WORKER_QUEUES` in `env`), not measured."""
    exe = str(Path(sys.executable).parent / "notifications")
    environment = _child_env(
        TEMPORAL_ADDRESS=st.address,
        DATABASE_URL=st.database_url,
        DATA_DIR=str(st.workdir),
        METRICS_BIND=f"127.0.0.1:{free_port()}",
        **env,
    )
    st.beside.append(_spawn_beside([exe, "worker"], environment, st.workdir, len(st.beside)))
    await wait_worker_ready(st, queues)


def _spawn_beside(cmd: list[str], environment: dict[str, str], workdir: Path, n: int) -> subprocess.Popen[bytes]:
    with open(workdir / f"worker-beside-{n}.log", "ab") as log:
        return subprocess.Popen(cmd, env=environment, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)


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


def cancel_on_signals() -> None:
    """SIGTERM (and SIGINT, which a shell ignores in background jobs) cancel the running task, so
    every `finally` stops the dev servers and workers the run started instead of orphaning them."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)


async def _bounded(items: Sequence[Any], concurrency: int, fn: Callable[[Any], Awaitable[Any]]) -> list[Any]:
    """fn of every item, at most `concurrency` at once; the results in the items' order."""
    limiter = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> Any:
        async with limiter:
            return await fn(item)

    return list(await asyncio.gather(*(one(i) for i in items)))
