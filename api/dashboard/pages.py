"""Suppressions (list, add, remove), webhook endpoints and their deliveries (retry), and the audit log."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.dashboard.render import page, page_url
from api.dashboard.session import PATH, FormSession, SessionDep, audit
from api.deps import ContextDep
from api.schemas import AuditEntry
from notifications import suppressions
from notifications.errors import NotificationNotFoundError, NotificationValidationError
from notifications.recipients import masked
from notifications.schemas import validate_payload
from notifications.sql import queries
from notifications.sql.engine import Database
from notifications.sql.store import webhooks as store
from notifications.webhooks_out import delivery_json, endpoint_json

router = APIRouter(prefix=PATH, include_in_schema=False)
PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 100
CHANNELS = ("email", "push")
RowId = Annotated[int, Path(ge=1, le=2**62)]
EndpointId = Annotated[str, Path(pattern=r"^we_[0-9a-f]{24}$")]
Cursor = Annotated[int | None, Query(ge=1, le=2**62)]


def _one_of(field: str, value: str, allowed: tuple[str, ...]) -> str | None:
    """A filter's value: blank is no filter; anything else must be one of `allowed`."""
    if value and value not in allowed:
        raise NotificationValidationError([{"field": field, "message": f"one of {', '.join(allowed)}"}])
    return value or None


# -- suppressions -----------------------------------------------------------------------------------
_SUPPRESSION_DONE = {
    "added": "Added to the suppression list: nothing more is sent to that address on that channel.",
    "listed": "That address was listed already: its entry is kept as it was.",
    "removed": "Removed from the suppression list: that recipient gets notifications again.",
}


@router.get("/suppressions", name="dashboard.suppressions")
async def suppression_list(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    channel: Annotated[str, Query(max_length=8)] = "",
    reason: Annotated[str, Query(max_length=16)] = "",
    q: Annotated[str, Query(max_length=256)] = "",
    cursor: Cursor = None,
    done: str | None = None,
) -> HTMLResponse:
    filters = {"channel": channel, "reason": reason, "q": q}
    items, next_cursor = await suppressions.page(
        ctx.client.db,
        session.principal.tenant,
        channel=_one_of("channel", channel, CHANNELS),
        reason=_one_of("reason", reason, suppressions.REASONS),
        q=q.strip() or None,
        limit=PAGE_SIZE,
        before=cursor,
    )
    return page(
        request,
        "suppressions.html",
        title="Suppressions",
        items=[i.to_json() for i in items],
        filters=filters,
        channels=CHANNELS,
        reasons=suppressions.REASONS,
        next_url=None if next_cursor is None else page_url(f"{PATH}/suppressions", **filters, cursor=next_cursor),
        notice=_SUPPRESSION_DONE.get(done or ""),
    )


