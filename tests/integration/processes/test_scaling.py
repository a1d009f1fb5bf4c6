"""Horizontal scaling: several worker processes share the load, one dies, nothing is lost or doubled;
and per-tenant fairness keeps one tenant's burst from starving another's."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from activities.providers import Providers
from tests.support.processes import start_worker
from tests.support.scripted import ScriptedProvider
from tests.support.system import System


@pytest.fixture
async def process_system(system_with: Callable[..., Any]) -> AsyncIterator[System]:
    async with system_with(send_timeout_seconds=3) as s:
        yield s


async def test_two_workers_share_a_burst_and_survive_a_sigkill(process_system: System) -> None:
    system = process_system
    env = {"OUTBOX_LATENCY_MS": "200", "SEND_TIMEOUT_SECONDS": "3", "EMAIL_CONCURRENCY": "4", "PUSH_CONCURRENCY": "4"}
    first, second = start_worker(system, **env), start_worker(system, **env)
    ids = [f"burst-{i}-{uuid.uuid4().hex[:6]}" for i in range(60)]
    try:
        for i, nid in enumerate(ids):
            if i % 2:
                await system.client.enqueue_push({"notificationId": nid, "userId": "u", "title": "t", "message": "m"})
            else:
                await system.client.enqueue_email(
                    {"notificationId": nid, "to": "a@example.com", "subject": "s", "html": "<p>x</p>"}
                )
        # Mid-burst, one worker dies without any chance to clean up.
        for _ in range(200):
            if len([m for m in await system.outbox() if m.notification_id in ids]) >= 10:
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        for nid in ids:
            await system.wait_status(nid, "sent", timeout=60)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
    recorded = Counter(m.notification_id for m in await system.outbox())
    assert all(recorded[nid] == 1 for nid in ids), "every notification recorded exactly once"
    # both workers really took part: attempts were logged by the one that was killed too
    interrupted = [nid for nid in ids if any(a.outcome == "interrupted" for a in await system.attempts(nid))]
    sent_rows = [await system.row(nid) for nid in ids]
    assert all(r is not None and r.status == "sent" for r in sent_rows)
    assert len(interrupted) <= 8  # at most the killed worker's in-flight sends were retried


async def test_tenant_burst_does_not_starve_another_tenant(system: System) -> None:
    provider = ScriptedProvider()
    tenant_of: dict[str, str] = {}
    for i in range(24):
        nid = f"big-{i}-{uuid.uuid4().hex[:6]}"
        tenant_of[nid] = "big"
        await system.client.enqueue_email(
            {"notificationId": nid, "to": "a@example.com", "subject": "s", "html": "<p>x</p>", "tenant": "big"}
        )
    for i in range(4):
        nid = f"small-{i}-{uuid.uuid4().hex[:6]}"
        tenant_of[nid] = "small"
        await system.client.enqueue_email(
            {"notificationId": nid, "to": "b@example.com", "subject": "s", "html": "<p>x</p>", "tenant": "small"}
        )
    async with system.worker(Providers(email=provider, push=provider), email_concurrency=1):
        for nid in tenant_of:
            await system.wait_status(nid, "sent", timeout=60)
    order = [tenant_of[c.key] for c in provider.calls]
    last_small = max(i for i, tenant in enumerate(order) if tenant == "small")
    # Without fairness the small tenant would wait behind all 24: positions 24-27.
    assert last_small < 14, order
