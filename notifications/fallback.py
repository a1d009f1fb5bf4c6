"""Channel fallback: the email a push names for when it cannot reach its user.

    push payload `fallback.email` -> rendered at the push's enqueue (FallbackEmail in its input)
    push ends failed (FALLBACK_ERROR_CODES) or suppressed -> its workflow enqueues the email
    `<notificationId>-fallback-email`, a notification of its own (fallbackOf = the push's ID)

The email is rendered with the push, like any email with a `type`, so a bad template or a missing
variable is the caller's error before anything is stored, not a failure found when the push fails.
"""

from __future__ import annotations

from collections.abc import Callable

from notifications.errors import NotificationValidationError
from notifications.schemas import EmailNotification, PushNotification, validate_payload
from notifications.templating import render_email
from notifications.types import (
    Channel,
    DeliveryPolicy,
    FallbackEmail,
    NotificationInput,
    fallback_id_for,
)

MAX_ID_LENGTH = 128  # notifications.id, String(128)
_FIELD = "fallback.email"


def render_fallback(
    push: PushNotification, unsubscribe_url: Callable[[EmailNotification], str]
) -> FallbackEmail | None:
    """The push's fallback email as it will be sent, or None; errors name the payload's field."""
    if push.fallback is None:
        return None
    if push.notificationId and len(fallback_id_for(push.notificationId)) > MAX_ID_LENGTH:
        limit = MAX_ID_LENGTH - len(fallback_id_for(""))
        raise NotificationValidationError(
            [{"field": "notificationId", "message": f"with a fallback, at most {limit} characters"}]
        )
    spec = push.fallback.email
    try:
        email: EmailNotification = validate_payload(
            EmailNotification,
            {
                "to": spec.to,
                "subject": spec.subject,
                "html": spec.html,
                "text": spec.text,
                # the push's type labels an email given as raw content: its user's opt-outs apply to both
                "type": spec.type or push.type,
                "userId": push.userId,
                "tenant": push.tenant,
                "data": push.data,
                "critical": push.critical,
            },
        )
        subject, html, text = render_email(email, unsubscribe_url=lambda: unsubscribe_url(email))
    except NotificationValidationError as exc:
        raise NotificationValidationError([_named(error) for error in exc.errors]) from None
    return FallbackEmail(to=str(email.to), subject=subject, html=html, text=text, type=email.type)


def _named(error: dict[str, str]) -> dict[str, str]:
    """An email field's error as the push payload's (`fallback.email.subject`); `data.*` is the push's own."""
    field = error.get("field", "")
    if field == "data" or field.startswith("data."):
        return error
    return {**error, "field": f"{_FIELD}.{field}" if field and field != "body" else _FIELD}


def fallback_input(push: NotificationInput, policy: DeliveryPolicy) -> NotificationInput:
    """The workflow input of a push's fallback email: the push's priority, tenant, user, expiry."""
    fallback = push.fallback
    if fallback is None:
        raise ValueError(f"notification {push.notificationId} has no fallback")
    return NotificationInput(
        notificationId=fallback_id_for(push.notificationId),
        channel=Channel.EMAIL.value,
        priority=push.priority,
        type=fallback.type,
        userId=push.userId,
        tenant=push.tenant,
        to=fallback.to,
        subject=fallback.subject,
        html=fallback.html,
        text=fallback.text,
        data=push.data,
        policy=policy,
        expiresAt=push.expiresAt,
        critical=push.critical,
        fallbackOf=push.notificationId,
    )
