"""Every write to the SQL mirror, in one place.

The rules that keep the mirror honest under retries, crashes and replays:
- a notification row is created from the workflow input if it is missing (a
  workflow started by hand from the `temporal` CLI still gets its row);
- a terminal status (sent, failed, cancelled) is never overwritten by a
  non-terminal one, so a late or repeated write cannot move a row backwards;
- one delivery-log row per (notification, run, attempt), upserted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from notifications.errors import NotificationConflictError, NotificationNotFoundError
from notifications.redact import mask_token
from notifications.sql import rows
from notifications.sql.dialect import insert_ignore, insert_ignore_sync
from notifications.sql.engine import Database
from notifications.sql.models import (
    AuditLog,
    DeliveryAttempt,
    Device,
    Notification,
    OutboxMessage,
    ProviderState,
    QueueState,
    utcnow,
)
from notifications.sql.rows import input_from_row, input_row
from notifications.sql.statements import (
    ATTEMPT_KEY,
    ATTEMPT_ROW,
    INTERRUPT_OPEN_ATTEMPTS,
    LIVE_ROW,
    QUEUE_PAUSED,
    TERMINAL,
    attempt_probe,
)
from notifications.types import (
    DeliveryPolicy,
    LoggedAttempt,
    NotificationInput,
    Status,
    StatusUpdate,
)


async def insert_notification(executor: AsyncSession | AsyncConnection, inp: NotificationInput, status: Status) -> bool:
    return await insert_ignore(executor, Notification, input_row(inp, status), ["id"])


def _is_queue_paused(conn: Connection, channel: str) -> bool:
    return bool(conn.scalar(QUEUE_PAUSED, {"b_queue": channel}))


@dataclass
class SentBefore:
    """What a run that already delivered this notification recorded (a replayed or repeated send)."""

    attempts: int
    provider: str | None
    provider_message_id: str | None
    completed_at: datetime | None


@dataclass
class AttemptStart:
    attempt: int
    already_sent: SentBefore | None = None
    paused: bool = False  # paused through the client; the workflow has not seen the signal yet


async def begin_attempt(
    db: Database, inp: NotificationInput, run_id: str, min_attempt: int, *, after_resume: bool = False
) -> AttemptStart | None:
    """Open a send attempt; None when the channel's queue is paused (nothing written).

    The attempt number is the larger of Temporal's count and the attempts already
    recorded for this run, so attempts survive a pause (a new activity restarts
    Temporal's count at 1) and a crashed attempt is never reused. Three Core
    statements on the common path, one transaction per send: row and queue
    flag read together (the row locked on PostgreSQL), the attempt row, the row update.
    """
    return await db.run(_begin_attempt, inp, run_id, min_attempt, after_resume)


def _begin_attempt(
    conn: Connection, inp: NotificationInput, run_id: str, min_attempt: int, after_resume: bool
) -> AttemptStart | None:
    # PostgreSQL locks the row; SQLite's BEGIN IMMEDIATE (Database.run) already holds the write lock.
    probe = attempt_probe(lock=conn.dialect.name != "sqlite")
    keys = {"b_id": inp.notificationId, "b_queue": inp.channel}
    row = conn.execute(probe, keys).first()
    if row is None:  # a workflow started without the client (e.g. from the temporal CLI)
        if _is_queue_paused(conn, inp.channel):
            return None
        insert_ignore_sync(conn, Notification, input_row(inp), ["id"])
        row = conn.execute(probe, keys).first()
        assert row is not None
    if row.queue_paused:
        return None
    if row.paused and not after_resume and row.status not in TERMINAL:
        return AttemptStart(attempt=min_attempt, paused=True)
    if row.status == Status.SENT:
        sent = SentBefore(row.attempts, row.provider, row.provider_message_id, row.completed_at)
        return AttemptStart(attempt=row.attempts, already_sent=sent)
    # `attempts` counts this run's attempts (a manual retry starts a new run at 0).
    prior = row.attempts if row.run_id == run_id else 0
    attempt = max(min_attempt, prior + 1)
    now = utcnow()
    if prior:  # an attempt still in progress from a worker that died is closed as interrupted
        conn.execute(INTERRUPT_OPEN_ATTEMPTS, rows.interrupted(inp.notificationId, run_id, now))
    insert_ignore_sync(conn, DeliveryAttempt, rows.opened(inp.notificationId, run_id, attempt, now), ATTEMPT_KEY)
    if row.status not in TERMINAL:
        conn.execute(LIVE_ROW, rows.attempt_started(inp.notificationId, run_id, attempt, now))
    return AttemptStart(attempt=attempt)


async def finish_attempt(
    db: Database,
    notification_id: str,
    run_id: str,
    attempt: int,
    *,
    outcome: str,
    status: Status,
    provider: str | None = None,
    provider_message_id: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    next_retry_at: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    attempt_row, values = rows.finished(
        notification_id,
        run_id,
        attempt,
        outcome=outcome,
        status=status,
        provider=provider,
        provider_message_id=provider_message_id,
        error_code=error_code,
        error_message=error_message,
        next_retry_at=next_retry_at,
        details=details,
    )
    await db.run(_finish_attempt, attempt_row, values)


def _finish_attempt(conn: Connection, attempt_row: dict[str, Any], values: dict[str, Any]) -> None:
    conn.execute(ATTEMPT_ROW, attempt_row)
    conn.execute(LIVE_ROW, values)


async def record_status(db: Database, upd: StatusUpdate, run_id: str | None = None) -> None:
    """The workflow's view of a notification, written to its row (idempotent)."""
    inp = upd.notification
    status = Status(upd.status)
    async with db.transaction() as session:
        await insert_notification(session, inp, Status.QUEUED)
        values = rows.mirrored(upd, run_id)
        guard: ColumnElement[bool] = Notification.status.not_in(TERMINAL)
        if status == Status.SENT:
            # sent is the one terminal state a row may still reach from 'failed' written by an
            # attempt that raced a successful one; never from 'cancelled'.
            guard = Notification.status != Status.CANCELLED.value
        await session.execute(update(Notification).where(Notification.id == inp.notificationId, guard).values(**values))
        if run_id:
            for entry in upd.attemptLog:
                await _write_logged_attempt(session, inp.notificationId, run_id, entry)
        if run_id and upd.attempts and status in (Status.SENT, Status.FAILED):
            # The attempt whose own closing write was lost (database down) is closed here.
            await _close_attempt(session, inp.notificationId, run_id, upd.attempts, rows.closed_by_mirror(upd))


async def _write_logged_attempt(session: AsyncSession, notification_id: str, run_id: str, entry: LoggedAttempt) -> None:
    """A delivery-log row as the workflow knows it: created if the send could not open it, closed if
    it was left open (or guessed interrupted by a later attempt); a row that has its outcome stays."""
    values = rows.logged(entry)
    row = {"notification_id": notification_id, "run_id": run_id, "attempt": entry.attempt, **values}
    del values["started_at"]  # the closing update keeps the row's own start
    await insert_ignore(session, DeliveryAttempt, row, ATTEMPT_KEY)
    await _close_attempt(session, notification_id, run_id, entry.attempt, values, also=("interrupted",))


async def _close_attempt(
    session: AsyncSession,
    notification_id: str,
    run_id: str,
    attempt: int,
    values: dict[str, Any],
    also: tuple[str, ...] = (),
) -> None:
    await session.execute(
        update(DeliveryAttempt)
        .where(
            DeliveryAttempt.notification_id == notification_id,
            DeliveryAttempt.run_id == run_id,
            DeliveryAttempt.attempt == attempt,
            DeliveryAttempt.outcome.in_(("in_progress", *also)),
        )
        .values(**values)
    )


async def set_paused(db: Database, notification_id: str, paused: bool) -> None:
    """Flag a pause where the send checks it, before the workflow sees the signal (see worker.py)."""
    async with db.connection() as conn:
        await conn.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.status.not_in(TERMINAL))
            .values(paused=paused, updated_at=utcnow())
        )


