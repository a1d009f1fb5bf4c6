"""Provider events that lost the race with their send's record: an ingest and the attempt end that
records the message ID, committing at the same moment, each miss the other's row (PostgreSQL at
READ COMMITTED). The event waits with its notification known; `apply_stranded` applies it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from notifications.provider_events import ProviderEvent
from notifications.sql import store
from notifications.sql.engine import Database
from notifications.sql.models import AuditLog, DeliveryEvent, Notification, Suppression, utcnow
from notifications.sql.store.events import ingest
from tests.support.rows import finished_email

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


async def _sent(db: Database, nid: str, recipient: str) -> None:
    now = utcnow()
    async with db.transaction() as session:
        session.add(finished_email(nid, now, recipient=recipient))


async def _lost_race(db: Database, nid: str, message_id: str, kind: str, **details: object) -> None:
    """The event stored first and finding no notification, then the message ID recorded without
    seeing the event: the state both transactions leave when each missed the other."""
    event = ProviderEvent("resend", f"evt-{message_id}-{kind}", kind, message_id, utcnow(), dict(details))
    assert await ingest(db, event)
    async with db.transaction() as session:
        await session.execute(update(Notification).where(Notification.id == nid).values(provider_message_id=message_id))


async def test_an_event_left_waiting_by_the_race_is_applied_by_the_sweep(db: Database) -> None:
    await _sent(db, "raced", "ana@patients.example.org")
    await _lost_race(db, "raced", "msg-raced", "email.delivered")
    await _lost_race(db, "bounced", "msg-bounced", "email.bounced", bounceType="Permanent")  # no such row
    await _sent(db, "bounced", "bo@patients.example.org")
    async with db.transaction() as session:
        await session.execute(
            update(Notification).where(Notification.id == "bounced").values(provider_message_id="msg-bounced")
        )
    unknown = ProviderEvent("resend", "evt-unknown", "email.delivered", "msg-nobody", utcnow(), {})
    assert await ingest(db, unknown)

    assert await store.apply_stranded(db, utcnow() - timedelta(seconds=30)) == 0  # too recent to be stranded
    assert await store.apply_stranded(db, utcnow() + timedelta(seconds=1)) == 2

    async with db.sessions() as session:
        raced = await session.get(Notification, "raced")
        bounced = await session.get(Notification, "bounced")
        waiting = set(
            await session.scalars(select(DeliveryEvent.event_id).where(DeliveryEvent.notification_id.is_(None)))
        )
        suppressed = list(await session.scalars(select(Suppression.address)))
        audited = list(await session.scalars(select(AuditLog.actor).where(AuditLog.action == "suppressions.add")))
    assert raced is not None and raced.status == "delivered" and raced.delivered_at is not None
    assert bounced is not None and bounced.status == "bounced" and bounced.bounced_at is not None
    assert suppressed == ["bo@patients.example.org"] and audited == ["provider:resend"]
    assert waiting == {"evt-unknown"}  # an event about a message of nobody's still waits
    assert await store.apply_stranded(db, utcnow() + timedelta(seconds=1)) == 0  # applied once
