"""Purging old records from the SQL mirror, in bounded batches so no transaction grows large."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select
from temporalio import activity

from notifications.db import Database
from notifications.models import DeliveryAttempt, Notification, OutboxMessage, utcnow
from notifications.types import PURGE_ACTIVITY, PurgeRequest, PurgeResult, Status

log = logging.getLogger("notifications.retention")
BATCH = 500


class RetentionActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name=PURGE_ACTIVITY)
    async def purge_expired(self, request: PurgeRequest) -> PurgeResult:
        now = utcnow()
        result = PurgeResult()
        rules = [
            ([Status.SENT.value], now - timedelta(days=request.sentDays)),
            ([Status.FAILED.value, Status.CANCELLED.value], now - timedelta(days=request.failedDays)),
        ]
        for statuses, cutoff in rules:
            while True:
                async with self.db.transaction() as session:
                    ids = list(
                        await session.scalars(
                            select(Notification.id)
                            .where(Notification.status.in_(statuses), Notification.completed_at < cutoff)
                            .limit(BATCH)
                        )
                    )
                    if not ids:
                        break
                    attempts = await session.execute(
                        delete(DeliveryAttempt).where(DeliveryAttempt.notification_id.in_(ids))
                    )
                    outbox = await session.execute(delete(OutboxMessage).where(OutboxMessage.notification_id.in_(ids)))
                    await session.execute(delete(Notification).where(Notification.id.in_(ids)))
                result.notifications += len(ids)
                result.deliveryAttempts += getattr(attempts, "rowcount", 0) or 0
                result.outboxMessages += getattr(outbox, "rowcount", 0) or 0
                activity.heartbeat(result.notifications)
        log.info(
            "retention purge: %d notifications, %d delivery attempts, %d outbox messages",
            result.notifications,
            result.deliveryAttempts,
            result.outboxMessages,
        )
        return result