@router.post("/suppressions", name="dashboard.suppressions_add")
async def suppression_add(
    request: Request,
    ctx: ContextDep,
    session: FormSession,
    channel: Annotated[str, Form(max_length=8)] = "",
    address: Annotated[str, Form(max_length=512)] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """An operator's entry: its reason is `manual`."""
    entry = validate_payload(
        suppressions.NewSuppression,
        {"channel": channel, "address": address, "reason": "manual", "note": note.strip() or None},
    )
    async with audit(request, ctx, session)(None, action="suppressions.add") as details:
        details["via"] = "dashboard"
        record, created = await suppressions.add(
            ctx.client.db, session.principal.tenant, entry, session.principal.subject
        )
        details.update(channel=record.channel, address=masked(record.channel, record.address), reason=record.reason)
        details["created"] = created
    return RedirectResponse(f"{PATH}/suppressions?done={'added' if created else 'listed'}", status_code=303)


@router.post("/suppressions/{suppression_id}/remove", name="dashboard.suppressions_remove")
async def suppression_remove(
    request: Request,
    ctx: ContextDep,
    session: FormSession,
    suppression_id: RowId,
    channel: Annotated[str, Form(max_length=8)] = "",
    reason: Annotated[str, Form(max_length=16)] = "",
    q: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Back to the list with the filters the entry was removed under."""
    back = {"channel": _one_of("channel", channel, CHANNELS), "reason": _one_of("reason", reason, suppressions.REASONS)}
    async with audit(request, ctx, session)(f"suppression:{suppression_id}", action="suppressions.remove") as details:
        details["via"] = "dashboard"
        record = await suppressions.remove(ctx.client.db, suppression_id, session.principal.tenant)
        details.update(channel=record.channel, address=masked(record.channel, record.address), reason=record.reason)
    return RedirectResponse(page_url(f"{PATH}/suppressions", **back, q=q, done="removed"), status_code=303)


# -- webhooks ---------------------------------------------------------------------------------------
async def _endpoint(db: Database, endpoint_id: str, tenant: str | None) -> Any:
    """As the API finds it: a tenant's token sees its tenant's endpoints only."""
    row = await store.get_endpoint(db, endpoint_id, tenant)
    if row is None:
        raise NotificationNotFoundError(f"no webhook endpoint {endpoint_id!r}")
    return row


@router.get("/webhooks", name="dashboard.webhooks")
async def webhooks(request: Request, ctx: ContextDep, session: SessionDep) -> HTMLResponse:
    rows = await store.list_endpoints(ctx.client.db, session.principal.tenant)
    return page(request, "webhooks.html", title="Webhooks", items=[endpoint_json(row) for row in rows])


@router.get("/webhooks/{endpoint_id}", name="dashboard.webhook")
async def webhook(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    endpoint_id: EndpointId,
    cursor: Cursor = None,
    done: str | None = None,
) -> HTMLResponse:
    endpoint = endpoint_json(await _endpoint(ctx.client.db, endpoint_id, session.principal.tenant))
    rows = await store.list_deliveries(ctx.client.db, endpoint_id, PAGE_SIZE + 1, cursor)
    items = [delivery_json(r) for r in rows[:PAGE_SIZE]]
    more = len(rows) > PAGE_SIZE
    retried = int(done) if done and done.isascii() and done.isdecimal() and len(done) < 10 else None
    return page(
        request,
        "webhook.html",
        title=f"Webhook {endpoint_id}",
        e=endpoint,
        items=items,
        next_url=page_url(f"{PATH}/webhooks/{endpoint_id}", cursor=items[-1]["id"]) if more else None,
        retried=retried,
    )


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry", name="dashboard.webhook_retry")
async def webhook_retry(
    request: Request, ctx: ContextDep, session: FormSession, endpoint_id: EndpointId, delivery_id: RowId
) -> Response:
    """Send it again now, with a fresh retry schedule (the same `webhook-id`)."""
    async with audit(request, ctx, session)(endpoint_id, action="webhooks.retry_delivery") as details:
        details.update(delivery=delivery_id, via="dashboard")
        await _endpoint(ctx.client.db, endpoint_id, session.principal.tenant)
        if not await store.retry_delivery(ctx.client.db, endpoint_id, delivery_id):
            raise NotificationNotFoundError(f"no delivery {delivery_id} of {endpoint_id}")
    return RedirectResponse(f"{PATH}/webhooks/{endpoint_id}?done={delivery_id}", status_code=303)


# -- audit log --------------------------------------------------------------------------------------
def _details(details: dict[str, Any]) -> list[tuple[str, str]]:
    """Each detail as a key and a short text (JSON for anything that is not a string)."""
    return [(k, v if isinstance(v, str) else json.dumps(v, default=str)) for k, v in details.items()]


@router.get("/audit", name="dashboard.audit")
async def audit_log(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    actor: Annotated[str, Query(max_length=128)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    before: Cursor = None,
) -> HTMLResponse:
    """Newest first; a tenant's token sees its tenant's entries only."""
    actor, action = actor.strip(), action.strip()
    rows = await queries.list_audit(
        ctx.client.db,
        limit=AUDIT_PAGE_SIZE + 1,
        before_id=before,
        tenant=session.principal.tenant,
        actor=actor or None,
        action=action or None,
    )
    entries = [AuditEntry.model_validate(r, from_attributes=True) for r in rows[:AUDIT_PAGE_SIZE]]
    items = [{**e.model_dump(mode="json"), "details": _details(e.details)} for e in entries]
    older = len(rows) > AUDIT_PAGE_SIZE
    return page(
        request,
        "audit.html",
        title="Audit log",
        items=items,
        filters={"actor": actor, "action": action},
        next_url=page_url(f"{PATH}/audit", actor=actor, action=action, before=entries[-1].id) if older else None,
    )
