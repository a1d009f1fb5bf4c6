"""Every write to the SQL mirror, in one place.

The rules that keep the mirror honest under retries, crashes and replays:
- a notification row is created from the workflow input if it is missing (a
  workflow started by hand from the `temporal` CLI still gets its row);
- a terminal status (sent, failed, cancelled) is never overwritten by a
  non-terminal one, so a late or repeated write cannot move a row backwards;
- one delivery-log row per (notification, run, attempt), upserted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from notifications.db import Database
from notifications.models import DeliveryAttempt, Notification, QueueState, utcnow
from notifications.sql import insert_ignore, insert_ignore_sync
from notifications.types import (
    TERMINAL_STATUSES,
    Channel,
    DeliveryPolicy,
    LoggedAttempt,
    NotificationInput,
    Status,
    StatusUpdate,
    workflow_id_for,
)

_TERMINAL = [s.value for s in TERMINAL_STATUSES]

# The per-send statements, built once: a statement built per call costs SQLAlchemy a fresh
# cache-key walk of its values (docs/decisions/0009).
# The SET clause comes from the parameters given at execution; WHERE values are `b_*`.
_ATTEMPT_ROW = update(DeliveryAttempt).where(
    DeliveryAttempt.notification_id == bindparam("b_id"),
    DeliveryAttempt.run_id == bindparam("b_run"),
    DeliveryAttempt.attempt == bindparam("b_attempt"),
)
_LIVE_ROW = update(Notification).where(Notification.id == bindparam("b_id"), Notification.status.not_in(_TERMINAL))


def row_values(inp: NotificationInput, status: Status, now: datetime | None = None) -> dict[str, Any]:
    """The notifications row for a workflow input."""
    if inp.channel == Channel.EMAIL:
        recipient, subject = inp.to, inp.subject
        content: dict[str, Any] = {"html": inp.html, "text": inp.text}
    else:
        recipient, subject = inp.token, inp.title
        content = {"message": inp.message, "data": inp.data or {}}
    now = now or utcnow()
    return {
        "id": inp.notificationId,
        "tenant": inp.tenant,
        "channel": inp.channel,
        "type": inp.type,
        "status": status.value,
        "priority": inp.priority,
        "user_id": inp.userId,
        "recipient": recipient,
        "subject": subject,
        "content": content,
        "attempts": 0,
        "paused": False,
        "workflow_id": workflow_id_for(inp.notificationId),
        "created_at": now,
        "updated_at": now,
    }


def input_from_row(row: Notification, policy: DeliveryPolicy) -> NotificationInput:
    """Rebuild a workflow input from the SQL record (manual retry of a failed notification)."""
    content = row.content or {}
    email = row.channel == Channel.EMAIL
    return NotificationInput(
        notificationId=row.id,
        channel=row.channel,
        priority=row.priority,
        type=row.type,
        userId=row.user_id,
        tenant=row.tenant,
        to=row.recipient if email else None,
        subject=row.subject if email else None,
        html=content.get("html"),
        text=content.get("text"),
        title=None if email else row.subject,
        message=content.get("message"),
        token=None if email else row.recipient,
        data=content.get("data"),
        policy=policy,
    )


def _input_row(inp: NotificationInput, status: Status = Status.QUEUED) -> dict[str, Any]:
    enqueued = datetime.fromisoformat(inp.enqueuedAt) if inp.enqueuedAt else None
    return row_values(inp, status, enqueued)


async def insert_notification(executor: AsyncSession | AsyncConnection, inp: NotificationInput, status: Status) -> bool:
    return await insert_ignore(executor, Notification, _input_row(inp, status), ["id"])


_QUEUE_PAUSED = select(QueueState.paused).where(QueueState.queue == bindparam("b_queue"))


async def is_queue_paused(executor: AsyncSession | AsyncConnection, channel: str) -> bool:
    return bool(await executor.scalar(_QUEUE_PAUSED, {"b_queue": channel}))


def is_queue_paused_sync(conn: Connection, channel: str) -> bool:
    """`is_queue_paused` inside a `Database.run` transaction."""
    return bool(conn.scalar(_QUEUE_PAUSED, {"b_queue": channel}))


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


@functools.cache
def _attempt_probe(*, lock: bool) -> Select[Any]:
    """The row's state and its queue's pause flag, in one round trip."""
    queue_paused = select(QueueState.paused).where(QueueState.queue == bindparam("b_queue")).scalar_subquery()
    probe = select(
        Notification.status,
        Notification.attempts,
        Notification.run_id,
        Notification.provider,
        Notification.provider_message_id,
        Notification.completed_at,
        Notification.paused,
        queue_paused.label("queue_paused"),
    ).where(Notification.id == bindparam("b_id"))
    return probe.with_for_update(of=Notification) if lock else probe


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
    probe = _attempt_probe(lock=conn.dialect.name != "sqlite")
    keys = {"b_id": inp.notificationId, "b_queue": inp.channel}
    row = conn.execute(probe, keys).first()
    if row is None:  # a workflow started without the client (e.g. from the temporal CLI)
        if is_queue_paused_sync(conn, inp.channel):
            return None
        insert_ignore_sync(conn, Notification, _input_row(inp), ["id"])
        row = conn.execute(probe, keys).first()
        assert row is not None
    if row.queue_paused:
        return None
    if row.paused and not after_resume and row.status not in _TERMINAL:
        return AttemptStart(attempt=min_attempt, paused=True)
    if row.status == Status.SENT:
        sent = SentBefore(row.attempts, row.provider, row.provider_message_id, row.completed_at)
        return AttemptStart(attempt=row.attempts, already_sent=sent)
    # `attempts` counts this run's attempts (a manual retry starts a new run at 0).
    prior = row.attempts if row.run_id == run_id else 0
    attempt = max(min_attempt, prior + 1)
    now = utcnow()
    if prior:
        # An attempt still in progress from a worker that died is closed as interrupted.
        conn.execute(
            update(DeliveryAttempt)
            .where(
                DeliveryAttempt.notification_id == inp.notificationId,
                DeliveryAttempt.run_id == run_id,
                DeliveryAttempt.outcome == "in_progress",
            )
            .values(
                outcome="interrupted",
                finished_at=now,
                error_code="WORKER_LOST",
                error_message="the worker running this attempt stopped before it finished",
            )
        )
    insert_ignore_sync(
        conn,
        DeliveryAttempt,
        {
            "notification_id": inp.notificationId,
            "run_id": run_id,
            "attempt": attempt,
            "started_at": now,
            "outcome": "in_progress",
            "details": {},
        },
        ["notification_id", "run_id", "attempt"],
    )
    if row.status not in _TERMINAL:
        conn.execute(
            _LIVE_ROW,
            {
                "b_id": inp.notificationId,
                "status": Status.RETRYING.value,
                "attempts": attempt,
                "last_attempt_at": now,
                "next_retry_at": None,
                "paused": False,
                "run_id": run_id,
                "updated_at": now,
            },
        )
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
    now = utcnow()
    attempt_row = {
        "b_id": notification_id,
        "b_run": run_id,
        "b_attempt": attempt,
        "outcome": outcome,
        "finished_at": now,
        "provider": provider,
        "provider_message_id": provider_message_id,
        "error_code": error_code,
        "error_message": error_message,
        "details": details or {},
    }
    values: dict[str, Any] = {
        "b_id": notification_id,
        "status": status.value,
        "attempts": attempt,
        "last_attempt_at": now,
        "updated_at": now,
        "next_retry_at": next_retry_at,
    }
    if status == Status.SENT:
        values.update(
            paused=False,  # a pause that came while this send was in flight has nothing left to hold
            provider=provider,
            provider_message_id=provider_message_id,
            completed_at=now,
            error_code=None,
            error_message=None,
        )
    else:
        values.update(error_code=error_code, error_message=error_message, provider=provider)
        if status == Status.FAILED:
            values.update(completed_at=now, paused=False)
    await db.run(_finish_attempt, attempt_row, values)


def _finish_attempt(conn: Connection, attempt_row: dict[str, Any], values: dict[str, Any]) -> None:
    conn.execute(_ATTEMPT_ROW, attempt_row)
    conn.execute(_LIVE_ROW, values)


async def record_status(db: Database, upd: StatusUpdate, run_id: str | None = None) -> None:
    """The workflow's view of a notification, written to its row (idempotent)."""
    inp = upd.notification
    status = Status(upd.status)
    async with db.transaction() as session:
        await insert_notification(session, inp, Status.QUEUED)
        values: dict[str, Any] = {"updated_at": utcnow(), "paused": upd.paused}
        if upd.attempts:
            values["attempts"] = upd.attempts
        if run_id:
            values["run_id"] = run_id
        for column, value in (
            ("error_code", upd.errorCode),
            ("error_message", upd.errorMessage),
            ("provider", upd.provider),
            ("provider_message_id", upd.providerMessageId),
            ("last_attempt_at", _parse(upd.lastAttemptAt)),
            ("completed_at", _parse(upd.completedAt)),
        ):
            if value is not None:
                values[column] = value
        values["next_retry_at"] = _parse(upd.nextRetryAt)
        values["status"] = status.value
        guard: ColumnElement[bool] = Notification.status.not_in(_TERMINAL)
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
            await session.execute(
                update(DeliveryAttempt)
                .where(
                    DeliveryAttempt.notification_id == inp.notificationId,
                    DeliveryAttempt.run_id == run_id,
                    DeliveryAttempt.attempt == upd.attempts,
                    DeliveryAttempt.outcome == "in_progress",
                )
                .values(
                    outcome="sent" if status == Status.SENT else "permanent_error",
                    finished_at=_parse(upd.completedAt) or utcnow(),
                    provider=upd.provider,
                    provider_message_id=upd.providerMessageId,
                    error_code=upd.errorCode,
                    error_message=upd.errorMessage,
                )
            )


