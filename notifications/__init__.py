"""Durable email and push notifications on Temporal.

    from notifications import enqueue_email_notification, enqueue_push_notification

Attributes are loaded lazily so that workflow code can import the light
`notifications.types` module without pulling in the client and its I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "NotificationClient",
    "NotificationNotFoundError",
    "NotificationRecord",
    "NotificationValidationError",
    "Settings",
    "enqueue_email_notification",
    "enqueue_push_notification",
]

_LAZY = {
    "NotificationClient": "notifications.client",
    "enqueue_email_notification": "notifications.client",
    "enqueue_push_notification": "notifications.client",
    "NotificationRecord": "notifications.schemas",
    "NotificationValidationError": "notifications.errors",
    "NotificationNotFoundError": "notifications.errors",
    "Settings": "notifications.config",
}

if TYPE_CHECKING:
    from notifications.client import NotificationClient, enqueue_email_notification, enqueue_push_notification
    from notifications.config import Settings
    from notifications.errors import NotificationNotFoundError, NotificationValidationError
    from notifications.schemas import NotificationRecord


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'notifications' has no attribute {name!r}")
