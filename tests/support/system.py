"""The system under test and the waits, settings and processes every test shares.

`System` is one migrated database, a connected Temporal client and the notification client,
with in-process workers on demand; `make_system` builds one and, at exit, terminates every
workflow left running so tests stay independent. The fixtures that use these are in
tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.providers import Providers
from activities.providers.outbox import OutboxProvider
from notifications.client import NotificationClient
from notifications.config import Settings
from notifications.sql.engine import Database
from notifications.sql.migrate import upgrade
from notifications.sql.models import DeliveryAttempt, Notification, OutboxMessage
from notifications.temporal import connect
from notifications.types import SEARCH_ATTRIBUTES
from processes.devserver import dev_server_flags, free_port, temporal_binary
from processes.worker import build_workers, running_workers

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parents[2]  # the repository: tests/support/system.py -> .


async def start_dev_env() -> WorkflowEnvironment:
    """A Temporal dev server from the installed binary, with the flags `notifications dev` uses."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        port=free_port(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=[
            *dev_server_flags(with_search_attributes=False),
            *("--http-port", str(free_port()), "--metrics-port", str(free_port())),
        ],
    )


def make_settings(temporal_address: str, database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        temporal_address=temporal_address,
        database_url=database_url,
        data_dir=tmp_path,
        base_delay_ms=100,
        max_delay_ms=2000,
        send_timeout_seconds=5,
        queue_pause_recheck_seconds=3,
        visibility_lag_seconds=0.2,
        graceful_shutdown_seconds=5,
        mirror_retry_max_seconds=1,
    )
    values.update(overrides)
    return Settings(**values)


@dataclass
class System:
    settings: Settings
    temporal: Client
    db: Database
    client: NotificationClient
    workers: list[Worker] = field(default_factory=list)

    async def row(self, notification_id: str) -> Notification | None:
        async with self.db.sessions() as session:
            return await session.get(Notification, notification_id)

    async def attempts(self, notification_id: str) -> list[DeliveryAttempt]:
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.notification_id == notification_id)
                .order_by(DeliveryAttempt.attempt)
            )
            return list(rows)

    async def outbox(self) -> list[OutboxMessage]:
        async with self.db.sessions() as session:
            return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    async def wait_status(self, notification_id: str, *statuses: str, timeout: float = 20) -> Notification:
        deadline = time.monotonic() + timeout
        row = None
        while time.monotonic() < deadline:
            row = await self.row(notification_id)
            if row is not None and row.status in statuses:
                return row
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{notification_id} did not reach {statuses}; last row status: {row.status if row else None}"
        )

    @asynccontextmanager
    async def worker(self, providers: Providers | None = None, **settings: Any) -> AsyncIterator[list[Worker]]:
        """Workers for both queues in this process; keyword arguments override settings."""
        workers = build_workers(self.temporal, self.settings.model_copy(update=settings), self.db, providers)
        async with running_workers(workers):
            yield workers


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 20, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")


async def terminate_running(client: Client) -> None:
    async for execution in client.list_workflows('ExecutionStatus = "Running"'):
        try:
            await client.get_workflow_handle(execution.id, run_id=execution.run_id).terminate("test teardown")
        except Exception:
            pass


@asynccontextmanager
async def make_system(settings: Settings) -> AsyncIterator[System]:
    await asyncio.to_thread(upgrade, settings)
    temporal = await connect(settings)
    db = Database.from_settings(settings)
    system = System(settings, temporal, db, NotificationClient(temporal, db, settings))
    try:
        yield system
    finally:
        await terminate_running(temporal)
        await db.dispose()


@asynccontextmanager
async def system_on_own_server(database_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[System]:
    """A system on a Temporal dev server of its own, for a test that nothing another test left on
    the shared server may touch (a task queue's order, a namespace-wide schedule)."""
    env = await start_dev_env()
    try:
        async with make_system(
            make_settings(env.client.service_client.config.target_host, database_url, tmp_path, **overrides)
        ) as system:
            yield system
    finally:
        await env.shutdown()


def outbox_providers(system: System) -> Providers:
    outbox = OutboxProvider(system.db)
    return Providers(email=outbox, push=outbox)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    exe = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "notifications"
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT
    )
