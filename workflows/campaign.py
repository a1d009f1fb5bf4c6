"""CampaignWorkflow, one per campaign: wait for sendAt -> walk its recipients by ranges of
`campaign_seq`, a bounded number of batches in flight -> completed | cancelled.

The workflow never sees a recipient: a batch activity claims its range in SQL and sends it
through the provider's batch calls. Its history grows by a few events per batch; it continues
as new every `batchesPerRun` batches (or when Temporal suggests it).
"""

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from notifications.campaign_types import (
        BATCH_HEARTBEAT_TIMEOUT_SECONDS,
        CAMPAIGN_WORKFLOW_NAME,
        PROGRESS_QUERY,
        RECORD_CAMPAIGN_ACTIVITY,
        SEND_CAMPAIGN_BATCH_ACTIVITY,
        CampaignBatch,
        CampaignBatchResult,
        CampaignInput,
        CampaignStatus,
        CampaignUpdate,
    )
    from notifications.types import PAUSE_SIGNAL, RESUME_SIGNAL, PauseRequest

_BATCH_TIMEOUT = timedelta(minutes=2)
# A batch activity decides itself when its recipients' attempts are used up; Temporal retries
# only crashes and outages (database down), for as long as they last.
_BATCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
_RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
_BROKEN_BATCH_WAIT = timedelta(seconds=60)


