"""Turning a payload into the subject and bodies that are sent (raw content for now)."""

from __future__ import annotations

from notifications.errors import NotificationValidationError
from notifications.schemas import EmailNotification, PushNotification


def render_email(payload: EmailNotification) -> tuple[str, str | None, str | None]:
    """(subject, html, text) of an email; raises NotificationValidationError naming the field."""
    errors = []
    if not payload.subject:
        errors.append({"field": "subject", "message": "is required"})
    if not payload.html and not payload.text:
        errors.append({"field": "html", "message": "html or text is required"})
    if errors:
        raise NotificationValidationError(errors)
    assert payload.subject is not None
    return payload.subject, payload.html, payload.text


def render_push(payload: PushNotification) -> tuple[str, str]:
    """(title, message) of a push."""
    errors = []
    if not payload.title:
        errors.append({"field": "title", "message": "is required"})
    if not payload.message:
        errors.append({"field": "message", "message": "is required"})
    if errors:
        raise NotificationValidationError(errors)
    assert payload.title is not None and payload.message is not None
    return payload.title, payload.message
