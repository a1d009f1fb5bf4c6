"""The worker's heartbeat as a user sees it: `notifications worker` in its own process beats every
second, health reports its queues; killed with SIGKILL, health says `no_workers` within the
heartbeat window although Temporal still lists its pollers; stopped gracefully, its row is gone."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.main import create_app
from notifications.client import NotificationClient
from notifications.config import Settings
from notifications.sql import store
from notifications.sql.engine import Database
from notifications.sql.migrate import upgrade
from notifications.sql.models import WorkerHeartbeat, utcnow
from processes.heartbeat import heartbeat
from tests.support.api import ADMIN, BASE, Q, api, api_settings
from tests.support.processes import start_worker
from tests.support.system import System, free_port, wait_until

INTERVAL, STALE = 1.0, 3.0
BEATING = {"WORKER_HEARTBEAT_SECONDS": str(INTERVAL), "WORKER_HEARTBEAT_STALE_SECONDS": str(STALE)}
ALL_QUEUES = {"notification-email", "notification-push", "notification-campaign", "notification-maintenance"}


async def heartbeat_rows(system: System) -> list[WorkerHeartbeat]:
    async with system.db.sessions() as session:
        return list(await session.scalars(select(WorkerHeartbeat)))


async def workers_check(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    r = await http.get(f"{Q}/health", headers=ADMIN)
    return r.status_code, r.json()["checks"]["workers"]


@pytest.fixture
async def http(system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with api(system, worker_heartbeat_stale_seconds=STALE) as (_, client):
        yield client


def stop(worker: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    worker.send_signal(sig)
    try:
        return worker.wait(20)
    finally:
        if worker.poll() is None:
            worker.kill()


async def test_a_killed_worker_is_noticed_within_the_heartbeat_window(system: System, http: httpx.AsyncClient) -> None:
    worker = start_worker(system, **BEATING)
    try:

        async def served() -> bool:
            code, workers = await workers_check(http)
            return code == 200 and all(w["status"] == "ok" and w["source"] == "heartbeat" for w in workers.values())

        await wait_until(served, timeout=30, interval=0.2)
        [row] = await heartbeat_rows(system)
        assert set(row.task_queues) == ALL_QUEUES and row.pid == worker.pid
        assert row.worker_id.startswith(f"{row.host}:{worker.pid}:")
        _, workers = await workers_check(http)
        assert workers["email"]["heartbeatWorkers"] == 1 and workers["email"]["lastHeartbeatSecondsAgo"] <= 2 * INTERVAL
        assert workers["email"]["workflowPollers"] >= 1 and workers["email"]["activityPollers"] >= 1

        await asyncio.to_thread(stop, worker, signal.SIGKILL)
        killed = time.monotonic()
    finally:
        if worker.poll() is None:
            worker.kill()

    async def degraded() -> bool:
        r = await http.get(f"{Q}/health", headers=ADMIN)
        return r.status_code == 503 and r.json()["status"] == "degraded"

    await wait_until(degraded, timeout=STALE + INTERVAL + 5, interval=0.2)
    # the last beat came at most one interval before the kill, and it is stale STALE seconds later
    assert time.monotonic() - killed <= STALE + INTERVAL + 1.5
    _, workers = await workers_check(http)
    for check in workers.values():
        assert check["status"] == "no_workers" and check["heartbeatWorkers"] == 0, check
        assert check["lastHeartbeatSecondsAgo"] >= STALE
        # Temporal still lists the dead worker's pollers (within API_WORKER_STALE_SECONDS): the
        # heartbeat is what noticed
        assert check["workflowPollers"] >= 1, check
    assert len(await heartbeat_rows(system)) == 1  # a killed worker leaves its row, which went stale


async def test_a_graceful_stop_deletes_the_row_and_is_noticed_at_once(system: System, http: httpx.AsyncClient) -> None:
    # Another worker of the deployment beats (for campaigns only; its row need not be fresh):
    # heartbeats decide for every queue.
    await store.beat(system.db, "other:1:aa", "other", 1, ["notification-campaign"], utcnow())
    worker = start_worker(system, WORKER_QUEUES="email,push", **BEATING)
    try:

        async def served() -> bool:
            _, workers = await workers_check(http)
            return all(w["status"] == "ok" and w["source"] == "heartbeat" for w in workers.values())

        await wait_until(served, timeout=30, interval=0.2)
        [mine] = [r for r in await heartbeat_rows(system) if r.pid == worker.pid]
        assert sorted(mine.task_queues) == ["notification-email", "notification-push"]
        code = await asyncio.to_thread(stop, worker, signal.SIGTERM)
    finally:
        if worker.poll() is None:
            worker.kill()
    output = worker.stdout.read().decode() if worker.stdout else ""
    assert code == 0, output
    assert "heartbeat not" not in output, output
    assert [r.worker_id for r in await heartbeat_rows(system)] == ["other:1:aa"]
    _, workers = await workers_check(http)
    # no heartbeat names the queues any more, though the pollers are still listed
    assert workers["email"]["status"] == "no_workers" and workers["email"]["heartbeatWorkers"] == 0, workers
    assert workers["email"]["workflowPollers"] >= 1


async def test_without_the_table_the_pollers_decide(system: System) -> None:
    """The database is down: health is unhealthy, and the worker check falls back to Temporal's pollers."""
    dead = Database(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    settings = api_settings(system, api_check_timeout_seconds=2, worker_heartbeat_stale_seconds=STALE)
    app = create_app(settings, client=NotificationClient(system.temporal, dead, settings))
    try:
        async with system.worker(), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:

            async def polled() -> bool:
                r = await http.get(f"{Q}/health", headers=ADMIN)
                return r.json()["checks"]["workers"]["email"]["status"] == "ok"

            await wait_until(polled, timeout=10, interval=0.2)
            r = await http.get(f"{Q}/health", headers=ADMIN)
    finally:
        await dead.dispose()
    body = r.json()
    assert body["status"] == "unhealthy" and body["checks"]["database"]["status"] == "down"
    email = body["checks"]["workers"]["email"]
    assert email["source"] == "pollers" and email["heartbeatError"] and "heartbeatWorkers" not in email


async def test_a_failing_write_is_logged_once_and_the_beats_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Not migrated yet: every write fails (no table) until the schema is there.
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'n.db'}", data_dir=tmp_path, worker_heartbeat_seconds=0.05)
    db = Database.from_settings(settings)
    caplog.set_level(logging.INFO, logger="notifications.heartbeat")

    async def beating() -> bool:
        live = await store.live_queues(db, utcnow() - timedelta(seconds=5))
        return live.get("notification-email", {}).get("workers") == 1

    try:
        async with heartbeat(db, settings, lambda: ["notification-email"]) as beats:
            await asyncio.sleep(0.5)  # about ten beats, every one failing
            assert beats.failing
            await asyncio.to_thread(upgrade, settings)
            await wait_until(beating, timeout=5)
            assert not beats.failing
        assert await store.live_queues(db, utcnow() - timedelta(minutes=1)) == {}  # deleted on exit
    finally:
        await db.dispose()
    messages = [r.getMessage() for r in caplog.records if r.name == "notifications.heartbeat"]
    assert len([m for m in messages if m.startswith("worker heartbeat not written")]) == 1, messages
    assert messages[-1] == "worker heartbeat written again", messages