async def _write_logged_attempt(session: AsyncSession, notification_id: str, run_id: str, entry: LoggedAttempt) -> None:
    """A delivery-log row as the workflow knows it: created if the send could not open it, closed if
    it was left open (or guessed interrupted by a later attempt); a row that has its outcome stays."""
    values: dict[str, Any] = {
        "outcome": entry.outcome,
        "finished_at": _parse(entry.finishedAt),
        "provider": entry.provider,
        "provider_message_id": entry.providerMessageId,
        "error_code": entry.errorCode,
        "error_message": entry.errorMessage,
        "details": entry.details or {},
    }
    key = {"notification_id": notification_id, "run_id": run_id, "attempt": entry.attempt}
    await insert_ignore(
        session,
        DeliveryAttempt,
        {**key, "started_at": _parse(entry.startedAt), **values},
        ["notification_id", "run_id", "attempt"],
    )
    await session.execute(
        update(DeliveryAttempt)
        .where(
            DeliveryAttempt.notification_id == notification_id,
            DeliveryAttempt.run_id == run_id,
            DeliveryAttempt.attempt == entry.attempt,
            DeliveryAttempt.outcome.in_(("in_progress", "interrupted")),
        )
        .values(**values)
    )


async def set_paused(db: Database, notification_id: str, paused: bool) -> None:
    """Flag a pause where the send checks it, before the workflow sees the signal (see worker.py)."""
    async with db.connection() as conn:
        await conn.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.status.not_in(_TERMINAL))
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


async def queue_states(db: Database) -> dict[str, QueueState | None]:
    async with db.sessions() as session:
        rows = {r.queue: r for r in await session.scalars(select(QueueState))}
    return {c.value: rows.get(c.value) for c in Channel}


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
