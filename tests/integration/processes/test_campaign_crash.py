"""A worker SIGKILLed in the middle of a campaign: a new worker goes on within seconds, and every
recipient gets exactly one email (a batch repeated after the crash carries the same key)."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from notifications.sql.models import Notification, OutboxMessage
from tests.support.processes import start_worker
from tests.support.system import System, wait_until


@pytest.fixture
async def crash_system(system_with: Callable[..., Any]) -> AsyncIterator[System]:
    async with system_with(campaign_batch_size=100) as s:
        yield s


async def _count(system: System, *where: Any) -> int:
    async with system.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Notification).where(*where)) or 0)


async def test_sigkill_mid_campaign_then_a_new_worker_finishes_it_once(crash_system: System) -> None:
    system = crash_system
    cid = f"crash-{uuid.uuid4().hex[:8]}"
    people = [{"to": f"r{i}@example.com", "name": f"R{i}"} for i in range(1500)]
    # Each batch call 'answers' 1.5 s after it recorded its messages: the kill lands between the
    # provider accepting a batch and the worker recording it.
    env = {"OUTBOX_LATENCY_MS": "1500", "CAMPAIGN_BATCH_SIZE": "100", "CAMPAIGN_MAX_IN_FLIGHT": "3"}
    worker = start_worker(system, **env)
    try:
        await system.client.create_campaign(
            {
                "campaignId": cid,
                "name": "crash",
                "channel": "email",
                "subject": "Hi {{ name }}",
                "text": "t",
                "recipients": people,
            }
        )
        claimed = (Notification.campaign_id == cid, Notification.status == "retrying")
        await wait_until(lambda: _some(system, cid), timeout=60)
        await wait_until(lambda: _claimed(system, *claimed), timeout=30)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    in_doubt = await _count(system, *claimed)
    assert in_doubt > 0  # batches the dead worker had claimed
    killed_at = time.monotonic()
    replacement = start_worker(system, **{**env, "OUTBOX_LATENCY_MS": "0"})
    try:
        await wait_until(lambda: _fewer(system, in_doubt, *claimed), timeout=30)
        resumed_after = time.monotonic() - killed_at
        await wait_until(lambda: _completed(system, cid), timeout=60)
    finally:
        replacement.send_signal(signal.SIGTERM)
        replacement.wait(20)
    assert resumed_after < 15
    record = await system.client.campaign(cid)
    assert record["sent"] == 1500 and record["queued"] == 0
    async with system.db.sessions() as session:
        per_address = dict(
            (await session.execute(select(OutboxMessage.recipient, func.count()).group_by(OutboxMessage.recipient)))
            .tuples()
            .all()
        )
    assert len(per_address) == 1500 and set(per_address.values()) == {1}


async def _some(system: System, cid: str) -> bool:
    return await _count(system, Notification.campaign_id == cid, Notification.status == "sent") > 0


async def _claimed(system: System, *where: Any) -> bool:
    return await _count(system, *where) > 0


async def _fewer(system: System, before: int, *where: Any) -> bool:
    return await _count(system, *where) < before


async def _completed(system: System, cid: str) -> bool:
    return (await system.client.campaign(cid))["status"] == "completed"


async def test_worker_processes_split_by_queue(system_with: Callable[..., Any]) -> None:
    """`--queues campaign` polls campaigns only; `email,push,maintenance` the rest: a campaign's batches
    run in the one, its recipients' own workflows (a transient failure) in the other."""
    async with system_with() as system:
        campaigns_only = start_worker(system, WORKER_QUEUES="campaign")
        others = start_worker(system, WORKER_QUEUES="email,push,maintenance")
        try:
            created = await system.client.create_campaign(
                {
                    "name": "split",
                    "channel": "email",
                    "subject": "s",
                    "text": "t",
                    "recipients": [{"to": f"s{i}@example.com"} for i in range(50)],
                }
            )
            await wait_until(lambda: _completed(system, created["campaignId"]), timeout=60)
            single = await system.client.enqueue_email({"to": "one@example.com", "subject": "s", "text": "t"})
            await system.wait_status(single.notification_id, "sent", timeout=30)
        finally:
            for proc in (campaigns_only, others):
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
        logs = (system.settings.data_dir / "worker.log").read_text()
    assert "worker polling notification-campaign (" in logs
    assert "worker polling notification-maintenance, notification-email, notification-push (" in logs