@workflow.defn(name=CAMPAIGN_WORKFLOW_NAME)
class CampaignWorkflow:
    @workflow.init
    def __init__(self, inp: CampaignInput) -> None:
        self._inp = inp
        self._next = inp.nextSeq
        self._counts = inp.counts
        self._paused = inp.paused
        self._queue_paused = inp.queuePaused
        self._in_flight: set[int] = set()
        self._again: list[tuple[int, int]] = [(r[0], r[1]) for r in inp.again]  # ranges a queue pause sent back
        self._status = CampaignStatus.RUNNING if inp.startedAt or not inp.sendAt else CampaignStatus.SCHEDULED
        # The client wrote the status the campaign starts with; a run continued as new wrote its own.
        self._mirrored: CampaignStatus | None = self._status
        self._tasks: set[asyncio.Task[None]] = set()
        self._batches = 0
        self._paced_from: datetime | None = None
        self._paced = 0

    @workflow.run
    async def run(self, inp: CampaignInput) -> dict[str, Any]:
        try:
            if inp.startedAt is None:
                await self._wait_for_send_at()
                inp.startedAt = workflow.now().isoformat()
            if not await self._send_all():
                workflow.continue_as_new(self._carried())
        except BaseException as exc:
            # A cancel reaches the run as CancelledError, or as the failure of the activity it awaited.
            if not (isinstance(exc, asyncio.CancelledError) or is_cancelled_exception(exc)):
                raise
            await workflow.wait_condition(lambda: not self._in_flight)  # a batch in flight finishes its sends
            self._status = CampaignStatus.CANCELLED
            await self._record(completed=True, cancel_remaining=True)
            raise
        self._status = CampaignStatus.COMPLETED
        await self._record(completed=True)
        self._show()
        return self.progress()

    async def _wait_for_send_at(self) -> None:
        delay = datetime.fromisoformat(self._inp.sendAt) - workflow.now() if self._inp.sendAt else timedelta(0)
        if delay > timedelta(0):
            self._status = CampaignStatus.SCHEDULED
            await self._record()
            await workflow.sleep(delay, summary="until sendAt")

    async def _send_all(self) -> bool:
        """True once every range ran; False when this run's history is long enough to continue as new."""
        while True:
            await workflow.wait_condition(lambda: not self._in_flight or (self._has_work() and self._slot_free()))
            if not self._has_work():
                if not self._in_flight:
                    return True
                continue
            if self._batches >= self._inp.batchesPerRun or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(lambda: not self._in_flight)
                return False
            await self._wait_until_sendable()
            await self._pace()
            if self._has_work() and self._slot_free() and not (self._paused or self._queue_paused):
                self._launch(self._take())

    def _has_work(self) -> bool:
        return bool(self._again) or self._next <= self._inp.lastSeq

    def _slot_free(self) -> bool:
        return len(self._in_flight) < self._inp.maxInFlight

    def _take(self) -> tuple[int, int]:
        if self._again:
            return self._again.pop(0)
        first = self._next
        self._next = min(first + self._inp.batchSize, self._inp.lastSeq + 1)
        return first, self._next - 1

    async def _wait_until_sendable(self) -> None:
        """While the campaign or its channel's queue is paused; the status is mirrored either way."""
        while self._paused or self._queue_paused:
            self._status = CampaignStatus.PAUSED
            await self._record()
            if self._paused:
                await workflow.wait_condition(lambda: not self._paused)
                continue
            recheck = timedelta(milliseconds=self._inp.queuePauseRecheckMs)
            try:  # the resume signal ends it; else the next batch asks SQL again
                await workflow.wait_condition(lambda: not self._queue_paused or self._paused, timeout=recheck)
            except TimeoutError:
                self._queue_paused = False
        if self._status != CampaignStatus.RUNNING:
            self._status = CampaignStatus.RUNNING
            self._paced_from = None  # no burst to catch up after a pause
        await self._record()

    async def _pace(self) -> None:
        """At most `rateLimitPerSecond` recipients a second, measured from the first batch launched."""
        rate = self._inp.rateLimitPerSecond
        if not rate:
            return
        if self._paced_from is None:
            self._paced_from, self._paced = workflow.now(), 0
        due = self._paced_from + timedelta(seconds=self._paced / rate)
        if due > workflow.now():
            await workflow.sleep(due - workflow.now())

    def _launch(self, seqs: tuple[int, int]) -> None:
        self._in_flight.add(seqs[0])
        self._batches += 1
        self._paced += seqs[1] - seqs[0] + 1
        task = asyncio.create_task(self._batch(*seqs))
        self._tasks.add(task)  # a task only the loop refers to may be collected before it ends
        task.add_done_callback(self._tasks.discard)

    async def _batch(self, first: int, last: int) -> None:
        batch = CampaignBatch(self._inp.campaignId, self._inp.channel, first, last, self._inp.maxAttempts)
        try:
            result = await workflow.execute_activity(
                SEND_CAMPAIGN_BATCH_ACTIVITY,
                batch,
                result_type=CampaignBatchResult,
                start_to_close_timeout=_BATCH_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=BATCH_HEARTBEAT_TIMEOUT_SECONDS),
                retry_policy=_BATCH_RETRY,
                summary=f"recipients {first}-{last}",
            )
        except ActivityError as exc:  # a defect, not an outage: kept, and tried again later
            workflow.logger.error("campaign batch %s-%s failed: %s", first, last, exc.cause or exc)
            await workflow.sleep(_BROKEN_BATCH_WAIT)
            self._again.append((first, last))
        else:
            if result.queuePaused:
                self._queue_paused = True
                self._again.append((first, last))
            self._counts.add(result.counts)
        finally:
            self._in_flight.discard(first)
            self._show()

    async def _record(self, *, completed: bool = False, cancel_remaining: bool = False) -> None:
        if self._status == self._mirrored and not completed:
            return
        self._mirrored = self._status
        await workflow.execute_activity(
            RECORD_CAMPAIGN_ACTIVITY,
            CampaignUpdate(
                self._inp.campaignId,
                self._status.value,
                startedAt=self._inp.startedAt,
                completedAt=workflow.now().isoformat() if completed else None,
                cancelRemaining=cancel_remaining,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_RECORD_RETRY,
        )
        self._show()

    def _carried(self) -> CampaignInput:
        return dataclasses.replace(
            self._inp,
            nextSeq=self._next,
            counts=self._counts,
            paused=self._paused,
            queuePaused=self._queue_paused,
            again=[[first, last] for first, last in self._again],
        )

    def _show(self) -> None:
        c = self._counts
        workflow.set_current_details(
            f"**Campaign** `{self._inp.campaignId}` · {self._inp.channel} · **{self._status.value}**\n\n"
            f"**Recipients:** {self._inp.total or self._inp.lastSeq} · **sent** {c.sent} · **failed** {c.failed} · "
            f"**suppressed** {c.suppressed} · **expired** {c.expired} · **own workflow** {c.handedOff}\n\n"
            f"**Next recipient:** {self._next} · **batches in flight:** {len(self._in_flight)}"
        )

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> dict[str, Any]:
        c = self._counts
        return {
            "campaignId": self._inp.campaignId,
            "status": self._status.value,
            "total": self._inp.total or self._inp.lastSeq,
            "nextSeq": self._next,
            "inFlight": len(self._in_flight),
            "sent": c.sent,
            "failed": c.failed,
            "suppressed": c.suppressed,
            "expired": c.expired,
            "handedOff": c.handedOff,
            "startedAt": self._inp.startedAt,
            "paused": self._paused,
            "queuePaused": self._queue_paused,
        }

    @workflow.signal(name=PAUSE_SIGNAL)
    def pause(self, request: PauseRequest | None = None) -> None:
        """Scope "workflow" (default): this campaign; "queue": its channel's queue-wide pause."""
        if request is not None and request.scope == "queue":
            self._queue_paused = True
        else:
            self._paused = True

    @workflow.signal(name=RESUME_SIGNAL)
    def resume(self, request: PauseRequest | None = None) -> None:
        if request is not None and request.scope == "queue":
            self._queue_paused = False
        else:
            self._paused = False
