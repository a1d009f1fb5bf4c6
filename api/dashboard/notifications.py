"""Notifications and dead letters: filtered lists with cursor pages, a detail page, and their actions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.dashboard.render import page, page_url
from api.dashboard.session import PATH, FormSession, SessionDep, audit, limited
from api.deps import ContextDep
from api.routers.notifications import owned, record_json, settled
from notifications.errors import NotificationValidationError
from notifications.schemas import ID_PATTERN, NotificationRecord
from notifications.sql import queries
from notifications.types import TERMINAL_STATUSES, Status, workflow_id_for

router = APIRouter(prefix=PATH, include_in_schema=False)
NotificationId = Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]
STATUSES = [s.value for s in Status]
PAGE_SIZE = 50
RETRY_ALL_LIMIT = 100


def zone(name: str) -> ZoneInfo:
    """The browser's IANA zone (the page's script sends it); UTC when it sent none."""
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, ZoneInfoNotFoundError):
        raise NotificationValidationError([{"field": "tz", "message": "an IANA time zone name"}]) from None


def local_time(text: str, tz: str, field: str) -> datetime | None:
    """A `datetime-local` value in the browser's zone as UTC, DST-correct for that date."""
    if not text:
        return None
    try:
        local = datetime.fromisoformat(text)
        if local.tzinfo is None:
            local = local.replace(tzinfo=zone(tz))
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        message = "use the date and time picker (YYYY-MM-DDTHH:MM)"
        raise NotificationValidationError([{"field": field, "message": message}]) from None


