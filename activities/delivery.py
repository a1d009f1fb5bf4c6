"""The send activities, thin: each runs one attempt (activities.attempt) in its channel's provider slot."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from temporalio import activity
from temporalio.common import MetricMeter

from activities.attempt import AttemptPipeline
from activities.metrics import DeliveryMetrics
from activities.providers import Providers
from activities.slots import Slot
from notifications.config import Settings
from notifications.sql import store
from notifications.sql.engine import Database
from notifications.types import (
    RECORD_STATUS_ACTIVITY,
    SEND_EMAIL_ACTIVITY,
    SEND_PUSH_ACTIVITY,
    Channel,
    SendInput,
    SendResult,
    StatusUpdate,
)

log = logging.getLogger("notifications.delivery")


class DeliveryActivities:
    """Activities bound to one worker's database and providers (one client per worker)."""

    def __init__(
        self, settings: Settings, db: Database, providers: Providers, metrics: DeliveryMetrics | None = None
    ) -> None:
        self.db = db
        self.providers = providers
        self.pipeline = AttemptPipeline(settings, db, providers, metrics or DeliveryMetrics(MetricMeter.noop))
        self._provider_slots = {
            Channel.EMAIL.value: asyncio.Semaphore(settings.email_concurrency),
            Channel.PUSH.value: asyncio.Semaphore(settings.push_concurrency),
        }

    @activity.defn(name=SEND_EMAIL_ACTIVITY)
    async def send_email(self, inp: SendInput) -> SendResult:
        return await self._send(inp)

    @activity.defn(name=SEND_PUSH_ACTIVITY)
    async def send_push(self, inp: SendInput) -> SendResult:
        return await self._send(inp)

    @activity.defn(name=RECORD_STATUS_ACTIVITY)
    async def record_status(self, update: StatusUpdate) -> None:
        await store.record_status(self.db, update, run_id=activity.info().workflow_run_id)

    # ------------------------------------------------------------------------------------
    async def _send(self, inp: SendInput) -> SendResult:
        # The worker runs twice as many sends as EMAIL_CONCURRENCY / PUSH_CONCURRENCY; a send
        # takes its channel's slot before its attempt opens (so the attempts in progress never
        # outnumber the setting, and the pause checks at attempt start come after any wait) and
        # gives it back once the provider has answered, so closing the attempt in SQL overlaps
        # the next send's provider call (docs/decisions/0013).
        async with Slot(self._provider_slots[inp.notification.channel]) as slot:
            return await _finish_in_flight(self.pipeline.run(inp, slot))


async def _finish_in_flight(attempt: Coroutine[Any, Any, SendResult]) -> SendResult:
    """Run one attempt to its end even if the workflow cancels it meanwhile.

    The sends run as local activities, and a local activity is cancelled in
    the worker at once (a normal one only learns of it through a heartbeat). A
    pause must not cut a provider call in half: that could send the message
    and lose the record of it. The attempt finishes, and its result, success
    or failure, goes back to the workflow.
    """
    task = asyncio.ensure_future(attempt)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            log.info("cancel requested while a send is in flight: letting it finish")
