"""What a provider's webhook tells after `sent`, as the SQL mirror applies it.

Resend (Svix-signed) reports `email.delivered`, `email.bounced`, `email.complained`,
`email.delivery_delayed`, `email.opened`, `email.clicked`, `email.suppressed` and `email.failed`
about the message it answered with `data.email_id`. Each is stored as a delivery event; some move
the notification's status forward (sent -> delivered -> bounced; sent -> failed), stamp a time,
or put the address on the suppression list. A status never moves back: a late `delivered` leaves
a `bounced` one as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from notifications.errors import NotificationValidationError
from notifications.types import Status

# How far along a notification is after `sent`; an event moves it only to a higher rank.
RANK = {Status.SENT.value: 1, Status.DELIVERED.value: 2, Status.BOUNCED.value: 3, Status.FAILED.value: 3}


@dataclass(frozen=True)
class Effect:
    status: Status | None = None
    stamp: str | None = None  # the notification's column set to the event's time, once
    suppress: str | None = None  # the suppression reason the address gets


EFFECTS: dict[str, Effect] = {
    "email.delivered": Effect(Status.DELIVERED, "delivered_at"),
    "email.bounced": Effect(Status.BOUNCED, "bounced_at", "hard_bounce"),  # a permanent bounce
    "email.complained": Effect(None, "complained_at", "complaint"),
    "email.delivery_delayed": Effect(),
    "email.opened": Effect(None, "opened_at"),
    "email.clicked": Effect(None, "clicked_at"),
    "email.suppressed": Effect(Status.BOUNCED, "bounced_at", "hard_bounce"),  # the provider refused to send
    "email.failed": Effect(Status.FAILED),
}
TRANSIENT_BOUNCE = Effect()


@dataclass(frozen=True)
class ProviderEvent:
    provider: str
    event_id: str
    type: str
    message_id: str
    occurred_at: datetime
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def effect(self) -> Effect:
        if self.type == "email.bounced" and str(self.details.get("bounceType", "")).lower() != "permanent":
            return TRANSIENT_BOUNCE
        return EFFECTS[self.type]


def resend_event(event_id: str, body: Any) -> ProviderEvent | None:
    """The event of a verified Resend webhook body; None for a type we do not use.
    NotificationValidationError (400) when the body is not what Resend sends."""
    if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not isinstance(body.get("data"), dict):
        raise NotificationValidationError([{"field": "body", "message": "expected {type, created_at, data}"}])
    kind, data = body["type"], body["data"]
    if kind not in EFFECTS:
        return None
    message_id = data.get("email_id")
    if not isinstance(message_id, str) or not message_id:
        raise NotificationValidationError([{"field": "data.email_id", "message": "is required"}])
    details: dict[str, Any] = {}
    bounce = data.get("bounce")
    if isinstance(bounce, dict):
        details = {"bounceType": bounce.get("type"), "bounceSubType": bounce.get("subType")}
        if bounce.get("message"):
            details["message"] = str(bounce["message"])[:500]
    click = data.get("click")
    if isinstance(click, dict) and click.get("link"):
        details["link"] = str(click["link"])[:2000]
    return ProviderEvent("resend", event_id, kind, message_id, _time(body.get("created_at")), details)


def _time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise NotificationValidationError([{"field": "created_at", "message": "must be an ISO 8601 time"}]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
