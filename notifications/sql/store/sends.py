"""A notification's own writes: its row, each send attempt's start and end, the mirror of the workflow's view.

On PostgreSQL the per-send ones run as single statements through asyncpg (`notifications.sql.pg`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from notifications.preferences import SEND, Action, Subjects, Verdict, decide, gate_keys
from notifications.recipients import address_of
from notifications.sql import pg, rows
from notifications.sql.dialect import insert_ignore, insert_ignore_statement, insert_ignore_sync
from notifications.sql.engine import Database
from notifications.sql.models import DeliveryAttempt, Notification, OutboxMessage, utcnow
from notifications.sql.rows import input_row
from notifications.sql.statements import (
    ATTEMPT_KEY,
    ATTEMPT_ROW,
    INTERRUPT_OPEN_ATTEMPTS,
    LIVE_ROW,
    PENDING_EVENTS,
    PREFERENCE_DOCUMENTS,
    QUEUE_PAUSED,
    SENT_STATUSES,
    SUPPRESSED_BY,
    TERMINAL,
    attempt_probe,
)
from notifications.sql.store.events import apply_pending
from notifications.types import LoggedAttempt, NotificationInput, Status, StatusUpdate


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
    verdict: Verdict | None = None  # not opened: its user's preferences stop or defer it


async def begin_attempt(
    db: Database, inp: NotificationInput, run_id: str, min_attempt: int, *, after_resume: bool = False
) -> AttemptStart | None:
    """Open a send attempt; None when the channel's queue is paused (nothing written).

    The attempt number is the larger of Temporal's count and the attempts already
    recorded for this run, so attempts survive a pause (a new activity restarts
    Temporal's count at 1) and a crashed attempt is never reused. The preferences of
    its user are evaluated here, when it is due: one that stops or defers it comes
    back with its `verdict`, and nothing is written. Four Core statements on the
    common path, one transaction per send: row and queue flag read together (the row
    locked on PostgreSQL), the preferences, the attempt row, the row update.
    """
    pool = await db.hot_pool()
    if pool is not None:
        subjects = Subjects.of(inp.tenant, inp.userId, inp.channel, inp.to)
        keys = pg.PreferenceKeys(
            subjects.tenant,
            subjects.keys(),
            [] if inp.critical else gate_keys(inp.channel, inp.type),
            address=address_of(inp.channel, inp.to, inp.token),
            critical=inp.critical,
        )
        now = utcnow()
        for _ in range(_PREFERENCE_TRIES):
            found = await pg.begin_attempt(
                pool, inp.notificationId, inp.channel, run_id, min_attempt, after_resume, now, keys
            )
            if found is None:  # no row yet: the general path creates it
                break
            if found["action"] != "check_prefs":
                return _attempt_start(found, min_attempt)
            verdict = _verdict(inp, subjects, json.loads(found["documents"]), now)
            if not verdict.sends:
                return AttemptStart(attempt=min_attempt, verdict=verdict)
            keys.stamp = found["stamp"]  # open it, if these are still the documents stored
    return await db.run(_begin_attempt, inp, run_id, min_attempt, after_resume)


# Preferences that change between two tries each time: the general path decides under its lock.
_PREFERENCE_TRIES = 3


def _verdict(inp: NotificationInput, subjects: Subjects, documents: dict[str, Any], now: datetime) -> Verdict:
    return decide(documents, subjects, channel=inp.channel, type_=inp.type, critical=inp.critical, now=now)


def _read_verdict(conn: Connection, inp: NotificationInput) -> Verdict:
    subjects = Subjects.of(inp.tenant, inp.userId, inp.channel, inp.to)
    address = address_of(inp.channel, inp.to, inp.token)
    if address is not None:
        keys = {"b_tenant": subjects.tenant, "b_channel": inp.channel, "b_address": address}
        reason = conn.execute(SUPPRESSED_BY, keys).scalar()
        if reason is not None and not (inp.critical and reason == "unsubscribe"):
            return Verdict(Action.SUPPRESSED, rule=reason)
    if inp.critical:
        return SEND
    found = conn.execute(PREFERENCE_DOCUMENTS, {"b_tenant": subjects.tenant, "b_subjects": subjects.keys()})
    return _verdict(inp, subjects, {subject: document for subject, document in found}, utcnow())


def _attempt_start(row: Any, min_attempt: int) -> AttemptStart | None:
    """What PostgreSQL's attempt start (`pg.BEGIN_ATTEMPT`) decided, as `_begin_attempt` answers it."""
    action = row["action"]
    if action == "queue_paused":
        return None
    if action == "paused":
        return AttemptStart(attempt=min_attempt, paused=True)
    if action == "suppressed":
        return AttemptStart(attempt=min_attempt, verdict=Verdict(Action.SUPPRESSED, rule=row["suppressed_by"]))
    if action == "sent":
        sent = SentBefore(row["attempts"], row["provider"], row["provider_message_id"], row["completed_at"])
        return AttemptStart(attempt=row["attempts"], already_sent=sent)
    return AttemptStart(attempt=row["attempt"])


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
    if row.status in SENT_STATUSES:
        sent = SentBefore(row.attempts, row.provider, row.provider_message_id, row.completed_at)
        return AttemptStart(attempt=row.attempts, already_sent=sent)
    verdict = _read_verdict(conn, inp)
    if not verdict.sends:
        return AttemptStart(attempt=min_attempt, verdict=verdict)
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
    pool = await db.hot_pool()
    if pool is None:
        await db.run(_finish_attempt, attempt_row, values)
    elif await pg.finish_attempt(pool, attempt_row, values):  # webhook events about it came first
        await db.run(apply_pending, values["provider_message_id"])


def _finish_attempt(conn: Connection, attempt_row: dict[str, Any], values: dict[str, Any]) -> None:
    conn.execute(ATTEMPT_ROW, attempt_row)
    conn.execute(LIVE_ROW, values)
    if (
        values.get("provider_message_id")
        and conn.execute(PENDING_EVENTS, {"b_message": values["provider_message_id"]}).first()
    ):
        apply_pending(conn, values["provider_message_id"])


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
            # attempt that raced a successful one; never from 'cancelled', nor back from what the
            # provider's webhooks said later (delivered, bounced).
            guard = Notification.status.not_in((Status.CANCELLED.value, *SENT_STATUSES))
        await session.execute(update(Notification).where(Notification.id == inp.notificationId, guard).values(**values))
        if status == Status.SENT and upd.providerMessageId:
            message = upd.providerMessageId
            await session.run_sync(lambda sync: apply_pending(sync.connection(), message))
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


async def insert_row(db: Database, values: dict[str, Any], linger_s: float = 0.0) -> bool:
    """A new notification's row; False when it was there already. On PostgreSQL a row that finds no
    INSERT in flight waits up to `linger_s` (or until `release_held`) for others to share one."""
    return await _insert_ignore(db, Notification, values, ("id",), linger_s)


def release_held(db: Database) -> None:
    """The rows `insert_row` holds go now: no other can come."""
    if db.pg is not None:
        db.pg.batches.release_held()


async def link_fallback(db: Database, notification_id: str, fallback_id: str) -> None:
    """Name a push's fallback email on the push's row (the email's row names the push at insert)."""
    async with db.connection() as conn:
        await conn.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(fallback_id=fallback_id, updated_at=utcnow())
        )


