"""Purging old records from the SQL mirror, in bounded batches so no transaction grows large."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio import activity

from notifications.sql import store
from notifications.sql.engine import Database
from notifications.sql.models import utcnow
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
            ([Status.SENT.value, Status.DELIVERED.value], now - timedelta(days=request.sentDays)),
            (
                [
                    Status.FAILED.value,
                    Status.CANCELLED.value,
                    Status.EXPIRED.value,
                    Status.SUPPRESSED.value,
                    Status.BOUNCED.value,
                ],
                now - timedelta(days=request.failedDays),
            ),
        ]
        for statuses, cutoff in rules:
            while True:
                notifications, attempts, outbox = await store.purge_finished(self.db, statuses, cutoff, BATCH)
                if not notifications:
                    break
                result.notifications += notifications
                result.deliveryAttempts += attempts
                result.outboxMessages += outbox
                activity.heartbeat(result.notifications)
        log.info(
            "retention purge: %d notifications, %d delivery attempts, %d outbox messages",
            result.notifications,
            result.deliveryAttempts,
            result.outboxMessages,
        )
        return result
