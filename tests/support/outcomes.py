"""Helpers shared by the provider tests: waiting for many notifications, reading their log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from notifications.sql.models import DeliveryAttempt, Notification


def aware(value: datetime | None) -> datetime:
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def gap_seconds(earlier: DeliveryAttempt, later: DeliveryAttempt) -> float:
    """Time between the end of one attempt and the start of the next: the retry delay actually used."""
    return (aware(later.started_at) - aware(earlier.finished_at)).total_seconds()


@dataclass
class Outcome:
    row: Notification
    attempts: list[DeliveryAttempt]

    @property
    def codes(self) -> list[str | None]:
        return [a.error_code for a in self.attempts]


async def outcomes(system: Any, ids: list[str], timeout: float = 30) -> dict[str, Outcome]:
    """Wait until every notification is terminal and its attempt rows are closed."""

    async def one(nid: str) -> Outcome:
        row = await system.wait_status(nid, "sent", "failed", timeout=timeout)
        for _ in range(100):
            attempts = await system.attempts(nid)
            if all(a.finished_at is not None for a in attempts) and len(attempts) >= row.attempts:
                break
            await asyncio.sleep(0.05)
        return Outcome(row, attempts)

    results = await asyncio.gather(*(one(nid) for nid in ids))
    return dict(zip(ids, results, strict=True))