async def set_queue_paused(db: Database, queue: str, paused: bool, *, reason: str | None, actor: str | None) -> None:
    async with db.transaction() as session:
        await insert_ignore(
            session,
            QueueState,
            {"queue": queue, "paused": paused, "reason": reason, "updated_by": actor, "updated_at": utcnow()},
            ["queue"],
        )
        await session.execute(
            update(QueueState)
            .where(QueueState.queue == queue)
            .values(paused=paused, reason=reason, updated_by=actor, updated_at=utcnow())
        )


# -- the client's writes -------------------------------------------------------------------------
def insert_row(conn: Connection, values: dict[str, Any]) -> bool:
    """A new notification's row, in a `Database.run` transaction; False when it was there already."""
    return insert_ignore_sync(conn, Notification, values, ["id"])


async def claim_for_retry(db: Database, notification_id: str, policy: DeliveryPolicy) -> NotificationInput:
    """Reset a failed notification to `pending` for a new run; its input rebuilt from the row.

    Only one caller wins the claim: the status test is in the UPDATE itself.
    """
    async with db.transaction() as session:
        row = await session.get(Notification, notification_id)
        if row is None:
            raise NotificationNotFoundError(f"no notification with ID {notification_id!r}")
        if row.status != Status.FAILED.value:
            raise NotificationConflictError(
                f"only failed notifications can be retried; {notification_id} is {row.status}"
            )
        inp = input_from_row(row, policy)
        inp.startPaused = bool(await session.scalar(QUEUE_PAUSED, {"b_queue": row.channel}))
        claimed = await session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.status == Status.FAILED.value)
            .values(
                status=Status.PENDING.value,
                attempts=0,
                error_code=None,
                error_message=None,
                next_retry_at=None,
                completed_at=None,
                paused=False,
                updated_at=utcnow(),
            )
        )
        if not getattr(claimed, "rowcount", 0):
            raise NotificationConflictError(f"notification {notification_id} is being retried already")
    return inp


