"""Our side of a scenario: notifications enqueued through `NotificationClient`, and their rows read
back from the SQL mirror (latencies from `created_at` to `completed_at`, the exactly-once counts)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.harness import Stack, _bounded


def _epoch(value: datetime) -> float:
    """SQLite hands back naive datetimes; the mirror writes UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _payload(i: int, channel: str, prefix: str) -> dict[str, Any]:
    nid = f"{prefix}-{i:06d}"
    if channel == "email":
        return {
            "notificationId": nid,
            "to": f"user{i}@example.com",
            "subject": f"Bench {i}",
            "html": f"<p>Hello {i}</p>",
            "text": f"Hello {i}",
            "type": "bench",
            "userId": f"u{i}",
        }
    return {
        "notificationId": nid,
        "userId": f"u{i}",
        "title": f"Bench {i}",
        "message": f"Hello {i}",
        "data": {"i": str(i)},
        "type": "bench",
    }


async def _client(st: Stack, **overrides: Any) -> Any:
    from notifications.client import NotificationClient
    from notifications.config import Settings

    settings = Settings(temporal_address=st.address, database_url=st.database_url, data_dir=st.workdir, **overrides)
    return await NotificationClient.connect(settings)


async def _enqueue_all(client: Any, plan: Sequence[tuple[int, str]], prefix: str, concurrency: int) -> list[float]:
    rng = random.Random(42)
    priorities = {i: rng.randint(1, 10) for i, _ in plan}

    async def one(item: tuple[int, str]) -> float:
        i, channel = item
        t0 = time.perf_counter()
        if channel == "email":
            await client.enqueue_email(_payload(i, channel, prefix), priorities[i])
        else:
            await client.enqueue_push(_payload(i, channel, prefix), priorities[i])
        return time.perf_counter() - t0

    return await _bounded(plan, concurrency, one)


def preferences_of(now: datetime) -> dict[str, Any]:
    """What every benchmark user has stored: a realistic document the send must evaluate (quiet
    hours on push, hours away from now, so nothing is deferred), and one that stops nothing sent here."""
    zone = "Europe/Berlin"
    local = now.astimezone(ZoneInfo(zone))
    start, end = local + timedelta(hours=6), local + timedelta(hours=8)
    return {
        "channels": {"email": True, "push": True},
        "types": {"marketing": False},
        "timezone": zone,
        "quietHours": {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"), "channels": ["push"]},
    }


async def _store_preferences(client: Any, plan: Sequence[tuple[int, str]], concurrency: int) -> None:
    document = preferences_of(datetime.now(UTC))

    async def one(item: tuple[int, str]) -> None:
        await client.set_preferences(f"u{item[0]}", document, actor=None)

    await _bounded(plan, concurrency, one)


async def _count_sent(client: Any, prefix: str) -> int:
    from sqlalchemy import func, select

    from notifications.sql.models import Notification

    async with client.db.sessions() as session:
        value = await session.scalar(
            select(func.count()).where(Notification.id.like(f"{prefix}-%"), Notification.status == "sent")
        )
    return int(value or 0)


async def _wait_sent(st: Stack, client: Any, prefix: str, n: int, limit_s: float) -> int:
    deadline = time.monotonic() + limit_s
    sent = 0
    while time.monotonic() < deadline:
        st.check_worker()
        sent = await _count_sent(client, prefix)
        if sent >= n:
            return sent
        await asyncio.sleep(0.25)
    return sent


async def _sql_results(client: Any, prefix: str) -> dict[str, Any]:
    """Latencies from the SQL mirror itself (created_at -> completed_at), plus the exactly-once checks."""
    from sqlalchemy import func, select

    from notifications.sql.models import DeliveryAttempt, Notification, OutboxMessage

    async with client.db.sessions() as session:
        rows = (
            await session.execute(
                select(Notification.id, Notification.status, Notification.created_at, Notification.completed_at).where(
                    Notification.id.like(f"{prefix}-%")
                )
            )
        ).all()
        attempts = (
            await session.execute(
                select(DeliveryAttempt.outcome, func.count())
                .where(DeliveryAttempt.notification_id.like(f"{prefix}-%"))
                .group_by(DeliveryAttempt.outcome)
            )
        ).all()
        outbox = await session.scalar(select(func.count()).where(OutboxMessage.notification_id.like(f"{prefix}-%")))
    e2e = [_epoch(r.completed_at) - _epoch(r.created_at) for r in rows if r.status == "sent" and r.completed_at]
    return {
        "rows": len(rows),
        "sent": sum(1 for r in rows if r.status == "sent"),
        "e2e": e2e,
        "first_created": min((_epoch(r.created_at) for r in rows), default=None),
        "last_completed": max((_epoch(r.completed_at) for r in rows if r.completed_at), default=None),
        "delivery_attempts": {str(o): int(c) for o, c in attempts},
        "outbox_messages": int(outbox or 0),
        "ids": [r.id for r in rows],
    }
