"""The SQL behind the admin API: queue stats, notification listing, dead letters, the audit trail.

Stats map our SQL states onto the seed's BullMQ job counts; each non-terminal
notification lands in exactly one of waiting / active / delayed, evaluated in
this order:

- active:    a send attempt of the current run is in progress (`delivery_attempts.outcome =
             'in_progress'`);
- waiting:   held by a pause (the notification's own `paused` flag or its queue's `queue_state`),
             or not started / between attempts with no backoff pending (pending, queued, retrying);
- delayed:   scheduled for later (status scheduled, also deferred by quiet hours), or a retry
             backoff is pending (`next_retry_at` set, status retrying), and nothing holds it;
- completed: sent or delivered;  failed: failed or bounced;  beside the seed's five, expired: status
             expired, suppressed: status suppressed. Cancelled notifications are in none of them.

Held notifications count as waiting, not delayed, because no clock will release them: an
operator will. Everything is one SQL statement per channel, so counts are a consistent snapshot.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from notifications.errors import NotificationValidationError
from notifications.sql import pg
from notifications.sql.engine import Database
from notifications.sql.models import AuditLog, DeliveryAttempt, Notification, QueueState
from notifications.sql.statements import QUEUE_PAUSED
from notifications.types import TERMINAL_STATUSES, Channel, Status

_NON_TERMINAL = [s.value for s in Status if s not in TERMINAL_STATUSES]
STAT_KEYS = ("waiting", "active", "completed", "failed", "delayed", "expired", "suppressed")


def _active() -> ColumnElement[bool]:
    return exists().where(
        DeliveryAttempt.notification_id == Notification.id,
        DeliveryAttempt.run_id == Notification.run_id,
        DeliveryAttempt.outcome == "in_progress",
    )


def _held() -> ColumnElement[bool]:
    queue_paused = exists().where(QueueState.queue == Notification.channel, QueueState.paused.is_(True))
    return or_(Notification.paused.is_(True), queue_paused)


async def queue_stats(db: Database, tenant: str | None = None) -> dict[str, dict[str, int]]:
    """`{"email": {waiting, active, completed, failed, delayed}, "push": {...}}`, exact integers."""
    open_ = Notification.status.in_(_NON_TERMINAL)
    bucket = case(
        (Notification.status.in_((Status.SENT.value, Status.DELIVERED.value)), "completed"),
        (Notification.status.in_((Status.FAILED.value, Status.BOUNCED.value)), "failed"),
        (Notification.status == Status.EXPIRED.value, "expired"),
        (Notification.status == Status.SUPPRESSED.value, "suppressed"),
        (~open_, "other"),
        (_active(), "active"),
        (_held(), "waiting"),
        (Notification.status == Status.SCHEDULED.value, "delayed"),
        (Notification.next_retry_at.is_not(None), "delayed"),
        else_="waiting",
    ).label("bucket")
    query = select(Notification.channel, bucket, func.count()).group_by(Notification.channel, bucket)
    if tenant is not None:
        query = query.where(Notification.tenant == tenant)
    stats = {c.value: dict.fromkeys(STAT_KEYS, 0) for c in Channel}
    async with db.sessions() as session:
        for channel, name, count in await session.execute(query):
            if channel in stats and name in stats[channel]:
                stats[channel][name] += int(count)
    return stats


def health_metrics(stats: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The seed's health `metrics`: successRate over finished notifications, pending = not finished."""
    successful = sum(s["completed"] for s in stats.values())
    failed = sum(s["failed"] for s in stats.values())
    pending = sum(s["waiting"] + s["active"] + s["delayed"] for s in stats.values())
    total = successful + failed
    return {
        "successRate": round(successful / total, 4) if total else 1.0,
        "totalProcessed": total,
        "successful": successful,
        "failed": failed,
        "pending": pending,
    }


async def ping(db: Database) -> None:
    async with db.sessions() as session:
        await session.execute(text("SELECT 1"))


