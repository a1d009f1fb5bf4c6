"""Pause, resume and cancel a campaign mid-run, by its own signals and by its channel's queue pause."""

from __future__ import annotations

import asyncio
from typing import Any

from activities.providers import OutboxProvider, Providers
from tests.integration.campaigns.test_campaign_flow import campaign, completed, recipients
from tests.support.system import System, wait_until


async def sent_count(system: System, cid: str) -> int:
    return int((await system.client.campaign(cid))["sent"])


async def settled(system: System, cid: str) -> int:
    """The sent count once the batches in flight have finished (it stops moving)."""
    before = -1
    while True:
        now = await sent_count(system, cid)
        if now == before:
            return now
        before = now
        await asyncio.sleep(0.6)


async def started(system: System, people: int, rate: int) -> str:
    # Paced: `rate` recipients a second, so the test acts while it runs.
    created = await system.client.create_campaign(campaign(recipients=recipients(people), rateLimitPerSecond=rate))
    cid: str = created["campaignId"]
    await wait_until(lambda: _some_sent(system, cid), timeout=20)
    return cid


async def _some_sent(system: System, cid: str) -> bool:
    return await sent_count(system, cid) > 0


async def test_pause_then_resume(system: System) -> None:
    outbox = OutboxProvider(system.db)
    async with system.worker(Providers(email=outbox, push=outbox)):
        cid = await started(system, 600, 150)
        paused = await system.client.pause_campaign(cid)
        assert paused["status"] == "paused"
        frozen = await settled(system, cid)
        assert frozen < 600
        await asyncio.sleep(1.0)
        record = await system.client.campaign(cid)
        assert record["sent"] == frozen and record["status"] == "paused"
        progress = await system.client.campaign_progress(cid)
        assert progress["paused"] is True and progress["sent"] <= frozen
        assert (await system.client.resume_campaign(cid))["status"] == "running"
        record = await completed(system, cid)
    assert record["sent"] == 600 and len(await system.outbox()) == 600


async def test_cancel_mid_run(system: System) -> None:
    outbox = OutboxProvider(system.db)
    async with system.worker(Providers(email=outbox, push=outbox)):
        cid = await started(system, 600, 150)
        await system.client.cancel_campaign(cid)
        record: dict[str, Any] = {}

        async def cancelled() -> bool:
            record.update(await system.client.campaign(cid))
            return record["status"] == "cancelled"

        await wait_until(cancelled, timeout=15)
    assert 0 < record["sent"] < 600 and record["sent"] + record["cancelled"] == 600 and record["queued"] == 0
    assert len(await system.outbox()) == record["sent"]
    page = await system.client.campaign(cid)
    assert page["completedAt"] is not None
    # cancelling it again is harmless: it stays cancelled
    assert (await system.client.cancel_campaign(cid))["status"] == "cancelled"


async def test_a_queue_pause_holds_the_campaign(system: System) -> None:
    outbox = OutboxProvider(system.db)
    async with system.worker(Providers(email=outbox, push=outbox)):
        cid = await started(system, 500, 150)
        await system.client.pause_queue("email")
        frozen = await settled(system, cid)
        assert frozen < 500
        await asyncio.sleep(1.0)
        assert await sent_count(system, cid) == frozen
        assert (await system.client.campaign(cid))["status"] == "paused"
        await system.client.resume_queue("email")
        record = await completed(system, cid)
    assert record["sent"] == 500


async def test_cancel_while_its_queue_is_paused_ends_every_recipient(system: System) -> None:
    """Batches the queue pause sent back, and recipients a batch had claimed, all end `cancelled`."""
    outbox = OutboxProvider(system.db)
    async with system.worker(Providers(email=outbox, push=outbox)):
        cid = await started(system, 400, 150)
        await system.client.pause_queue("email")
        await settled(system, cid)
        await system.client.cancel_campaign(cid)
        record: dict[str, Any] = {}

        async def cancelled() -> bool:
            record.update(await system.client.campaign(cid))
            return record["status"] == "cancelled"

        await wait_until(cancelled, timeout=15)
        await system.client.resume_queue("email")
    assert record["queued"] == 0 and record["sent"] + record["cancelled"] == 400
    assert len(await system.outbox()) == record["sent"]