class Filters:
    """The list pages' query string: blank fields are no filter; times are the browser's local time."""

    def __init__(
        self,
        status: Annotated[str, Query(max_length=32)] = "",
        channel: Annotated[str, Query(max_length=8)] = "",
        type: Annotated[str, Query(max_length=64)] = "",
        userId: Annotated[str, Query(max_length=128)] = "",
        campaignId: Annotated[str, Query(max_length=64)] = "",
        errorCode: Annotated[str, Query(max_length=64)] = "",
        since: Annotated[str, Query(max_length=32)] = "",
        until: Annotated[str, Query(max_length=32)] = "",
        tz: Annotated[str, Query(max_length=64, description="the browser's IANA time zone")] = "",
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> None:
        self.values = {
            "status": status,
            "channel": channel,
            "type": type,
            "userId": userId,
            "campaignId": campaignId,
            "errorCode": errorCode,
            "since": since,
            "until": until,
        }
        self.tz, self.cursor = tz, cursor

    def time(self, field: str) -> datetime | None:
        return local_time(self.values[field], self.tz, field)

    def query(self, tenant: str | None, *, status: str | None = None) -> queries.NotificationFilter:
        v = self.values
        if v["status"] and v["status"] not in STATUSES:
            raise NotificationValidationError([{"field": "status", "message": f"one of {', '.join(STATUSES)}"}])
        if v["channel"] and v["channel"] not in ("email", "push"):
            raise NotificationValidationError([{"field": "channel", "message": "email or push"}])
        return queries.NotificationFilter(
            status=status or v["status"] or None,
            channel=v["channel"] or None,
            type=v["type"] or None,
            user_id=v["userId"] or None,
            campaign_id=v["campaignId"] or None,
            error_code=v["errorCode"] or None,
            tenant=tenant,
            since=self.time("since"),
            until=self.time("until"),
        )

    def next_url(self, path: str, cursor: str | None) -> str | None:
        return None if cursor is None else page_url(path, **self.values, tz=self.tz, cursor=cursor)


FiltersDep = Annotated[Filters, Depends()]


@router.get("/notifications", name="dashboard.notifications")
async def notifications(request: Request, ctx: ContextDep, session: SessionDep, filters: FiltersDep) -> HTMLResponse:
    filt = filters.query(session.principal.tenant)
    rows, cursor = await queries.list_notifications(ctx.client.db, filt, limit=PAGE_SIZE, cursor=filters.cursor)
    return page(
        request,
        "notifications.html",
        title="Notifications",
        items=[record_json(r) for r in rows],
        filters=filters.values,
        statuses=STATUSES,
        next_url=filters.next_url(f"{PATH}/notifications", cursor),
    )


@router.get("/dead-letters", name="dashboard.dead_letters")
async def dead_letters(request: Request, ctx: ContextDep, session: SessionDep, filters: FiltersDep) -> HTMLResponse:
    filt = filters.query(session.principal.tenant, status=Status.FAILED.value)
    rows, cursor = await queries.list_notifications(ctx.client.db, filt, limit=PAGE_SIZE, cursor=filters.cursor)
    return page(
        request,
        "dead_letters.html",
        title="Dead letters",
        items=[record_json(r) for r in rows],
        filters=filters.values,
        tz=filters.tz,
        limit=RETRY_ALL_LIMIT,
        next_url=filters.next_url(f"{PATH}/dead-letters", cursor),
    )


@router.post("/dead-letters/retry", name="dashboard.dead_letters_retry")
async def retry_matching(
    request: Request,
    ctx: ContextDep,
    session: FormSession,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Retry every failed notification matching the filters (at most RETRY_ALL_LIMIT): asked first."""
    form = await request.form()
    fields = {
        k: str(form.get(k) or "") for k in ("channel", "type", "userId", "campaignId", "errorCode", "since", "until")
    }
    filters = Filters(**fields, tz=str(form.get("tz") or "")[:64])  # type: ignore[arg-type]
    filt = filters.query(session.principal.tenant, status=Status.FAILED.value)
    if confirm != "yes":
        rows, more = await queries.list_notifications(ctx.client.db, filt, limit=RETRY_ALL_LIMIT)
        return page(
            request,
            "confirm_retry.html",
            title="Retry dead letters",
            matched=len(rows),
            more=more is not None,
            filters=filters.values,
            tz=filters.tz,
        )
    await limited(ctx, session, "dead_letter.retry")
    async with audit(request, ctx, session)("dead-letter", action="dead_letter.retry") as details:
        matched, retried, errors = await ctx.client.retry_failed(filt, RETRY_ALL_LIMIT)
        kept = {k: v for k, v in fields.items() if v}
        details.update(filter=kept, matched=matched, retried=len(retried), errors=len(errors), via="dashboard")
    query = urlencode({"retried": len(retried), "errors": len(errors)})
    return RedirectResponse(f"{PATH}/dead-letters?{query}", status_code=303)


_DONE = {"retry": "Retried: a new run started.", "cancel": "Cancelled.", "reschedule": "Rescheduled."}


def web_ui_url(ctx: ContextDep, notification_id: str) -> str:
    settings = ctx.settings
    workflow = workflow_id_for(notification_id)
    return f"{settings.web_ui_base_url}/namespaces/{settings.temporal_namespace}/workflows/{workflow}"


async def _live(ctx: ContextDep, notification_id: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        status = await asyncio.wait_for(ctx.client.status(notification_id), ctx.settings.api_check_timeout_seconds)
        return status, None
    except Exception as exc:  # the record and its log are still worth showing
        return None, f"the workflow's status is unavailable ({type(exc).__name__})"


@router.get("/notifications/{notification_id}", name="dashboard.notification")
async def notification(
    request: Request, ctx: ContextDep, session: SessionDep, notification_id: NotificationId
) -> HTMLResponse:
    row = await owned(ctx.client.db, notification_id, session.principal.tenant)
    record = NotificationRecord.from_row(row)
    log, events, (live, live_error) = await asyncio.gather(
        ctx.client.delivery_log(notification_id),
        ctx.client.delivery_events(notification_id),
        _live(ctx, notification_id),
    )
    return page(
        request,
        "notification.html",
        title=f"Notification {notification_id}",
        n=record.to_json(),
        terminal=Status(record.status) in TERMINAL_STATUSES,
        log=[a.model_dump(mode="json", by_alias=True) for a in log],
        events=[e.model_dump(mode="json", by_alias=True) for e in events],
        live=live,
        live_error=live_error,
        web_ui=web_ui_url(ctx, notification_id),
        done=_DONE.get(request.query_params.get("done") or ""),
    )


@router.get("/notifications/{notification_id}/live", name="dashboard.notification_live")
async def notification_live(
    request: Request, ctx: ContextDep, session: SessionDep, notification_id: NotificationId
) -> HTMLResponse:
    await owned(ctx.client.db, notification_id, session.principal.tenant)
    live, live_error = await _live(ctx, notification_id)
    return page(request, "_live.html", live=live, live_error=live_error)


@router.post("/notifications/{notification_id}/{action}", name="dashboard.notification_action")
async def notification_action(
    request: Request,
    ctx: ContextDep,
    session: FormSession,
    notification_id: NotificationId,
    action: str,
    sendAt: Annotated[str, Form(max_length=32)] = "",
    tz: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    if action not in _DONE:
        raise NotificationValidationError([{"field": "action", "message": "retry, cancel or reschedule"}])
    await limited(ctx, session, f"notifications.{action}")
    async with audit(request, ctx, session)(notification_id, action=f"notifications.{action}") as details:
        details["via"] = "dashboard"
        await owned(ctx.client.db, notification_id, session.principal.tenant)
        if action == "retry":
            details["runId"] = (await ctx.client.retry(notification_id)).run_id
        elif action == "cancel":  # as the API answers it: once the notification has settled
            await ctx.client.cancel(notification_id)
            record = await settled(ctx.client, notification_id, ctx.settings.api_check_timeout_seconds)
            details["status"] = record.status
        else:
            when = local_time(sendAt, tz, "sendAt")
            if when is None:
                raise NotificationValidationError([{"field": "sendAt", "message": "pick a date and time"}])
            details["sendAt"] = when.isoformat()
            await ctx.client.reschedule(notification_id, when)
    return RedirectResponse(f"{PATH}/notifications/{notification_id}?done={action}", status_code=303)
