"""Recent activity for the dashboard: outcomes per minute over the last hour.

The per-minute counts group in SQL (one row per minute and outcome, never one per notification).
`completed_at` has no index of its own, so the scan is bounded by `created_at`'s: a notification
created more than `CREATED_WITHIN` before it completed (a long schedule) is left out of the chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.sql.elements import ColumnElement

from notifications.sql.engine import Database
from notifications.sql.models import Notification
from notifications.types import Status

CREATED_WITHIN = timedelta(days=1)
_SENT = (Status.SENT.value, Status.DELIVERED.value)
_FAILED = (Status.FAILED.value, Status.BOUNCED.value)


@dataclass(frozen=True)
class Minutes:
    """`minutes` as epoch seconds (UTC, oldest first) with the notifications sent and failed in each."""

    minutes: list[int]
    sent: list[int]
    failed: list[int]

    @property
    def success_rate(self) -> float | None:
        total = sum(self.sent) + sum(self.failed)
        return sum(self.sent) / total if total else None


def _minute(db: Database) -> ColumnElement[str]:
    if db.is_sqlite:  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'
        return func.substr(Notification.completed_at, 1, 16)
    return func.to_char(func.timezone("UTC", Notification.completed_at), "YYYY-MM-DD HH24:MI")


async def outcomes_per_minute(
    db: Database, *, tenant: str | None = None, minutes: int = 60, now: datetime | None = None
) -> Minutes:
    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    bucket = _minute(db).label("minute")
    outcome = case((Notification.status.in_(_SENT), "sent"), else_="failed").label("outcome")
    query = (
        select(bucket, outcome, func.count())
        .where(
            Notification.completed_at >= start,
            Notification.created_at >= start - CREATED_WITHIN,
            Notification.status.in_((*_SENT, *_FAILED)),
        )
        .group_by(bucket, outcome)
    )
    if tenant is not None:
        query = query.where(Notification.tenant == tenant)
    async with db.sessions() as session:
        rows = (await session.execute(query)).all()
    index = {start + timedelta(minutes=i): i for i in range(minutes)}
    sent, failed = [0] * minutes, [0] * minutes
    for minute, kind, count in rows:
        at = datetime.strptime(minute, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        if at in index:
            (sent if kind == "sent" else failed)[index[at]] += int(count)
    return Minutes([int(at.timestamp()) for at in index], sent, failed)
