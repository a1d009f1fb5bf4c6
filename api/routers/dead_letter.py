"""The seed's dead-letter queue and manual retry: failed notifications and re-running them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query

from api.deps import Admin, AuditDep, ClientDep, DbDep, rate_limit, require_admin
from api.routers.notifications import Cursor, Limit, record_json
from api.schemas import DeadLetterPage, DeadLetterRetry, DeadLetterRetryResult
from notifications.schemas import NAME_PATTERN
from notifications.sql import queries
from notifications.types import Status

router = APIRouter(
    prefix="/api/admin/notifications/dead-letter", tags=["dead-letter"], dependencies=[Depends(require_admin)]
)


def dead_letter_json(row: Any) -> dict[str, Any]:
    out = record_json(row)
    out["lastError"] = {"code": out["errorCode"], "message": out["errorMessage"], "at": out["completedAt"]}
    return out


@router.get("", response_model=DeadLetterPage, name="dead_letter.list")
async def list_dead_letters(
    principal: Admin,
    db: DbDep,
    channel: Literal["email", "push"] | None = None,
    type: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    errorCode: Annotated[str | None, Query(max_length=64)] = None,
    userId: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Failed notifications, newest first, each with its last error."""
    filt = queries.NotificationFilter(
        status=Status.FAILED.value,
        channel=channel,
        type=type,
        user_id=userId,
        error_code=errorCode,
        tenant=principal.tenant,
        since=since,
        until=until,
    )
    rows, next_cursor = await queries.list_notifications(db, filt, limit=limit, cursor=cursor)
    return {"items": [dead_letter_json(r) for r in rows], "nextCursor": next_cursor}


@router.post(
    "/retry", response_model=DeadLetterRetryResult, name="dead_letter.retry", dependencies=[Depends(rate_limit)]
)
async def retry_dead_letters(
    principal: Admin,
    client: ClientDep,
    audit: AuditDep,
    body: Annotated[DeadLetterRetry | None, Body()] = None,
) -> dict[str, Any]:
    """Re-run every failed notification matching the filter (at most `limit`, default 100)."""
    body = body or DeadLetterRetry()
    filt = queries.NotificationFilter(
        status=Status.FAILED.value,
        channel=body.channel,
        type=body.type,
        user_id=body.userId,
        error_code=body.errorCode,
        tenant=principal.tenant,
        since=body.since,
        until=body.until,
    )
    async with audit("dead-letter") as details:
        matched, retried, errors = await client.retry_failed(filt, body.limit)
        details.update(
            filter=body.model_dump(mode="json", exclude_none=True),
            matched=matched,
            retried=len(retried),
            errors=len(errors),
        )
    return {"matched": matched, "retried": retried, "errors": errors}
