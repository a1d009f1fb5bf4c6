"""The fallback email of a push that could not reach its user: enqueued once, however often asked.

Idempotent on the email's ID (`<notificationId>-fallback-email`): a row under that ID means it was
enqueued (the client starts the workflow before it writes the row), and a second start of its
workflow ID is refused, so a retried activity or a replayed push workflow finds the email it made.
"""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from notifications.client import NotificationClient
from notifications.config import Settings
from notifications.fallback import fallback_input
from notifications.sql import queries, store
from notifications.sql.engine import Database
from notifications.types import ENQUEUE_FALLBACK_ACTIVITY, Channel, NotificationInput

log = logging.getLogger("notifications.fallback")

FALLBACK_ID_TAKEN = "FALLBACK_ID_TAKEN"


class FallbackActivities:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._client: NotificationClient | None = None  # made on first use: it needs the activity's client

    @activity.defn(name=ENQUEUE_FALLBACK_ACTIVITY)
    async def enqueue_fallback(self, push: NotificationInput) -> str:
        """Enqueue the push's fallback email (or find it enqueued), name it on the push's row; its ID."""
        email = fallback_input(push, self.settings.delivery_policy())
        row = await queries.get_notification(self.db, email.notificationId)
        if row is None:
            record = await self._enqueuer().enqueue_prepared(email)
            channel, of = record.channel, record.fallback_of
        else:
            channel, of = row.channel, row.fallback_of
        if channel != Channel.EMAIL.value or of != push.notificationId:
            raise ApplicationError(
                f"notificationId {email.notificationId!r} is already used by another notification",
                type=FALLBACK_ID_TAKEN,
                non_retryable=True,
            )
        await store.link_fallback(self.db, push.notificationId, email.notificationId)
        log.info(
            "fallback email enqueued",
            extra={"notification_id": push.notificationId, "fallback_id": email.notificationId},
        )
        return email.notificationId

    def _enqueuer(self) -> NotificationClient:
        if self._client is None:
            self._client = NotificationClient(activity.client(), self.db, self.settings)
        return self._client
