"""Purging old records from the SQL mirror, in bounded batches so no transaction grows large; and
applying provider events that lost the race with their send's record (`store.apply_stranded`)."""

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
# A provider event still waiting this long after it came in, although its notification has recorded
# the message ID, lost the race described in `store.events`: the normal path applies one at once.
STRANDED_AFTER = timedelta(seconds=30)


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
        result.eventsApplied = await store.apply_stranded(self.db, now - STRANDED_AFTER)
        log.info(
            "retention purge: %d notifications, %d delivery attempts, %d outbox messages; %d provider events applied",
            result.notifications,
            result.deliveryAttempts,
            result.outboxMessages,
            result.eventsApplied,
        )
        return result
