"""The campaign activities: a batch claims a range of recipients, sends them through the
provider's batch calls and records every outcome; `record_campaign` mirrors the workflow's view.

A whole call that failed transiently leaves its recipients claimed under the call's key and
the activity fails with the jittered delay: Temporal's retry sends the same recipients under
the same key. One recipient that failed transiently, or that its quiet hours defer, goes on in
a NotificationWorkflow of its own (`notification-<id>`), with the single-notification retries.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers import Providers
from activities.providers.base import BatchOutcome, EmailMessage, PushMessage
from activities.providers.batch import batch_limit, send_email_batch, send_push_batch
from notifications.backoff import retry_delay
from notifications.campaign_types import (
    HEARTBEAT_EVERY_SECONDS,
    RECORD_CAMPAIGN_ACTIVITY,
    SEND_CAMPAIGN_BATCH_ACTIVITY,
    CampaignBatch,
    CampaignBatchResult,
    CampaignUpdate,
)
from notifications.config import Settings
from notifications.errors import DeliveryError, ErrorCode
from notifications.sql.engine import Database
from notifications.sql.models import utcnow
from notifications.sql.rows import input_from_row
from notifications.sql.store.campaign_batches import Outcome, claim_batch, finish_batch, range_counts
from notifications.sql.store.campaigns import record_campaign
from notifications.types import Channel, NotificationInput, Status
from notifications.unsubscribe import UnsubscribeTokens, one_click_headers

log = logging.getLogger("notifications.campaigns")


class CampaignActivities:
    def __init__(self, settings: Settings, db: Database, providers: Providers) -> None:
        self.settings = settings
        self.db = db
        self.providers = providers
        self.policy = settings.delivery_policy()
        self._unsubscribe: UnsubscribeTokens | None = None
        self._starter: Any = None

    @activity.defn(name=RECORD_CAMPAIGN_ACTIVITY)
    async def record_campaign(self, update: CampaignUpdate) -> None:
        await record_campaign(self.db, update)

    @activity.defn(name=SEND_CAMPAIGN_BATCH_ACTIVITY)
    async def send_campaign_batch(self, batch: CampaignBatch) -> CampaignBatchResult:
        # Heartbeats let Temporal see a dead worker's batch in seconds, not at its start-to-close timeout.
        beat = asyncio.create_task(_heartbeat())
        try:
            return await self._send_batch(batch)
        finally:
            beat.cancel()

    async def _send_batch(self, batch: CampaignBatch) -> CampaignBatchResult:
        info = activity.info()
        provider: Any = self.providers.email if batch.channel == Channel.EMAIL else self.providers.push
        started = utcnow()
        claimed = await self.db.run(claim_batch, batch, batch_limit(provider), started)
        if claimed.queue_paused:
            return CampaignBatchResult(queuePaused=True)
        final = info.attempt >= batch.maxAttempts
        keys = list(claimed.chunks)
        answers = await asyncio.gather(*(self._call(provider, batch.channel, k, claimed.chunks[k]) for k in keys))
        outcomes: list[Outcome] = []
        again: DeliveryError | None = None
        for key, answer in zip(keys, answers, strict=True):
            rows = claimed.chunks[key]
            if isinstance(answer, DeliveryError):
                if answer.retryable and not final:
                    again = again or answer  # these stay claimed: the next try sends them under the same key
                    continue
                outcomes.extend(_failed(row, key, answer) for row in rows)
            else:
                pairs = zip(rows, answer, strict=True)
                outcomes.extend(self._outcome(row, key, o, provider.name, final) for row, o in pairs)
        counts = await self.db.run(_finish, batch, outcomes, info.workflow_run_id or "", started)
        handoff = claimed.handoff + [o.row for o in outcomes if o.status == Status.QUEUED.value]
        later: dict[str, timedelta | None] = {o.row.id: o.retry_in for o in outcomes if o.retry_in is not None}
        await self._hand_off(handoff, later)
        if again is not None:
            delay = self._delay(again, info.attempt)
            log.warning("campaign batch call failed: %s; retried in %.1f s", again.code.value, delay.total_seconds())
            raise ApplicationError(again.message, type=again.code.value, next_retry_delay=delay)
        return CampaignBatchResult(counts=counts)

    async def _call(self, provider: Any, channel: str, key: str, rows: list[Any]) -> list[BatchOutcome] | DeliveryError:
        try:
            if channel == Channel.EMAIL:
                return await send_email_batch(provider, [self._email(r) for r in rows], idempotency_key=key)
            return await send_push_batch(provider, [_push(r) for r in rows], idempotency_key=key)
        except DeliveryError as exc:
            return exc
        except Exception as exc:  # unclassified: retried whole like an outage, until the batch's last try
            log.error("campaign batch call raised %s", type(exc).__name__)
            return DeliveryError(ErrorCode.SEND_FAILED, f"the provider call raised {type(exc).__name__}")

    def _email(self, row: Any) -> EmailMessage:
        content = row.content or {}
        if self._unsubscribe is None:
            self._unsubscribe = UnsubscribeTokens.from_settings(self.settings)
        url = self._unsubscribe.url(row.tenant, row.user_id, row.recipient, row.type)
        return EmailMessage(
            notification_id=row.id,
            to=row.recipient or "",
            subject=row.subject or "",
            html=content.get("html"),
            text=content.get("text"),
            sender=self.settings.mail_from,
            type=row.type,
            user_id=row.user_id,
            headers={} if row.critical else one_click_headers(url),
        )

    def _outcome(self, row: Any, key: str, answer: BatchOutcome, provider: str, final: bool) -> Outcome:
        if answer.result is not None:
            return Outcome(
                row,
                key,
                Status.SENT.value,
                provider=answer.result.provider,
                message_id=answer.result.provider_message_id,
                details=answer.result.details,
            )
        error = answer.error or DeliveryError(ErrorCode.SEND_FAILED, "the provider gave no answer for this message")
        if error.retryable and not final:
            out = _failed(row, key, error)
            out.status, out.provider, out.retry_in = Status.QUEUED.value, provider, self._delay(error, row.attempts + 1)
            return out
        return _failed(row, key, error)

    def _delay(self, error: DeliveryError, attempt: int) -> timedelta:
        if error.retry_after is not None and error.retry_after >= 0:
            return timedelta(seconds=error.retry_after)
        p = self.policy
        return retry_delay(attempt, base_delay_ms=p.baseDelayMs, max_delay_ms=p.maxDelayMs, jitter_ratio=p.jitter)

    async def _hand_off(self, rows: list[Any], later: dict[str, timedelta | None]) -> None:
        """A NotificationWorkflow for each (started once: a repeated start finds it running)."""
        if not rows:
            return
        if self._starter is None:
            from notifications.client import NotificationClient

            self._starter = NotificationClient(activity.client(), self.db, self.settings)
        now = utcnow()

        async def start(row: Any) -> None:
            inp: NotificationInput = input_from_row(row, self.policy)
            inp.enqueuedAt = now.isoformat()
            delay = later.get(row.id)
            if delay:
                inp.sendAt = (now + delay).isoformat()
            await self._starter.start_run(inp)

        for first in range(0, len(rows), 50):
            await asyncio.gather(*(start(r) for r in rows[first : first + 50]))


async def _heartbeat() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)


def _finish(conn: Any, batch: CampaignBatch, outcomes: list[Outcome], run_id: str, started: datetime) -> Any:
    finish_batch(conn, outcomes, run_id, started, utcnow())
    return range_counts(conn, batch)


def _failed(row: Any, key: str, error: DeliveryError) -> Outcome:
    return Outcome(row, key, Status.FAILED.value, error_code=error.code.value, error_message=error.message[:500])


def _push(row: Any) -> PushMessage:
    content = row.content or {}
    return PushMessage(
        notification_id=row.id,
        user_id=row.user_id,
        token=row.recipient,
        title=row.subject or "",
        body=content.get("message") or "",
        data={k: str(v) for k, v in (content.get("data") or {}).items()},
        type=row.type,
        tenant=row.tenant,
        critical=bool(row.critical),
    )
