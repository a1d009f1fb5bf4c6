"""NotificationWorkflow, one per notification: wait while held -> attempt -> sent | failed | cancelled.

Deterministic (jitter is drawn in the activity). What holds it is `workflows.hold`, what it reports
`workflows.state`; `record_status` mirrors to SQL only where the send did not.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

from workflows.fallback import fall_back
from workflows.hold import Refusal, final_failure, parse_time
from workflows.send import ms, start_send
from workflows.state import NotificationState

with workflow.unsafe.imports_passed_through():
    from notifications.types import (
        ATTEMPT_FAILED_SIGNAL,
        CANCEL_UPDATE,
        EXPIRED_ERROR,
        PAUSE_SIGNAL,
        QUIET_HOURS_ERROR,
        QUIET_HOURS_REASON,
        RECIPIENT_SUPPRESSED_ERROR,
        RECORD_STATUS_ACTIVITY,
        RESCHEDULE_UPDATE,
        RESUME_SIGNAL,
        SEND_AT_ATTRIBUTE,
        STATUS_ATTRIBUTE,
        STATUS_QUERY,
        TOO_LATE_ERROR,
        USER_OPTED_OUT_ERROR,
        WORKFLOW_NAME,
        AttemptReport,
        CancelRequest,
        DeliveryPolicy,
        LoggedAttempt,
        NotificationInput,
        PauseRequest,
        RescheduleRequest,
        SendResult,
        Status,
    )


# Patch IDs (`workflow.patched`): histories written before a change replay as they ran.
_RETRY_IF_RESUMED_DURING_ATTEMPT = "retry-if-queue-resumed-during-attempt"
_MIRROR_UNLOGGED_ATTEMPTS = "mirror-unlogged-attempts"


@dataclass
class _Held:
    """The attempt was called off by a pause before it started; it runs again on resume."""


_HELD = _Held()


@workflow.defn(name=WORKFLOW_NAME)
class NotificationWorkflow:
    @workflow.init
    def __init__(self, inp: NotificationInput) -> None:
        self._inp = inp
        self._state = NotificationState(inp.policy or DeliveryPolicy())
        self._state.hold.queue_paused = inp.startPaused
        self._send: workflow.ActivityHandle[SendResult] | None = None
        # When: due at sendAt, given up at expiresAt; `_stop` is set by a cancel or the expiry.
        self._send_at = parse_time(inp.sendAt)
        self._expires_at = parse_time(inp.expiresAt)
        self._state.send_at, self._state.expires_at = inp.sendAt, inp.expiresAt
        if inp.sendAt:  # the client started it with that search attribute
            self._state.status = self._state.published = Status.SCHEDULED
        self._scheduled_mirrored = False
        self._rescheduled = False
        self._stop: Status | None = None
        self._expiry: asyncio.Task[None] | None = None
        self._settled = False  # the outcome is final and mirrored: a cancel may answer

    @workflow.run
    async def run(self, inp: NotificationInput) -> dict[str, Any]:
        self._show()
        if self._expires_at is not None:
            self._expiry = asyncio.create_task(self._expire_at(self._expires_at))
        try:
            await self._deliver()
            await fall_back(self._inp, self._state)  # a push that could not reach its user: its email
        except asyncio.CancelledError:
            if not self._state.status.terminal:
                self._set_status(Status.CANCELLED)
                self._state.completed_at = self._now()
                await self._mirror()
            self._settled = True  # a cancel update waiting meanwhile answers `cancelled`
            raise
        self._settled = True
        await workflow.wait_condition(workflow.all_handlers_finished)  # a cancel's answer goes out first
        return self.status()

    async def _deliver(self) -> None:
        while True:
            if not await self._wait_until_sendable():
                return await self._stopped()
            outcome = await self._attempt()
            if self._stop is not None and not isinstance(outcome, SendResult) and not final_failure(outcome):
                return await self._stopped()  # cancelled or expired, and this attempt did not send
            if outcome is _HELD:
                continue
            if isinstance(outcome, SendResult):
                self._state.sent(outcome)
                self._set_status(Status.SENT)
                if not outcome.mirrored or (self._state.unlogged and workflow.patched(_MIRROR_UNLOGGED_ATTEMPTS)):
                    await self._mirror()
                return
            assert isinstance(outcome, FailureError)
            # A local activity that failed after a retry backoff reaches the workflow as its bare
            # failure (ApplicationError), not wrapped in an ActivityError as on its first try.
            cause = outcome.cause if isinstance(outcome, ActivityError) else outcome
            if isinstance(cause, ApplicationError) and cause.type == EXPIRED_ERROR:
                self._stop = Status.EXPIRED  # the send found it past expiresAt before this timer fired
                return await self._stopped()
            if isinstance(cause, ApplicationError) and cause.type in (USER_OPTED_OUT_ERROR, RECIPIENT_SUPPRESSED_ERROR):
                self._state.failed(cause.type, cause.message, self._now())
                self._set_status(Status.SUPPRESSED)
                return await self._mirror()
            if isinstance(cause, ApplicationError) and cause.type == QUIET_HOURS_ERROR:
                self._defer(QUIET_HOURS_REASON, cause)
                continue
            if self._interrupted(cause):
                continue
            self._fail(cause)
            await self._mirror()
            return

    async def _wait_until_sendable(self) -> bool:
        """Until it is due and nothing holds it: True, or False once cancelled or expired."""
        hold = self._state.hold
        while self._stop is None:
            self._rescheduled = False  # this pass reads the new time
            due = self._due_in()
            if due is not None:
                await self._wait_scheduled(due)
                continue
            if self._became_due() and hold.held:
                await self._mirror()  # SQL says queued (held), not scheduled, while it waits
            if not hold.held:
                return True
            if hold.paused:
                await self._mirror()  # paused=True in SQL; the next attempt start clears it
                await workflow.wait_condition(lambda: not hold.paused or self._interrupts())
                continue
            # Held by a queue-wide pause: `resume` releases it; the timer is a safety net for a
            # resume that missed this workflow (the send re-checks the flag in SQL).
            try:
                await workflow.wait_condition(
                    lambda: not hold.queue_paused or hold.paused or self._interrupts(),
                    timeout=ms(self._state.policy.queuePauseRecheckMs),
                )
            except TimeoutError:
                hold.recheck_elapsed()
        return False

    async def _wait_scheduled(self, due: timedelta) -> None:
        """A durable timer to sendAt (not Temporal's start delay: a reschedule moves it)."""
        if self._state.status != Status.SCHEDULED:
            self._set_status(Status.SCHEDULED, force_publish=True)
        if not self._scheduled_mirrored:
            # The row exists and says scheduled however the enqueue went (database down, a
            # start from the temporal CLI): it may be months before a send would write it.
            self._scheduled_mirrored = True
            await self._mirror()
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(self._interrupts, timeout=due)

    def _defer(self, reason: str, cause: ApplicationError) -> None:
        """Held back by its user's quiet hours: scheduled again, due when they end."""
        self._state.hold.passed_checks()
        until = str(cause.details[0]["until"])
        # at least a moment later: the worker's clock may be a little behind the server's
        self._send_at = max(parse_time(until) or workflow.now(), workflow.now() + timedelta(seconds=1))
        self._state.send_at, self._state.deferred_reason = until, reason
        workflow.upsert_search_attributes([SEND_AT_ATTRIBUTE.value_set(self._send_at)])
        self._scheduled_mirrored = False

    def _became_due(self) -> bool:
        """True when a scheduled notification has just become due: from here on it is queued."""
        if self._due_in() is not None or self._state.status != Status.SCHEDULED:
            return False
        self._send_at = None
        self._set_status(Status.QUEUED, force_publish=True)
        return True

    def _interrupts(self) -> bool:
        """A wait ends early: the notification was rescheduled, cancelled or expired."""
        return self._rescheduled or self._stop is not None

    def _due_in(self) -> timedelta | None:
        if self._send_at is None:
            return None
        left = self._send_at - workflow.now()
        return left if left > timedelta(0) else None

    async def _expire_at(self, at: datetime) -> None:
        """Not sent by expiresAt: it ends `expired`. A send in flight finishes; a retry waiting
        for its backoff is called off, as a pause calls it off."""
        await workflow.sleep(max(at - workflow.now(), ms(1)))
        if self._stop is None and not self._state.status.terminal:
            self._stop = Status.EXPIRED
            if self._send is not None:
                self._send.cancel()

    async def _stopped(self) -> None:
        """End as the cancel or the expiry decided: never sent."""
        now = self._now()
        if self._stop == Status.EXPIRED:
            self._state.failed(EXPIRED_ERROR, "not sent before its expiresAt", now)
        else:
            self._state.completed_at = now
            self._state.next_retry_at = None
        self._set_status(self._stop or Status.CANCELLED)
        await self._mirror()

    async def _attempt(self) -> SendResult | FailureError | _Held:
        inp, policy = self._inp, self._state.policy
        self._set_status(Status.RETRYING)
        flags = self._state.hold.start_attempt()
        self._send = start_send(inp, policy, self._state.attempts, flags)
        self._show()
        try:
            return await self._send
        except FailureError as err:
            return err
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if (self._state.hold.attempt.paused or self._stop is not None) and not (task and task.cancelling()):
                return _HELD  # a pause, cancel or expiry called off the retry timer: no attempt was made
            raise
        finally:
            self._send = None

    def _interrupted(self, cause: BaseException | None) -> bool:
        """True when the attempt ended because sending is on hold, not because it failed for good."""
        hold = self._state.hold
        refusal = Refusal.of(cause.type if isinstance(cause, ApplicationError) else None)
        if refusal is not Refusal.QUEUE_PAUSED:
            hold.passed_checks()
        if refusal is not None:
            # Refused before it started: its queue is paused, or it was paused through the client
            # while this send waited in the worker (the `pause` signal follows).
            assert isinstance(cause, ApplicationError)
            made = cause.details[0].get("attemptsMade", 0) if cause.details else 0
            self._state.attempts = max(self._state.attempts, int(made))
            retry_at_once = (
                refusal is Refusal.QUEUE_PAUSED
                and hold.attempt.queue_resumed
                and workflow.patched(_RETRY_IF_RESUMED_DURING_ATTEMPT)
            )
            hold.refused(refusal, retry_at_once=retry_at_once)
            self._show()
            return True
        if hold.attempt.paused:
            if isinstance(cause, ApplicationError) and not cause.non_retryable:
                self._note_failed_attempt(cause)  # the in-flight attempt failed; its retry waits for resume
                return True
            if isinstance(cause, CancelledError):
                return True
        return False

    def _fail(self, cause: BaseException | None) -> None:
        if isinstance(cause, ApplicationError):
            self._note_failed_attempt(cause)
            self._state.failed(cause.type or "SEND_FAILED", cause.message, self._now())
        else:
            self._state.failed("SEND_FAILED", str(cause), self._now())
        self._set_status(Status.FAILED)

    def _note_failed_attempt(self, cause: ApplicationError) -> None:
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        if isinstance(details.get("unlogged"), dict):
            self._state.note_unlogged(LoggedAttempt(**details["unlogged"]))
        attempt = details.get("attempt")
        self._state.attempt_failed(int(attempt) if attempt is not None else None, cause.type, cause.message)

    async def _mirror(self) -> None:
        """Write this workflow's view to SQL, retrying until the database answers."""
        update = self._state.status_update(self._inp)
        await workflow.execute_activity(
            RECORD_STATUS_ACTIVITY,
            update,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1), maximum_interval=ms(self._state.policy.mirrorRetryMaxMs)
            ),
            summary=f"mirror status {self._state.status.value} to SQL",
        )
        self._state.forget_logged(update.attemptLog)

    # -- messages ------------------------------------------------------------------------------
    @workflow.signal(name=PAUSE_SIGNAL)
    def pause(self, request: PauseRequest | None = None) -> None:
        """Hold sending. scope "queue" comes from a queue-wide pause; anything else pauses this one."""
        pending = self._send is not None and not self._send.done()
        scope, reason = (request.scope, request.reason) if request else (None, None)
        if self._state.hold.pause(scope, reason, send_pending=pending) and self._send is not None:
            self._send.cancel()  # a retry waiting for its backoff stops at once; a send in flight finishes
        self._show()

    @workflow.signal(name=RESUME_SIGNAL)
    def resume(self, request: PauseRequest | None = None) -> None:
        self._state.hold.resume(request.scope if request else None)
        self._show()

    @workflow.update(name=RESCHEDULE_UPDATE)
    async def reschedule(self, request: RescheduleRequest) -> dict[str, Any]:
        """Move a notification's sendAt, before its first attempt (`temporal workflow update execute`)."""
        self._send_at = send_at = parse_time(request.sendAt)
        assert send_at is not None
        self._state.send_at, self._state.deferred_reason = request.sendAt, None
        workflow.upsert_search_attributes([SEND_AT_ATTRIBUTE.value_set(send_at)])
        if self._due_in() is not None:
            self._set_status(Status.SCHEDULED, force_publish=True)
        else:
            self._became_due()
        self._scheduled_mirrored = True
        await self._mirror()  # SQL has the new time before the flow acts on it
        self._rescheduled = True
        return self.status()

    @reschedule.validator
    def _may_reschedule(self, request: RescheduleRequest) -> None:
        self._refuse_if_ended()
        if self._stop is not None:
            raise ApplicationError(f"notification is being {self._stop.value}", type=TOO_LATE_ERROR)
        if self._send is not None or self._state.attempts:
            raise ApplicationError("a send attempt has already started", type=TOO_LATE_ERROR)
        parse_time(request.sendAt)  # a malformed time is refused here, before the update is accepted

    @workflow.update(name=CANCEL_UPDATE)
    async def cancel(self, request: CancelRequest | None = None) -> dict[str, Any]:
        """End it unsent; answers once that is certain. A send already in flight is let finish:
        if it delivered, the cancel fails with the notification's status (the API's 409)."""
        if self._stop is None:
            self._stop = Status.CANCELLED
        if self._send is not None:
            self._send.cancel()  # a retry waiting for its backoff stops at once
        await workflow.wait_condition(lambda: self._settled)
        if self._state.status != Status.CANCELLED:
            raise ApplicationError(f"notification is {self._state.status.value}", type=TOO_LATE_ERROR)
        return self.status()

    @cancel.validator
    def _may_cancel(self, request: CancelRequest | None = None) -> None:
        self._refuse_if_ended()

    def _refuse_if_ended(self) -> None:
        if self._state.status.terminal:
            raise ApplicationError(f"notification is already {self._state.status.value}", type=TOO_LATE_ERROR)

    @workflow.signal(name=ATTEMPT_FAILED_SIGNAL)
    def attempt_failed(self, report: AttemptReport) -> None:
        """Sent by the send activity after a retryable failure (internal)."""
        if self._state.reported(report):
            self._set_status(Status.RETRYING, force_publish=True)

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> dict[str, Any]:
        info = workflow.info()
        return self._state.query(self._inp, info.workflow_id, info.run_id, info.start_time.isoformat())

    # -- helpers --------------------------------------------------------------------------------
    def _set_status(self, status: Status, *, force_publish: bool = False) -> None:
        if self._state.set_status(status, self._now(), force_publish=force_publish):
            workflow.upsert_search_attributes([STATUS_ATTRIBUTE.value_set(status.value)])
        self._show()

    def _show(self) -> None:
        workflow.set_current_details(self._state.details())

    @staticmethod
    def _now() -> str:
        return workflow.now().isoformat()