async def record_outbox(db: Database, values: dict[str, Any]) -> None:
    """Keyed by the notification ID: a repeated attempt records nothing new."""
    await _insert_ignore(db, OutboxMessage, values, ("notification_id",))


async def record_outbox_many(db: Database, values: list[dict[str, Any]]) -> int:
    """Many outbox records in ONE insert, keyed by notification ID like `record_outbox`: a record
    whose notification is there already is skipped. How many were new. Every row has the same keys."""
    if not values:
        return 0
    return await db.run(_insert_outbox_rows, values)


def _insert_outbox_rows(conn: Connection, values: list[dict[str, Any]]) -> int:
    now = utcnow()
    # One statement built once, the rows as executemany parameters: a multi-row VALUES would be
    # compiled afresh for every batch. ON CONFLICT (notification_id) DO NOTHING on both databases,
    # as `record_outbox` (unlike INSERT OR IGNORE it still refuses a row breaking another constraint).
    stmt = insert_ignore_statement(conn.dialect.name, OutboxMessage.__table__, ("notification_id",))
    return max(int(conn.execute(stmt, [{"created_at": now, **v} for v in values]).rowcount or 0), 0)


async def _insert_ignore(
    db: Database, model: type[Any], values: dict[str, Any], conflict: tuple[str, ...], linger_s: float = 0.0
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING as its own transaction, on the hot path where there is one."""
    pool = await db.hot_pool()
    if pool is not None:
        assert db.pg is not None
        return await db.pg.batches.insert_ignore(pool, model.__table__, values, conflict, linger_s)
    return await db.run(insert_ignore_sync, model, values, list(conflict))