async def end_retry_claim(db: Database, notification_id: str, *, run_id: str | None) -> None:
    """The claimed row becomes `queued` on its new run, or `failed` again when no run started."""
    values: dict[str, Any] = (
        {"status": Status.QUEUED.value, "run_id": run_id, "updated_at": utcnow()}
        if run_id
        else {"status": Status.FAILED.value}
    )
    async with db.transaction() as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.status == Status.PENDING.value)
            .values(**values)
        )


# -- devices -------------------------------------------------------------------------------------
async def upsert_device(db: Database, user_id: str, token: str, *, platform: str | None, tenant: str | None) -> Device:
    """The same token again updates its owner and platform; an invalidated one is refused."""
    async with db.transaction() as session:
        row = await session.scalar(select(Device).where(Device.token == token))
        if row is None:
            row = Device(
                user_id=user_id, token=token, platform=platform, tenant=tenant, valid=True, created_at=utcnow()
            )
            session.add(row)
        elif not row.valid:
            raise NotificationConflictError(
                f"device token {mask_token(token)} was invalidated ({row.invalid_reason}) and cannot be reused; "
                "the app must obtain a new token"
            )
        else:
            row.user_id = user_id
            row.platform = platform if platform is not None else row.platform
            row.tenant = tenant if tenant is not None else row.tenant
        await session.flush()
        return row


async def delete_device(db: Database, *, token: str | None, device_id: int | None) -> bool:
    condition = Device.token == token if token is not None else Device.id == device_id
    async with db.transaction() as session:
        result = await session.execute(delete(Device).where(condition))
        return bool(getattr(result, "rowcount", 0))


async def mark_devices(db: Database, tokens: list[str], *, invalid_reason: str | None = None) -> None:
    """Tokens just used for a send, or (with a reason) ones FCM no longer knows."""
    if not tokens:
        return
    now = utcnow()
    stmt = update(Device).where(Device.token.in_(tokens))
    if invalid_reason is None:
        stmt = stmt.values(last_used_at=now)
    else:
        stmt = stmt.where(Device.valid.is_(True)).values(valid=False, invalid_reason=invalid_reason, invalidated_at=now)
    async with db.transaction() as session:
        await session.execute(stmt)


# -- providers: the outbox's messages and each channel's health ---------------------------------
async def record_outbox(db: Database, values: dict[str, Any]) -> None:
    """Keyed by the notification ID: a repeated attempt records nothing new."""
    await db.run(insert_ignore_sync, OutboxMessage, values, ["notification_id"])


async def record_provider_state(db: Database, channel: str, values: dict[str, Any]) -> None:
    async with db.transaction() as session:
        inserted = await insert_ignore(session, ProviderState, {"channel": channel, **values}, ["channel"])
        if not inserted:
            await session.execute(update(ProviderState).where(ProviderState.channel == channel).values(**values))


# -- audit and retention ---------------------------------------------------------------------------
async def write_audit(
    db: Database,
    *,
    actor: str,
    tenant: str | None,
    action: str,
    target: str | None,
    outcome: str,
    details: dict[str, Any] | None = None,
) -> None:
    async with db.transaction() as session:
        session.add(
            AuditLog(
                at=utcnow(),
                actor=actor[:128],
                tenant=tenant,
                action=action[:64],
                target=(target or None) and target[:256],
                outcome=outcome[:32],
                details=details or {},
            )
        )


async def purge_finished(db: Database, statuses: list[str], cutoff: datetime, limit: int) -> tuple[int, int, int]:
    """Delete up to `limit` notifications finished before `cutoff`, with their log and outbox rows.

    Returns how many notifications, delivery attempts and outbox messages went; 0 notifications
    means nothing is left to purge.
    """
    async with db.transaction() as session:
        ids = list(
            await session.scalars(
                select(Notification.id)
                .where(Notification.status.in_(statuses), Notification.completed_at < cutoff)
                .limit(limit)
            )
        )
        if not ids:
            return 0, 0, 0
        attempts = await session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.notification_id.in_(ids)))
        outbox = await session.execute(delete(OutboxMessage).where(OutboxMessage.notification_id.in_(ids)))
        await session.execute(delete(Notification).where(Notification.id.in_(ids)))
    return len(ids), getattr(attempts, "rowcount", 0) or 0, getattr(outbox, "rowcount", 0) or 0
