"""The processes of one scenario, all stopped by their PID on the way out.

A fresh Temporal dev server and database per scenario (the benchmark's `stack`), worker
processes started the way operators start them (`notifications worker`, configured through
the environment), the admin API as its own process where a scenario needs HTTP, and the
fake Resend and FCM APIs and the SMTP sink served from this process so every provider call
is counted here.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.client import _client
from bench.harness import Stack, _child_env, _spawn_worker, _stop, free_port, stack
from bench.options import BenchOptions
from fakes.fcm import FakeFCM
from fakes.resend import FakeResend
from fakes.smtp import SmtpSink

RESEND_KEY = "re_chaos_key"
QUEUES = ("notification-email", "notification-push")


@dataclass
class Api:
    proc: subprocess.Popen[bytes]
    url: str
    token: str


@dataclass
class Harness:
    st: Stack
    resend: FakeResend
    fcm: FakeFCM
    smtp: SmtpSink
    worker_env: dict[str, str] = field(default_factory=dict)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    api: Api | None = None  # the last API started
    apis: list[Api] = field(default_factory=list)
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))  # shared by every API process
    temporal: Any = None  # a plain temporalio Client, for readiness and for what Temporal holds
    clients: list[Any] = field(default_factory=list)
    known_ids: set[str] = field(default_factory=set)  # notification IDs callers got back, all runs

    @property
    def workdir(self) -> Path:
        return self.st.workdir

    def provider_env(self) -> dict[str, str]:
        return {
            "EMAIL_PROVIDER": "resend",
            "RESEND_API_KEY": RESEND_KEY,
            "RESEND_API_URL": self.resend.url,
            "PUSH_PROVIDER": "fcm",
            "FCM_API_URL": self.fcm.url,
            "FCM_PROJECT_ID": "chaos",
            # teardown only: the scenarios kill workers with SIGKILL, never by this path
            "GRACEFUL_SHUTDOWN_SECONDS": "2",
        }

    def failover_env(self) -> dict[str, str]:
        """Email through Resend, failing over to the SMTP sink."""
        return {
            "EMAIL_PROVIDERS": "resend,smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp.port),
            "SMTP_SECURITY": "none",
            "MAIL_FROM": "noreply@chaos.example.com",
        }

    # -- workers ---------------------------------------------------------------------------------
    async def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        """`notifications worker` in its own process; returns once it polls both queues."""
        n = len(self.workers) + 1
        extra = {**self.provider_env(), **self.worker_env, **env}
        extra["LOG_FILE"] = str(self.workdir / "logs" / f"worker-{n}.log")
        _spawn_worker(self.st, BenchOptions(), "ours", 5, 10, extra)
        proc = self.st.worker
        assert proc is not None
        self.workers.append(proc)
        await self.wait_polling(proc)
        return proc

    async def wait_polling(self, proc: subprocess.Popen[bytes], limit_s: float = 60.0) -> None:
        """Until this very process (by PID: another worker may poll already) polls every queue."""
        from temporalio.service import RPCError

        from notifications.temporal import task_queue_pollers

        deadline = time.monotonic() + limit_s
        pending = set(QUEUES)
        while pending:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {proc.pid} exited with {proc.returncode}: {self._tail(proc)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {proc.pid} did not poll {sorted(pending)} within {limit_s:.0f} s")
            for queue in list(pending):
                try:
                    pollers = await task_queue_pollers(self.temporal, queue, "workflow")
                except RPCError:
                    continue
                if any(p.identity.startswith(f"{proc.pid}@") for p in pollers):
                    pending.discard(queue)
            await asyncio.sleep(0.2)

    def _tail(self, proc: subprocess.Popen[bytes]) -> str:
        """The end of what a worker wrote: its own log file, then the output all workers share."""
        n = self.workers.index(proc) + 1 if proc in self.workers else 0
        parts = []
        for path in (self.workdir / "logs" / f"worker-{n}.log", self.st.worker_log):
            if path is not None and path.exists():
                parts.append(path.read_text(errors="replace")[-1500:])
        return "\n---\n".join(parts)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def live_workers(self) -> list[subprocess.Popen[bytes]]:
        return [w for w in self.workers if w.poll() is None]

    def local_ports(self, proc: subprocess.Popen[bytes]) -> set[int]:
        """The local ports of a process's TCP connections: which provider calls are its own."""
        import psutil

        try:
            return {c.laddr.port for c in psutil.Process(proc.pid).net_connections(kind="tcp") if c.laddr}
        except psutil.Error:
            return set()

    # -- the Temporal server ---------------------------------------------------------------------
    def kill_server(self) -> None:
        self.st.server.send_signal(signal.SIGKILL)
        self.st.server.wait(10)

    async def restart_server(self) -> None:
        """The same address, metrics port and SQLite file: what a supervisor's restart does."""
        from processes.devserver import start_dev_server

        self.st.server = await asyncio.to_thread(
            start_dev_server,
            self.st.address,
            db_file=self.workdir / "temporal.db",
            ui_port=None,
            extra=["--metrics-port", str(self.st.metrics_port)],
            log_file=self.workdir / "temporal.log",
        )

    # -- clients ------------------------------------------------------------------------------
    async def client(self, **settings: Any) -> Any:
        """A NotificationClient of this stack (closed on the way out)."""
        client = await _client(self.st, **settings)
        self.clients.append(client)
        return client

    def token(self, role: str = "service") -> str:
        """A token every API process of this harness accepts."""
        from notifications.auth import mint_token
        from notifications.config import Settings

        return mint_token(Settings(jwt_secret=self.jwt_secret), role=role, ttl_seconds=4 * 3600, subject="chaos")

    async def start_api(self, **env: str) -> Api:
        """`notifications api` on a free port, with a service token minted from the harness's secret."""
        import httpx

        port = free_port()
        n = len(self.apis) + 1
        environment = _child_env(
            TEMPORAL_ADDRESS=self.st.address,
            DATABASE_URL=self.st.database_url,
            DATA_DIR=str(self.workdir),
            JWT_SECRET=self.jwt_secret,
            LOG_FILE=str(self.workdir / "logs" / ("api.log" if n == 1 else f"api-{n}.log")),
            **env,
        )
        proc = _spawn_api(self.workdir, port, environment)
        self.api = Api(proc, f"http://127.0.0.1:{port}", self.token())
        self.apis.append(self.api)
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the API exited with {proc.returncode}; see {self.workdir / 'api.log'}")
                try:
                    if (await http.get(f"{self.api.url}/livez")).status_code == 200:
                        return self.api
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("the API did not answer /livez within 60 s")
                await asyncio.sleep(0.2)

    # -- the way out --------------------------------------------------------------------------
    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        procs: Iterable[subprocess.Popen[bytes]] = [*self.workers, *(api.proc for api in self.apis)]
        for proc in procs:  # told at once, so their shutdowns overlap
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            _stop(proc, timeout=10)
        self.st.worker = None


@asynccontextmanager
async def harness(name: str, base: Path, *, database_url: str | None = None) -> AsyncIterator[Harness]:
    """Server, database (migrated), fake providers; the scenario starts workers and the API itself."""
    from temporalio.client import Client

    smtp = SmtpSink().start(free_port())
    try:
        async with FakeResend(api_key=RESEND_KEY) as resend, FakeFCM() as fcm:
            async with stack(BenchOptions(database_url=database_url), name, base) as st:
                h = Harness(st, resend, fcm, smtp)
                try:
                    h.temporal = await Client.connect(st.address)
                    yield h
                finally:
                    await h.close()
    finally:
        smtp.stop()


def _spawn_api(workdir: Path, port: int, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).parent / "notifications")
    with open(workdir / "api.log", "ab") as log:
        return subprocess.Popen(
            [exe, "api", "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
