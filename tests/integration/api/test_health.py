"""Health: healthy with a worker, degraded within the staleness window once it stops, unhealthy without a DB.

Temporal lists a poller with the time it last *started* a poll, and an idle worker re-polls
once per long-poll interval (60 s by default). This module runs its own dev server with a
1 s long-poll interval so a 2.5 s staleness window is both safe for a live worker and quick
to expire for a stopped one: the flip is deterministic and takes seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from notifications import provider_state
from notifications.client import NotificationClient
from notifications.config import Settings
from notifications.sql.engine import Database
from notifications.sql.models import utcnow
from notifications.types import SEARCH_ATTRIBUTES
from processes.devserver import dev_server_flags, temporal_binary
from tests.support.api import ADMIN, Q, api, api_settings
from tests.support.system import System, free_port, make_system, wait_until

STALE_SECONDS = 2.5


@pytest.fixture(scope="module")
async def short_poll_server() -> AsyncIterator[str]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        port=free_port(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=[
            *dev_server_flags(with_search_attributes=False),
            "--dynamic-config-value",
            'matching.longPollExpirationInterval="1s"',
        ],
    )
    yield env.client.service_client.config.target_host
    await env.shutdown()


@pytest.fixture
async def health_system(short_poll_server: str, settings: Settings) -> AsyncIterator[System]:
    async with make_system(settings.model_copy(update={"temporal_address": short_poll_server})) as system:
        yield system


async def test_health_flips_to_degraded_when_the_worker_stops(health_system: System) -> None:
    system = health_system
    async with api(system, api_worker_stale_seconds=STALE_SECONDS) as (_, http):
        r = await http.get(f"{Q}/health", headers=ADMIN)
        assert r.status_code == 503 and r.json()["status"] == "degraded"
        assert r.json()["checks"]["workers"]["email"]["status"] == "no_workers"

        async def status() -> tuple[int, str]:
            r = await http.get(f"{Q}/health", headers=ADMIN)
            return r.status_code, r.json()["status"]

        async with system.worker():

            async def healthy() -> bool:
                return await status() == (200, "healthy")

            await wait_until(healthy, timeout=10, interval=0.2)
            for _ in range(4):  # stays healthy while the idle worker long-polls, past the window
                assert await status() == (200, "healthy")
                await asyncio.sleep(1)
        stopped = time.monotonic()

        async def degraded() -> bool:
            return await status() == (503, "degraded")

        await wait_until(degraded, timeout=STALE_SECONDS + 5, interval=0.2)
        assert time.monotonic() - stopped <= STALE_SECONDS + 5
        body = (await http.get(f"{Q}/health", headers=ADMIN)).json()
        assert body["checks"]["workers"]["push"]["status"] == "no_workers"
        assert body["checks"]["temporal"]["status"] == "ok" and body["checks"]["database"]["status"] == "ok"


async def test_open_circuit_degrades_and_a_dead_database_is_unhealthy(health_system: System) -> None:
    system = health_system
    async with system.worker(), api(system, api_worker_stale_seconds=STALE_SECONDS) as (_, http):

        async def healthy() -> bool:
            return (await http.get(f"{Q}/health", headers=ADMIN)).status_code == 200

        await wait_until(healthy, timeout=10, interval=0.2)
        await provider_state.record_state(
            system.db,
            "email",
            "outbox",
            circuit="open",
            consecutive_failures=5,
            opened_until=utcnow() + timedelta(minutes=5),
            error_code="PROVIDER_UNAVAILABLE",
            error_message="503",
        )
        r = await http.get(f"{Q}/health", headers=ADMIN)
        assert r.status_code == 503 and r.json()["status"] == "degraded"
        assert r.json()["checks"]["providers"]["email"]["circuit"] == "open"

    dead = Database(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    settings = api_settings(system, api_check_timeout_seconds=2)
    app = create_app(settings, client=NotificationClient(system.temporal, dead, settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.get(f"{Q}/health", headers=ADMIN)
    await dead.dispose()
    body = r.json()
    assert r.status_code == 503 and body["status"] == "unhealthy", body
    assert body["checks"]["database"]["status"] == "down" and body["checks"]["temporal"]["status"] == "ok"
    assert body["queues"]["email"] == {
        "waiting": 0,
        "active": 0,
        "completed": 0,
        "failed": 0,
        "delayed": 0,
        "expired": 0,
        "suppressed": 0,
    }
