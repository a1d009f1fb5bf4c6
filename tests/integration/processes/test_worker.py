"""The worker as operators run it (`notifications worker` in its own process): killed with SIGKILL
mid-send, nothing is lost and nothing is sent twice; stopped with SIGTERM, sends in flight finish."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select

from notifications.sql.models import DeliveryAttempt
from tests.support.processes import start_worker
from tests.support.system import System, free_port, wait_until


async def attempt_in_progress(system: System, nid: str) -> bool:
    async with system.db.sessions() as session:
        outcomes = list(
            await session.scalars(select(DeliveryAttempt.outcome).where(DeliveryAttempt.notification_id == nid))
        )
    return "in_progress" in outcomes


@pytest.fixture
async def process_system(system_with: Callable[..., Any]) -> AsyncIterator[System]:
    # A send attempt times out after 4 s, so the retry after a crash comes quickly.
    async with system_with(send_timeout_seconds=4) as s:
        yield s


async def test_sigkill_mid_send_then_new_worker_sends_exactly_once(process_system: System) -> None:
    system = process_system
    nid = f"crash-{uuid.uuid4().hex[:8]}"
    # The outbox records the message, then 'answers' 2 s later: the kill lands after the provider
    # accepted it but before the worker reported back, the case idempotency exists for.
    worker = start_worker(system, OUTBOX_LATENCY_MS="2000", SEND_TIMEOUT_SECONDS="4")
    try:
        await system.client.enqueue_email(
            {"notificationId": nid, "to": "a@example.com", "subject": "s", "html": "<p>x</p>"}
        )
        await wait_until(lambda: attempt_in_progress(system, nid), timeout=30)
        await wait_until(lambda: _outbox_has(system, nid), timeout=10)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    row = await system.row(nid)
    assert row is not None and row.status == "retrying"

    metrics_port = free_port()
    replacement = start_worker(
        system, OUTBOX_LATENCY_MS="0", SEND_TIMEOUT_SECONDS="4", METRICS_BIND=f"127.0.0.1:{metrics_port}"
    )
    try:
        row = await system.wait_status(nid, "sent", timeout=30)
        scraped = await asyncio.to_thread(_scrape, metrics_port)
    finally:
        replacement.send_signal(signal.SIGTERM)
        replacement.wait(20)
    assert [m.notification_id for m in await system.outbox()].count(nid) == 1
    log = await system.attempts(nid)
    assert [(a.attempt, a.outcome) for a in log] == [(1, "interrupted"), (2, "sent")]
    assert row.attempts == 2 and row.provider_message_id == f"outbox-{nid}"
    # Prometheus metrics of the worker that delivered it: ours and the SDK's, conventional names.
    assert 'notifications_sent_total{channel="email",provider="outbox",' in scraped
    assert "notification_provider_call_duration_seconds_bucket" in scraped
    assert "notification_end_to_end_latency_seconds_count" in scraped
    assert "temporal_activity_execution_latency_seconds" in scraped or "temporal_" in scraped


def _scrape(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


async def test_sigterm_lets_the_send_in_flight_finish(process_system: System) -> None:
    system = process_system
    nid = f"term-{uuid.uuid4().hex[:8]}"
    worker = start_worker(system, OUTBOX_LATENCY_MS="1500", GRACEFUL_SHUTDOWN_SECONDS="10")
    try:
        await system.client.enqueue_email(
            {"notificationId": nid, "to": "a@example.com", "subject": "s", "html": "<p>x</p>"}
        )
        await wait_until(lambda: attempt_in_progress(system, nid), timeout=30)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 20)
        elapsed = time.monotonic() - started
    finally:
        if worker.poll() is None:
            worker.kill()
    output = worker.stdout.read().decode() if worker.stdout else ""
    assert code == 0, output
    assert "shutting down" in output and "worker stopped" in output
    assert elapsed < 10
    row = await system.wait_status(nid, "sent", timeout=5)
    assert row.attempts == 1
    assert [(a.attempt, a.outcome) for a in await system.attempts(nid)] == [(1, "sent")]


async def _outbox_has(system: System, nid: str) -> bool:
    return any(m.notification_id == nid for m in await system.outbox())
