"""The seed's six queue endpoints under /api/admin/notifications/queues, same paths and JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from api import health as health_check
from api.deps import Admin, AuditDep, ClientDep, ContextDep, DbDep, rate_limit, require_admin, require_global_admin
from api.schemas import Enqueued, Health, QueueControl, QueueControlResult, QueueStats, TestEmail, TestPush
from notifications.auth import Principal
from notifications.schemas import NotificationRecord
from notifications.sql import queries
from notifications.types import Channel

router = APIRouter(prefix="/api/admin/notifications/queues", tags=["queues"], dependencies=[Depends(require_admin)])

GlobalAdmin = Annotated[Principal, Depends(require_global_admin)]
_LIMITED = [Depends(rate_limit)]
_UNHEALTHY: dict[int | str, dict[str, Any]] = {
    503: {"model": Health, "description": "degraded or unhealthy (same body)"}
}


@router.get("/stats", response_model=QueueStats, name="queues.stats")
async def stats(principal: Admin, db: DbDep) -> dict[str, Any]:
    """Per-queue job counts; docs/api.md "Stats" says how each maps to notification states."""
    return await queries.queue_stats(db, principal.tenant)


async def _set(
    client: ClientDep, audit: AuditDep, body: QueueControl | None, paused: bool, actor: str
) -> dict[str, Any]:
    body = body or QueueControl()
    async with audit(f"queue:{body.queue}") as details:
        details.update(queue=body.queue, reason=body.reason)
        if paused:
            states = await client.pause_queue(body.queue, reason=body.reason, actor=actor)
        else:
            states = await client.resume_queue(body.queue, actor=actor)
    which = "all queues" if body.queue == "all" else f"the {body.queue} queue"
    return {"message": f"{which} {'paused' if paused else 'resumed'}", "queues": states}


@router.post("/pause", response_model=QueueControlResult, name="queues.pause", dependencies=_LIMITED)
async def pause(
    principal: GlobalAdmin, client: ClientDep, audit: AuditDep, body: Annotated[QueueControl | None, Body()] = None
) -> dict[str, Any]:
    """Pause both queues, or one with `{"queue": "email"|"push"}`. Idempotent; returns the resulting state."""
    return await _set(client, audit, body, True, principal.subject)


@router.post("/resume", response_model=QueueControlResult, name="queues.resume", dependencies=_LIMITED)
async def resume(
    principal: GlobalAdmin, client: ClientDep, audit: AuditDep, body: Annotated[QueueControl | None, Body()] = None
) -> dict[str, Any]:
    """Resume both queues, or one. Idempotent; every held notification is then delivered once."""
    return await _set(client, audit, body, False, principal.subject)


@router.get("/health", response_model=Health, name="queues.health", responses=_UNHEALTHY)
async def health(principal: Admin, ctx: ContextDep) -> JSONResponse:
    """healthy -> 200; degraded (no worker on a queue, provider trouble) or unhealthy (Temporal/DB down) -> 503."""
    body = await health_check.health(ctx, principal.tenant)
    return JSONResponse(
        Health.model_validate(body).model_dump(mode="json"), status_code=200 if body["status"] == "healthy" else 503
    )


@router.post(
    "/test-email",
    response_model=Enqueued,
    response_model_exclude_none=True,
    status_code=202,
    name="queues.test_email",
    dependencies=_LIMITED,
)
async def test_email(principal: Admin, client: ClientDep, audit: AuditDep, body: TestEmail) -> dict[str, Any]:
    """Enqueue a real email (type `test`) and return its ID and status."""
    payload = {"to": body.to, "subject": body.subject, "html": body.message}
    return await _enqueue_test(principal, audit, Channel.EMAIL, client.enqueue_email, payload, body.priority)


@router.post(
    "/test-push",
    response_model=Enqueued,
    response_model_exclude_none=True,
    status_code=202,
    name="queues.test_push",
    dependencies=_LIMITED,
)
async def test_push(principal: Admin, client: ClientDep, audit: AuditDep, body: TestPush) -> dict[str, Any]:
    """Enqueue a real push (type `test`) to the user's devices and return its ID and status."""
    payload = {"userId": body.userId, "title": body.title, "message": body.message}
    return await _enqueue_test(principal, audit, Channel.PUSH, client.enqueue_push, payload, body.priority)


async def _enqueue_test(
    principal: Principal,
    audit: AuditDep,
    channel: Channel,
    enqueue: Callable[[dict[str, Any], int | None], Awaitable[NotificationRecord]],
    payload: dict[str, Any],
    priority: int | None,
) -> dict[str, Any]:
    """A `test` notification, in the caller's tenant, audited with its ID."""
    async with audit() as details:
        payload = {**payload, "type": "test"}
        if principal.tenant:
            payload["tenant"] = principal.tenant
        record = await enqueue(payload, priority)
        details.update(notificationId=record.notification_id, channel=channel.value)
    return Enqueued.of(record)
