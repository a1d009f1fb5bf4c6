"""Provider webhooks in: `POST /api/webhooks/resend`, authenticated by its Svix signature, not a JWT.

Verified over the raw body with the `standardwebhooks` library (Svix signs the same way under
`svix-*` header names): any of the `v1,` signatures may match (secret rotation), and a timestamp
more than 5 minutes off is refused. The event is stored and applied before the 2xx goes out, so
Resend retries anything we did not commit; the same `svix-id` twice is applied once.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.deps import ContextDep, SettingsDep
from notifications.config import Settings
from notifications.errors import NotificationValidationError
from notifications.provider_events import resend_event
from notifications.sql.store.events import ingest

router = APIRouter(prefix="/api/webhooks", tags=["webhooks in"])


def _verified(settings: Settings, body: bytes, request: Request) -> str:
    """The event's `svix-id`, once its signature is good; 401 otherwise."""
    if settings.resend_webhook_secret is None:
        raise HTTPException(401, detail="RESEND_WEBHOOK_SECRET is not set: no webhook can be verified")
    headers = {name: request.headers.get(f"svix-{name}", "") for name in ("id", "timestamp", "signature")}
    try:
        Webhook(settings.resend_webhook_secret.get_secret_value()).verify(
            body, {f"webhook-{name}": value for name, value in headers.items()}, json_parse=False
        )
    except (WebhookVerificationError, ValueError) as exc:
        raise HTTPException(401, detail=f"invalid webhook signature: {exc}") from None
    return headers["id"]


# The body is read raw (the signature covers its bytes), so its shape is declared for the docs only.
_RESEND_EVENT = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["type", "created_at", "data"],
                "properties": {
                    "type": {"type": "string", "example": "email.delivered"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "data": {
                        "type": "object",
                        "required": ["email_id"],
                        "properties": {"email_id": {"type": "string"}},
                    },
                },
            }
        }
    },
}


@router.post("/resend", name="webhooks.resend", status_code=200, openapi_extra={"requestBody": _RESEND_EVENT})
async def resend(request: Request, settings: SettingsDep, ctx: ContextDep) -> dict[str, Any]:
    """`{"received": true, "applied": bool}`; an event type we do not use is acknowledged and ignored."""
    body = await request.body()
    event_id = _verified(settings, body, request)
    try:
        payload = json.loads(body)
        event = resend_event(event_id, payload)
    except ValueError as exc:  # not JSON, or not what Resend sends (NotificationValidationError)
        fields = (
            exc.errors if isinstance(exc, NotificationValidationError) else [{"field": "body", "message": "not JSON"}]
        )
        raise HTTPException(
            400, detail=f"malformed webhook body: {fields[0]['field']}: {fields[0]['message']}"
        ) from None
    if event is None:
        return {"received": True, "applied": False, "ignored": payload.get("type")}
    applied = await ingest(ctx.client.db, event)
    return {"received": True, "applied": applied}