# -- listing --------------------------------------------------------------------------------------
@dataclass
class NotificationFilter:
    status: str | None = None
    channel: str | None = None
    type: str | None = None
    user_id: str | None = None
    tenant: str | None = None
    error_code: str | None = None
    campaign_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        for column, value in (
            (Notification.status, self.status),
            (Notification.channel, self.channel),
            (Notification.type, self.type),
            (Notification.user_id, self.user_id),
            (Notification.tenant, self.tenant),
            (Notification.error_code, self.error_code),
            (Notification.campaign_id, self.campaign_id),
        ):
            if value is not None:
                out.append(column == value)
        return out

    def time_clauses(self, session: AsyncSession) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(Notification.created_at >= _db_time(session, self.since, "since"))
        if self.until is not None:
            out.append(Notification.created_at < _db_time(session, self.until, "until"))
        return out


class InvalidCursorError(ValueError):
    """The pagination cursor was not produced by this API."""


def encode_cursor(row: Notification) -> str:
    raw = json.dumps([row.created_at.isoformat(), row.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, nid = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(created), str(nid)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursorError("cursor is not valid") from exc


def _db_time(session: AsyncSession, value: datetime, field: str) -> datetime:
    """A datetime comparable with our columns: SQLite stores UTC naive, PostgreSQL timestamptz.

    A naive input is taken as UTC, like every time this system stores.
    """
    try:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        utc = aware.astimezone(UTC)
    except (OverflowError, ValueError):
        raise NotificationValidationError([{"field": field, "message": "datetime out of range"}]) from None
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        return utc.replace(tzinfo=None)
    return utc


async def list_notifications(
    db: Database, filt: NotificationFilter, *, limit: int, cursor: str | None = None
) -> tuple[list[Notification], str | None]:
    """Newest first, keyset-paginated on (created_at, id) so pages stay stable while rows arrive."""
    async with db.sessions() as session:
        clauses = filt.clauses() + filt.time_clauses(session)
        if cursor:
            created, nid = decode_cursor(cursor)
            created = _db_time(session, created, "cursor")
            clauses.append(
                or_(Notification.created_at < created, and_(Notification.created_at == created, Notification.id < nid))
            )
        rows = list(
            await session.scalars(
                select(Notification)
                .where(*clauses)
                .order_by(Notification.created_at.desc(), Notification.id.desc())
                .limit(limit + 1)
            )
        )
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def get_notification(db: Database, notification_id: str, tenant: str | None = None) -> Notification | None:
    """None when missing or owned by another tenant: a scoped token cannot probe other tenants' IDs."""
    async with db.sessions() as session:
        row = await session.get(Notification, notification_id)
    if row is None or (tenant is not None and row.tenant != tenant):
        return None
    return row


# -- audit ----------------------------------------------------------------------------------------
async def list_audit(
    db: Database,
    *,
    limit: int,
    before_id: int | None = None,
    tenant: str | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> list[AuditLog]:
    clauses: list[ColumnElement[bool]] = []
    if before_id is not None:
        clauses.append(AuditLog.id < before_id)
    if tenant is not None:
        clauses.append(AuditLog.tenant == tenant)
    if actor is not None:
        clauses.append(AuditLog.actor == actor)
    if action is not None:
        clauses.append(AuditLog.action == action)
    async with db.sessions() as session:
        return list(await session.scalars(select(AuditLog).where(*clauses).order_by(AuditLog.id.desc()).limit(limit)))


# -- queue flags ------------------------------------------------------------------------------------
async def is_queue_paused(executor: AsyncSession | AsyncConnection, channel: str) -> bool:
    return bool(await executor.scalar(QUEUE_PAUSED, {"b_queue": channel}))


async def queue_paused(db: Database, channel: str) -> bool:
    """A queue's pause flag, read on its own (the enqueue's check): on PostgreSQL through the hot path."""
    pool = await db.hot_pool()
    if pool is not None:
        return await pg.queue_paused(pool, channel)
    async with db.connection() as conn:  # a read: not queued behind this process's writes
        return await is_queue_paused(conn, channel)


async def queue_states(db: Database) -> dict[str, QueueState | None]:
    async with db.sessions() as session:
        rows = {r.queue: r for r in await session.scalars(select(QueueState))}
    return {c.value: rows.get(c.value) for c in Channel}
