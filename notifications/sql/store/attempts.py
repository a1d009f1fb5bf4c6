"""Reads of a notification's delivery log that its next attempt acts on (off the first attempt's path)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from notifications.sql.engine import Database
from notifications.sql.models import DeliveryAttempt


@dataclass(frozen=True)
class EarlierAttempt:
    attempt: int
    provider: str | None
    outcome: str
    details: dict[str, Any]


async def earlier_attempts(db: Database, notification_id: str, run_id: str) -> list[EarlierAttempt]:
    """This run's attempts that have an outcome, oldest first."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(DeliveryAttempt.attempt, DeliveryAttempt.provider, DeliveryAttempt.outcome, DeliveryAttempt.details)
            .where(
                DeliveryAttempt.notification_id == notification_id,
                DeliveryAttempt.run_id == run_id,
                DeliveryAttempt.outcome != "in_progress",
            )
            .order_by(DeliveryAttempt.attempt)
        )
        return [EarlierAttempt(a, p, o, d if isinstance(d, dict) else {}) for a, p, o, d in rows]
