"""Retention: a Temporal Schedule purges sent and failed records (and their logs) past their age."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from temporalio.client import ScheduleOverlapPolicy

from notifications.provider_events import ProviderEvent
from notifications.sql.models import DeliveryAttempt, DeliveryEvent, Notification, OutboxMessage, utcnow
from notifications.sql.store.events import ingest
from notifications.types import RETENTION_SCHEDULE_ID
from processes.schedules import ensure_retention_schedule
from tests.support.rows import finished_email
from tests.support.system import System, system_on_own_server, wait_until


async def seed(system: System, nid: str, status: str, age_days: float) -> None:
    done = utcnow() - timedelta(days=age_days)
    async with system.db.transaction() as session:
        session.add(finished_email(nid, done, status=status))
        await session.flush()
        session.add(
            DeliveryAttempt(
                notification_id=nid,
                run_id="r",
                attempt=1,
                started_at=done,
                finished_at=done,
                outcome="sent" if status == "sent" else "permanent_error",
                details={},
            )
        )
        session.add(OutboxMessage(notification_id=nid, channel="email", body={}, provider_message_id=f"o-{nid}"))


@pytest.fixture
async def alone(database_url: str, tmp_path: Path) -> AsyncIterator[System]:
    """A server of its own: the schedule and its task queue are one per namespace, and a worker
    another test left on the shared server's maintenance queue would take the purge."""
    async with system_on_own_server(database_url, tmp_path) as system:
        yield system


async def test_schedule_purges_expired_records(alone: System) -> None:
    system = alone
    await seed(system, "old-sent", "sent", 8)  # sent: kept 7 days
    await seed(system, "new-sent", "sent", 1)
    await seed(system, "old-failed", "failed", 31)  # failed: kept 30 days
    await seed(system, "young-failed", "failed", 8)
    await seed(system, "old-cancelled", "cancelled", 40)
    # A delivery event that lost the race with the send's record a minute ago: it waits, its
    # notification known; the run applies it.
    assert await ingest(system.db, ProviderEvent("resend", "evt-1", "email.delivered", "msg-new", utcnow(), {}))
    async with system.db.transaction() as session:
        await session.execute(update(DeliveryEvent).values(received_at=utcnow() - timedelta(minutes=1)))
        known = update(Notification).where(Notification.id == "new-sent").values(provider_message_id="msg-new")
        await session.execute(known)
    await ensure_retention_schedule(system.temporal, system.settings)
    await ensure_retention_schedule(system.temporal, system.settings)  # idempotent: updates in place
    schedule = system.temporal.get_schedule_handle(RETENTION_SCHEDULE_ID)
    try:
        description = await schedule.describe()
        assert description.schedule.spec.intervals[0].every == timedelta(minutes=60)
        async with system.worker():
            # a run another test left behind must not make SKIP swallow this trigger
            await schedule.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)

            async def purged() -> bool:
                async with system.db.sessions() as session:
                    return await session.scalar(select(func.count()).select_from(Notification)) == 2

            await wait_until(purged, timeout=20)
    finally:
        await schedule.delete()
    async with system.db.sessions() as session:
        kept = set(await session.scalars(select(Notification.id)))
        logs = set(await session.scalars(select(DeliveryAttempt.notification_id)))
        outbox = set(await session.scalars(select(OutboxMessage.notification_id)))
        delivered = await session.scalar(select(Notification.status).where(Notification.id == "new-sent"))
    assert kept == {"new-sent", "young-failed"}
    assert logs == kept and outbox == kept
    assert delivered == "delivered"
