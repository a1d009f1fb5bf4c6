"""Between the contracts and the SQL rows: a workflow input as a notifications row, and back."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from notifications.schemas import as_utc
from notifications.sql.models import Notification, utcnow
from notifications.types import (
    Channel,
    DeliveryPolicy,
    FallbackEmail,
    LoggedAttempt,
    NotificationInput,
    Status,
    StatusUpdate,
    workflow_id_for,
)


def row_values(inp: NotificationInput, status: Status, now: datetime | None = None) -> dict[str, Any]:
    """The notifications row for a workflow input."""
    if inp.channel == Channel.EMAIL:
        recipient, subject = inp.to, inp.subject
        content: dict[str, Any] = {"html": inp.html, "text": inp.text}
    else:
        recipient, subject = inp.token, inp.title
        content = {"message": inp.message, "data": inp.data or {}}
        if inp.fallback is not None:  # kept for a manual retry, which rebuilds the input from the row
            content["fallback"] = asdict(inp.fallback)
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
        "send_at": parse_time(inp.sendAt),
        "expires_at": parse_time(inp.expiresAt),
        "critical": inp.critical,
        "fallback_of": inp.fallbackOf,
        "created_at": now,
        "updated_at": now,
    }


def as_row(values: dict[str, Any]) -> SimpleNamespace:
    """Row values read like a row (`NotificationRecord.from_row`) without building an ORM object;
    the columns they lack read as None."""
    return SimpleNamespace(**{**_NO_VALUES, **values})


_NO_VALUES: dict[str, Any] = {column.key: None for column in Notification.__table__.columns}


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
        # A retry keeps the notification's expiry (past it, the new run ends `expired` at once).
        expiresAt=as_utc(row.expires_at).isoformat() if row.expires_at else None,
        critical=bool(row.critical),
        fallback=FallbackEmail(**content["fallback"]) if content.get("fallback") else None,
        fallbackOf=getattr(row, "fallback_of", None),  # a campaign's claimed rows carry fewer columns
    )


def input_row(inp: NotificationInput, status: Status = Status.QUEUED) -> dict[str, Any]:
    """The row for a workflow input, as of its enqueue."""
    enqueued = datetime.fromisoformat(inp.enqueuedAt) if inp.enqueuedAt else None
    return row_values(inp, status, enqueued)


# -- the delivery log and the row's live columns, per step of an attempt -----------------------------
def opened(notification_id: str, run_id: str, attempt: int, now: datetime) -> dict[str, Any]:
    return {
        "notification_id": notification_id,
        "run_id": run_id,
        "attempt": attempt,
        "started_at": now,
        "outcome": "in_progress",
        "details": {},
    }


def interrupted(notification_id: str, run_id: str, now: datetime) -> dict[str, Any]:
    return {
        "b_id": notification_id,
        "b_run": run_id,
        "outcome": "interrupted",
        "finished_at": now,
        "error_code": "WORKER_LOST",
        "error_message": "the worker running this attempt stopped before it finished",
    }


def attempt_started(notification_id: str, run_id: str, attempt: int, now: datetime) -> dict[str, Any]:
    return {
        "b_id": notification_id,
        "status": Status.RETRYING.value,
        "attempts": attempt,
        "last_attempt_at": now,
        "next_retry_at": None,
        "paused": False,
        "run_id": run_id,
        "updated_at": now,
    }


def finished(
    notification_id: str,
    run_id: str,
    attempt: int,
    *,
    outcome: str,
    status: Status,
    provider: str | None,
    provider_message_id: str | None,
    error_code: str | None,
    error_message: str | None,
    next_retry_at: datetime | None,
    details: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attempt's closing values and the row's, for the statements ATTEMPT_ROW and LIVE_ROW."""
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
    return attempt_row, values


def mirrored(upd: StatusUpdate, run_id: str | None) -> dict[str, Any]:
    """The row's columns from the workflow's view; what the workflow does not know stays as it is."""
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
        ("last_attempt_at", parse_time(upd.lastAttemptAt)),
        ("completed_at", parse_time(upd.completedAt)),
    ):
        if value is not None:
            values[column] = value
    values["next_retry_at"] = parse_time(upd.nextRetryAt)
    if upd.sendAt is not None:
        values["send_at"] = parse_time(upd.sendAt)
    values["deferred_reason"] = upd.deferredReason
    values["status"] = upd.status
    return values


def closed_by_mirror(upd: StatusUpdate) -> dict[str, Any]:
    return {
        "outcome": "sent" if upd.status == Status.SENT else "permanent_error",
        "finished_at": parse_time(upd.completedAt) or utcnow(),
        "provider": upd.provider,
        "provider_message_id": upd.providerMessageId,
        "error_code": upd.errorCode,
        "error_message": upd.errorMessage,
    }


def logged(entry: LoggedAttempt) -> dict[str, Any]:
    return {
        "started_at": parse_time(entry.startedAt),
        "outcome": entry.outcome,
        "finished_at": parse_time(entry.finishedAt),
        "provider": entry.provider,
        "provider_message_id": entry.providerMessageId,
        "error_code": entry.errorCode,
        "error_message": entry.errorMessage,
        "details": entry.details or {},
    }


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
