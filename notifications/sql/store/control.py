"""Operators' writes: a notification's or a queue's pause flag, the claim of a failed notification for a retry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from notifications.errors import NotificationConflictError, NotificationNotFoundError
from notifications.sql.dialect import insert_ignore
from notifications.sql.engine import Database
from notifications.sql.models import Notification, QueueState, utcnow
from notifications.sql.rows import input_from_row
from notifications.sql.statements import QUEUE_PAUSED, TERMINAL
from notifications.types import DeliveryPolicy, NotificationInput, Status


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
