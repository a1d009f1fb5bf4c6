"""The dashboard's chart (`outcomes_per_minute`) and its spent tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from notifications.sql import store
from notifications.sql.activity import outcomes_per_minute
from notifications.sql.engine import Database
from notifications.sql.models import Notification
from notifications.sql.rows import row_values
from notifications.types import NotificationInput, Status

NOW = datetime(2026, 12, 6, 10, 30, 20, tzinfo=UTC)


async def _ended(db: Database, nid: str, status: Status, completed: datetime, *, tenant: str | None = None) -> None:
    inp = NotificationInput(notificationId=nid, channel="email", priority=5, to="a@example.com", tenant=tenant)
    await store.insert_row(db, row_values(inp, Status.QUEUED, completed - timedelta(seconds=5)))
    async with db.transaction() as session:
        await session.execute(
            update(Notification).where(Notification.id == nid).values(status=status.value, completed_at=completed)
        )


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_outcomes_per_minute_of_the_last_hour(db: Database) -> None:
    await _ended(db, "a", Status.SENT, NOW - timedelta(seconds=5))  # this minute
    await _ended(db, "b", Status.DELIVERED, NOW - timedelta(seconds=10))  # this minute: delivered was sent
    await _ended(db, "c", Status.FAILED, NOW - timedelta(minutes=2, seconds=1))
    await _ended(db, "d", Status.BOUNCED, NOW - timedelta(minutes=2))
    await _ended(db, "e", Status.SENT, NOW - timedelta(minutes=61))  # before the hour
    await _ended(db, "f", Status.CANCELLED, NOW - timedelta(minutes=1))  # neither
    await _ended(db, "g", Status.SENT, NOW - timedelta(minutes=1), tenant="acme")

    everyone = await outcomes_per_minute(db, now=NOW)
    assert len(everyone.minutes) == 60 and everyone.minutes[-1] == int(NOW.replace(second=0).timestamp())
    assert everyone.sent[-1] == 2 and everyone.sent[-2] == 1 and everyone.failed[-3] == 2
    assert sum(everyone.sent) == 3 and sum(everyone.failed) == 2 and everyone.success_rate == 0.6
    acme = await outcomes_per_minute(db, tenant="acme", now=NOW)
    assert sum(acme.sent) == 1 and sum(acme.failed) == 0 and acme.success_rate == 1.0
    assert (await outcomes_per_minute(db, tenant="nobody", now=NOW)).success_rate is None


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_token_is_spent_once(db: Database) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    assert not await store.token_spent(db, "j1")
    spent = await asyncio.gather(
        *(store.spend_token(db, jti="j1", kind="link", subject="dev-admin", expires_at=later) for _ in range(4))
    )
    assert sorted(spent) == [False, False, False, True] and await store.token_spent(db, "j1")
    # an expired row goes with the next write: its token is refused by its own expiry anyway
    await store.spend_token(db, jti="old", kind="session", subject="x", expires_at=datetime.now(UTC) - timedelta(1))
    await store.spend_token(db, jti="j2", kind="session", subject="x", expires_at=later)
    assert not await store.token_spent(db, "old") and await store.token_spent(db, "j2")
