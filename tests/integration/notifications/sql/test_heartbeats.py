"""Worker heartbeats in SQL (`store.beat`, `forget`, `live_queues`) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from notifications.sql import store
from notifications.sql.engine import Database
from notifications.sql.models import WorkerHeartbeat

# Recent: a graceful exit purges the rows not seen for a day of real time.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
EMAIL, PUSH = "notification-email", "notification-push"


async def rows(db: Database) -> dict[str, WorkerHeartbeat]:
    async with db.sessions() as session:
        return {r.worker_id: r for r in await session.scalars(select(WorkerHeartbeat))}


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_beat_upserts_and_live_queues_counts_fresh_workers(db: Database) -> None:
    assert await store.live_queues(db, T0) == {}  # no worker beats: the health check's pollers decide

    await store.beat(db, "h1:10:aa", "h1", 10, [EMAIL, PUSH], T0)
    await store.beat(db, "h2:20:bb", "h2", 20, [EMAIL], T0 + timedelta(seconds=2))
    live = await store.live_queues(db, since=T0 + timedelta(seconds=1), now=T0 + timedelta(seconds=3))
    assert live == {
        EMAIL: {"workers": 1, "lastSeenSecondsAgo": 1.0},  # h1 went quiet, h2 beat 1 s ago
        PUSH: {"workers": 0, "lastSeenSecondsAgo": 3.0},  # named, but by a stale row only
    }

    # a later beat updates the row: new time and queues, same start; a time in another zone is UTC
    later = (T0 + timedelta(seconds=4)).astimezone(timezone(timedelta(hours=2)))
    await store.beat(db, "h1:10:aa", "h1", 10, [PUSH], later)
    found = await rows(db)
    assert set(found) == {"h1:10:aa", "h2:20:bb"}
    assert utc(found["h1:10:aa"].started_at) == T0 and utc(found["h1:10:aa"].seen_at) == T0 + timedelta(seconds=4)
    assert found["h1:10:aa"].task_queues == [PUSH] and found["h1:10:aa"].host == "h1" and found["h1:10:aa"].pid == 10
    live = await store.live_queues(db, since=T0 + timedelta(seconds=3), now=T0 + timedelta(seconds=5))
    assert live == {EMAIL: {"workers": 0, "lastSeenSecondsAgo": 3.0}, PUSH: {"workers": 1, "lastSeenSecondsAgo": 1.0}}

    # a writer's clock ahead of the reader's shows 0 s, not a negative age
    assert (await store.live_queues(db, since=T0, now=T0))[PUSH]["lastSeenSecondsAgo"] == 0.0

    await store.forget(db, "h2:20:bb")
    assert set(await rows(db)) == {"h1:10:aa"}
    await store.forget(db, "h2:20:bb")  # twice is fine
    assert set(await store.live_queues(db, T0)) == {PUSH}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_rows_not_seen_for_a_day_are_purged(db: Database) -> None:
    now = datetime.now(UTC)
    await store.beat(db, "dead:1:aa", "dead", 1, [EMAIL], now - timedelta(days=2))
    await store.beat(db, "quiet:2:bb", "quiet", 2, [EMAIL], now - timedelta(hours=20))
    await store.beat(db, "live:3:cc", "live", 3, [EMAIL], now)  # a first beat: an insert, which purges
    assert set(await rows(db)) == {"quiet:2:bb", "live:3:cc"}
    await store.beat(db, "dead:4:dd", "dead", 4, [EMAIL], now - timedelta(days=3))
    await store.beat(db, "live:3:cc", "live", 3, [EMAIL], now)  # an update: purges nothing
    assert set(await rows(db)) == {"quiet:2:bb", "live:3:cc", "dead:4:dd"}
    await store.forget(db, "live:3:cc")  # a graceful exit purges too
    assert set(await rows(db)) == {"quiet:2:bb"}
