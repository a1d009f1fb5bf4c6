"""Enqueue over HTTP for services not written in Python: the Python client's payloads, same rules.

`Idempotency-Key` is the notification ID: a retried request with the same key returns the
same notification (one row, one workflow, one delivery). A body `notificationId` that
differs from the header is a 422, since the caller's intent is ambiguous; reusing a key
for the other channel is a 409.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException

from api.deps import ClientDep, Service, require_service
from api.schemas import EmailEnqueue, Enqueued, PushEnqueue
from notifications.errors import (
    NotificationConflictError,
    NotificationNotFoundError,
    NotificationUnavailableError,
    NotificationValidationError,
)
from notifications.schemas import ID_PATTERN
from notifications.types import Channel

router = APIRouter(prefix="/api/notifications", tags=["enqueue"], dependencies=[Depends(require_service)])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=ID_PATTERN,
        max_length=128,
        description="becomes the notificationId; repeat it to retry a request safely",
    ),
]


async def _payload(
    client: ClientDep, principal: Service, body: EmailEnqueue | PushEnqueue, key: str | None, channel: Channel
) -> tuple[dict[str, Any], int | None]:
    payload = body.model_dump(exclude={"priority"}, exclude_none=True)
    if key is not None:
        if body.notificationId is not None and body.notificationId != key:
            raise NotificationValidationError(
                [{"field": "Idempotency-Key", "message": "differs from the body's notificationId"}]
            )
        payload["notificationId"] = key
    if principal.tenant is not None:
        if body.tenant is not None and body.tenant != principal.tenant:
            raise HTTPException(403, detail="the token may only enqueue for its own tenant")
        payload["tenant"] = principal.tenant
    nid = payload.get("notificationId")
    if nid is not None:
        try:
            existing = await client.get(nid)
        except (NotificationNotFoundError, NotificationUnavailableError):
            existing = None  # with the database down the client checks against the workflow itself
        if existing is not None and (
            existing.channel != channel.value or (principal.tenant is not None and existing.tenant != principal.tenant)
        ):
            raise NotificationConflictError(f"notificationId {nid!r} is already used by another notification")
    return payload, body.priority


@router.post("/email", response_model=Enqueued, response_model_exclude_none=True, status_code=202, name="enqueue.email")
async def enqueue_email(
    principal: Service, client: ClientDep, body: EmailEnqueue, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    """Queue an email: `{notificationId?, to, subject, html, text, type, userId, data, priority}`."""
    payload, priority = await _payload(client, principal, body, idempotency_key, Channel.EMAIL)
    return Enqueued.of(await client.enqueue_email(payload, priority))


@router.post("/push", response_model=Enqueued, response_model_exclude_none=True, status_code=202, name="enqueue.push")
async def enqueue_push(
    principal: Service, client: ClientDep, body: PushEnqueue, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    """Queue a push: `{notificationId?, userId | token, title, message, data, priority, fallback?}`.

    `fallback.email` (`to`, and `subject` with `html` or `text`, or a template `type` rendered with
    the push's `data`) is sent as `<notificationId>-fallback-email` if the push cannot reach its user.
    """
    payload, priority = await _payload(client, principal, body, idempotency_key, Channel.PUSH)
    return Enqueued.of(await client.enqueue_push(payload, priority))
