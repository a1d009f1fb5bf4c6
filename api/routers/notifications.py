"""Operators' view of notifications: list with filters, one with its log and live status, retry, cancel."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from api.deps import Admin, AuditDep, ClientDep, DbDep, SettingsDep, rate_limit, require_admin
from api.schemas import CancelResult, NotificationDetail, NotificationOut, NotificationPage
from notifications.client import NotificationClient
from notifications.errors import NotificationNotFoundError
from notifications.schemas import ID_PATTERN, NAME_PATTERN, NotificationRecord, Reschedule
from notifications.sql import queries
from notifications.types import TERMINAL_STATUSES, Status

router = APIRouter(prefix="/api/admin/notifications", tags=["notifications"], dependencies=[Depends(require_admin)])

NotificationId = Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]
StatusName = Literal[
    "pending", "scheduled", "queued", "retrying", "sent", "failed", "cancelled", "expired", "suppressed"
]
ChannelName = Literal["email", "push"]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=512)]
_LIMITED = [Depends(rate_limit)]


def record_json(row: Any) -> dict[str, Any]:
    return NotificationRecord.from_row(row).to_json()


async def owned(db: Any, notification_id: str, tenant: str | None) -> Any:
    """The row, or 404 also when it belongs to another tenant (a scoped token cannot probe IDs)."""
    row = await queries.get_notification(db, notification_id, tenant)
    if row is None:
        raise NotificationNotFoundError(f"no notification with ID {notification_id!r}")
    return row


@router.get("", response_model=NotificationPage, name="notifications.list")
async def list_notifications(
    principal: Admin,
    db: DbDep,
    status: StatusName | None = None,
    channel: ChannelName | None = None,
    type: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    userId: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    campaignId: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Newest first; pass `nextCursor` back as `cursor` for the next page."""
    filt = queries.NotificationFilter(
        status=status,
        channel=channel,
        type=type,
        user_id=userId,
        tenant=principal.tenant,
        campaign_id=campaignId,
        since=since,
        until=until,
    )
    rows, next_cursor = await queries.list_notifications(db, filt, limit=limit, cursor=cursor)
    return {"items": [record_json(r) for r in rows], "nextCursor": next_cursor}


@router.get("/{notification_id}", response_model=NotificationDetail, name="notifications.get")
async def get_notification(
    principal: Admin, client: ClientDep, settings: SettingsDep, notification_id: NotificationId
) -> dict[str, Any]:
    """The SQL record, its delivery log and the workflow's live `status` query."""
    row = await owned(client.db, notification_id, principal.tenant)
    log = [a.model_dump(mode="json", by_alias=True) for a in await client.delivery_log(notification_id)]
    events = [e.model_dump(mode="json", by_alias=True) for e in await client.delivery_events(notification_id)]
    workflow: dict[str, Any] | None = None
    error: str | None = None
    try:
        workflow = await asyncio.wait_for(client.status(notification_id), settings.api_check_timeout_seconds)
    except Exception as exc:  # the record and its log are still worth showing
        error = f"workflow status unavailable: {type(exc).__name__}"
    return {
        "notification": record_json(row),
        "deliveryLog": log,
        "events": events,
        "workflow": workflow,
        "workflowError": error,
    }


@router.post(
    "/{notification_id}/retry", response_model=NotificationOut, name="notifications.retry", dependencies=_LIMITED
)
async def retry(
    principal: Admin, client: ClientDep, audit: AuditDep, notification_id: NotificationId
) -> dict[str, Any]:
    """Re-run a failed notification: new Temporal run, same ID, fresh attempts (409 unless failed)."""
    async with audit() as details:
        await owned(client.db, notification_id, principal.tenant)
        record = await client.retry(notification_id)
        details["runId"] = record.run_id
    return record.to_json()


async def settled(client: NotificationClient, notification_id: str, wait: float) -> NotificationRecord:
    deadline = time.monotonic() + wait
    while True:
        record = await client.get(notification_id)
        if Status(record.status) in TERMINAL_STATUSES or time.monotonic() >= deadline:
            return record
        await asyncio.sleep(0.05)


@router.post(
    "/{notification_id}/cancel", response_model=CancelResult, name="notifications.cancel", dependencies=_LIMITED
)
async def cancel(
    principal: Admin, client: ClientDep, audit: AuditDep, settings: SettingsDep, notification_id: NotificationId
) -> dict[str, Any]:
    """Cancel a notification not sent yet: scheduled, held, queued or between retries.

    Synchronous: `cancelled: true` once it can no longer be sent. 409 when it is already sent,
    failed, cancelled or expired, or when a send in flight delivered it first.
    """
    async with audit() as details:
        await owned(client.db, notification_id, principal.tenant)
        await client.cancel(notification_id)
        record = await settled(client, notification_id, settings.api_check_timeout_seconds)
        details["status"] = record.status
    return {"notification": record.to_json(), "cancelled": record.status == Status.CANCELLED.value}


@router.post(
    "/{notification_id}/reschedule",
    response_model=NotificationOut,
    name="notifications.reschedule",
    dependencies=_LIMITED,
)
async def reschedule(
    principal: Admin, client: ClientDep, audit: AuditDep, notification_id: NotificationId, body: Reschedule
) -> dict[str, Any]:
    """Move a notification's `sendAt` before its first send attempt (409 once one has started)."""
    async with audit() as details:
        await owned(client.db, notification_id, principal.tenant)
        details["sendAt"] = body.sendAt.isoformat()
        record = await client.reschedule(notification_id, body.sendAt)
    return record.to_json()
