"""NotificationWorkflow: one durable workflow per notification.

    queued -> [pause gate] -> send local activity (RetryPolicy + jittered next_retry_delay)
           -> sent | failed | cancelled

Deterministic by construction: no I/O, clocks or randomness here (jitter is drawn
in the activity). The send runs as a *local* activity: it sends and writes its
SQL rows in the worker that runs this workflow, so a delivered notification costs
one workflow task and one marker event instead of an activity task's round trip
through the server (issue 6: about 7 history events instead of 12). Every retry
backoff is a durable workflow timer (`local_retry_threshold` of 1 ms), so a
pause cancels a waiting retry and the Web UI shows each one. The SQL mirror is
written by the send; this workflow only calls `record_status` (a normal
activity) where the send did not (pause, cancel, a final failure, or a send
whose own SQL write failed), so the happy path costs that one local activity.
Signals `pause` / `resume` hold or release sends; query `status` returns the
same camelCase fields as the SQL record.
"""

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from notifications.redact import mask_recipient
    from notifications.types import (
        NOTIFICATION_PAUSED_ERROR,
        QUEUE_PAUSED_ERROR,
        RECORD_STATUS_ACTIVITY,
        SEND_EMAIL_ACTIVITY,
        SEND_PUSH_ACTIVITY,
        STATUS_ATTRIBUTE,
        WORKFLOW_NAME,
        AttemptReport,
        Channel,
        DeliveryPolicy,
        LoggedAttempt,
        NotificationInput,
        PauseRequest,
        SendInput,
        SendResult,
        Status,
        StatusUpdate,
    )


# Any retry backoff longer than this runs as a workflow timer rather than a sleep inside the
# worker: durable across a worker crash, cancellable by `pause`, visible in the history.
_RETRY_AS_TIMER = timedelta(milliseconds=1)

# Patch IDs (`workflow.patched`): histories written before a change replay as they ran.
_RETRY_IF_RESUMED_DURING_ATTEMPT = "retry-if-queue-resumed-during-attempt"
_MIRROR_UNLOGGED_ATTEMPTS = "mirror-unlogged-attempts"


def _ms(value: int) -> timedelta:
    return timedelta(milliseconds=value)


class _HeldByPause(Exception):
    """The send was called off by a pause before it started; it runs again on resume."""


@workflow.defn(name=WORKFLOW_NAME)
class NotificationWorkflow:
    @workflow.init
    def __init__(self, inp: NotificationInput) -> None:
        self._inp = inp
        self._policy = inp.policy or DeliveryPolicy()
        self._status = Status.QUEUED
        self._published_status = Status.QUEUED  # the value of the NotificationStatus search attribute
        self._paused = False
        self._pause_reason: str | None = None
        self._queue_paused = inp.startPaused
        self._attempts = 0
        self._last_attempt_at: str | None = None
        self._next_retry_at: str | None = None
        self._error_code: str | None = None
        self._error_message: str | None = None
        self._provider: str | None = None
        self._message_id: str | None = None
        self._completed_at: str | None = None
        self._updated_at: str | None = None
        self._send: workflow.ActivityHandle[SendResult] | None = None
        self._cancelled_for_pause = False
        self._resumed = False  # resumed since the last attempt started: the SQL pause flag is stale
        self._queue_resumed_in_attempt = False  # a queue-wide resume came since the attempt started
        self._queue_recheck = False  # the recheck timer, not a resume, ended the last queue hold
        self._unlogged: dict[int, LoggedAttempt] = {}  # attempts whose delivery-log rows SQL did not take

    # -- entry point -----------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: NotificationInput) -> dict[str, Any]:
        self._refresh_details()
        try:
            await self._deliver()
        except asyncio.CancelledError:
            if not self._status.terminal:
                self._set_status(Status.CANCELLED)
                self._completed_at = self._now()
                await self._mirror()
            raise
        return self.status()

    async def _deliver(self) -> None:
        while True:
            await self._wait_while_paused()
            try:
                result = await self._attempt()
            except _HeldByPause:
                continue
            except FailureError as err:
                # A local activity that failed after a retry backoff reaches the workflow as its bare
                # failure (ApplicationError), not wrapped in an ActivityError as on its first try.
                cause = err.cause if isinstance(err, ActivityError) else err
                if not (isinstance(cause, ApplicationError) and cause.type == QUEUE_PAUSED_ERROR):
                    self._resumed = False  # the attempt got past the pause checks
                if self._handle_interruption(cause):
                    continue
                self._fail(cause)
                await self._mirror()
                return
            self._succeed(result)
            if not result.mirrored or (self._unlogged and workflow.patched(_MIRROR_UNLOGGED_ATTEMPTS)):
                await self._mirror()
            return

    async def _wait_while_paused(self) -> None:
        while self._paused or self._queue_paused:
            if self._paused:
                await self._mirror()  # paused=True in SQL; the next attempt start clears it
                await workflow.wait_condition(lambda: not self._paused)
                continue
            # Held by a queue-wide pause: the `resume` signal releases it; the timeout is a
            # safety net for a resume that missed this workflow (the send re-checks SQL).
            try:
                await workflow.wait_condition(
                    lambda: not self._queue_paused or self._paused,
                    timeout=_ms(self._policy.queuePauseRecheckMs),
                )
            except TimeoutError:
                self._queue_paused = False
                self._queue_recheck = True

    async def _attempt(self) -> SendResult:
        inp = self._inp
        email = inp.channel == Channel.EMAIL
        self._set_status(Status.RETRYING)
        remaining = max(1, self._policy.maxAttempts - self._attempts)
        self._cancelled_for_pause = False
        self._queue_resumed_in_attempt = False
        recheck, self._queue_recheck = self._queue_recheck, False
        self._send = workflow.start_local_activity(
            SEND_EMAIL_ACTIVITY if email else SEND_PUSH_ACTIVITY,
            SendInput(
                notification=self._inp,
                attemptOffset=self._attempts,
                afterResume=self._resumed,
                queueRecheck=recheck,
            ),
            result_type=SendResult,
            # the provider call is bounded by sendTimeoutMs; the send may first wait up to about
            # as long for a provider slot (EMAIL_CONCURRENCY / PUSH_CONCURRENCY)
            start_to_close_timeout=_ms(2 * self._policy.sendTimeoutMs),
            retry_policy=RetryPolicy(
                initial_interval=_ms(self._policy.baseDelayMs),
                backoff_coefficient=2.0,
                maximum_interval=_ms(self._policy.maxDelayMs),
                maximum_attempts=remaining,
            ),
            local_retry_threshold=_RETRY_AS_TIMER,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"send {inp.channel} to {mask_recipient(inp.channel, inp.to, inp.token, inp.userId)} "
            f"(attempt {self._attempts + 1}+)",
        )
        self._refresh_details()
        try:
            return await self._send
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._cancelled_for_pause and not (task and task.cancelling()):
                # A pause cancelled the retry timer: the attempt was not made, resume starts it again.
                raise _HeldByPause() from None
            raise
        finally:
            self._send = None

    def _handle_interruption(self, cause: BaseException | None) -> bool:
        """True when the activity ended because sending is on hold, not because it failed for good."""
        if isinstance(cause, ApplicationError) and cause.type in (NOTIFICATION_PAUSED_ERROR, QUEUE_PAUSED_ERROR):
            # Refused before it started: its queue is paused, or it was paused through the client
            # while this send waited in the worker (the `pause` signal follows).
            made = cause.details[0].get("attemptsMade", 0) if cause.details else 0
            self._attempts = max(self._attempts, int(made))
            if cause.type == NOTIFICATION_PAUSED_ERROR:
                self._paused = True
            elif not (self._queue_resumed_in_attempt and workflow.patched(_RETRY_IF_RESUMED_DURING_ATTEMPT)):
                self._queue_paused = True
            # else the queue was resumed while the attempt read the flag from before: the next
            # attempt reads it again at once, rather than holding until the recheck timer
            self._refresh_details()
            return True
        if self._cancelled_for_pause:
            if isinstance(cause, ApplicationError) and not cause.non_retryable:
                self._note_failed_attempt(cause)  # the in-flight attempt failed; its retry waits for resume
                return True
            if isinstance(cause, CancelledError):
                return True
        return False

    # -- outcomes -------------------------------------------------------------------------
    def _succeed(self, result: SendResult) -> None:
        self._note_unlogged(result.unlogged)
        self._attempts = max(self._attempts, result.attempt)
        self._provider = result.provider
        self._message_id = result.providerMessageId
        self._completed_at = self._last_attempt_at = result.completedAt
        self._error_code = self._error_message = self._next_retry_at = None
        self._set_status(Status.SENT)

    def _fail(self, cause: BaseException | None) -> None:
        if isinstance(cause, ApplicationError):
            self._note_failed_attempt(cause)
            self._error_code = cause.type or "SEND_FAILED"
            self._error_message = cause.message
        else:
            self._error_code = "SEND_FAILED"
            self._error_message = str(cause)
        self._next_retry_at = None
        self._completed_at = self._now()
        self._set_status(Status.FAILED)

    def _note_failed_attempt(self, cause: ApplicationError) -> None:
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        if isinstance(details.get("unlogged"), dict):
            self._note_unlogged(LoggedAttempt(**details["unlogged"]))
        self._attempts = max(self._attempts, int(details.get("attempt", self._attempts)))
        self._error_code = cause.type
        self._error_message = cause.message

    def _note_unlogged(self, entry: LoggedAttempt | None) -> None:
        if entry is not None:
            self._unlogged[entry.attempt] = entry

    async def _mirror(self) -> None:
        """Write this workflow's view to SQL, retrying until the database answers."""
        written = list(self._unlogged.values())
        await workflow.execute_activity(
            RECORD_STATUS_ACTIVITY,
            StatusUpdate(
                notification=self._inp,
                status=self._status.value,
                attempts=self._attempts,
                paused=self._paused,
                errorCode=self._error_code,
                errorMessage=self._error_message,
                provider=self._provider,
                providerMessageId=self._message_id,
                lastAttemptAt=self._last_attempt_at,
                completedAt=self._completed_at,
                nextRetryAt=self._next_retry_at,
                attemptLog=written,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1), maximum_interval=_ms(self._policy.mirrorRetryMaxMs)
            ),
            summary=f"mirror status {self._status.value} to SQL",
        )
        for entry in written:
            if self._unlogged.get(entry.attempt) is entry:
                del self._unlogged[entry.attempt]

    # -- messages ------------------------------------------------------------------------------
    @workflow.signal
    def pause(self, request: PauseRequest | None = None) -> None:
        """Hold sending. scope "queue" comes from a queue-wide pause; anything else pauses this one."""
        if request is not None and request.scope == "queue":
            self._queue_paused = True
        else:
            self._paused = True
            self._pause_reason = request.reason if request else None
            if self._send is not None and not self._send.done():
                # A retry waiting for its backoff is cancelled at once; a send in flight finishes.
                self._cancelled_for_pause = True
                self._send.cancel()
        self._refresh_details()

    @workflow.signal
    def resume(self, request: PauseRequest | None = None) -> None:
        if request is not None and request.scope == "queue":
            self._queue_paused = False
            self._queue_resumed_in_attempt = True
        else:
            self._paused = False
            self._pause_reason = None
            self._resumed = True
        self._refresh_details()

    @workflow.signal(name="attempt_failed")
    def attempt_failed(self, report: AttemptReport) -> None:
        """Sent by the send activity after a retryable failure (internal)."""
        self._note_unlogged(report.unlogged)
        if report.attempt < self._attempts or self._status.terminal:
            return
        self._attempts = report.attempt
        self._last_attempt_at = report.attemptedAt
        self._next_retry_at = report.nextRetryAt
        self._error_code = report.errorCode
        self._error_message = report.errorMessage
        self._set_status(Status.RETRYING, force_publish=True)

    @workflow.query
    def status(self) -> dict[str, Any]:
        inp = self._inp
        info = workflow.info()
        return {
            "notificationId": inp.notificationId,
            "workflowId": info.workflow_id,
            "runId": info.run_id,
            "channel": inp.channel,
            "type": inp.type,
            "priority": inp.priority,
            "userId": inp.userId,
            "tenant": inp.tenant,
            "status": self._status.value,
            "paused": self._paused,
            "queuePaused": self._queue_paused,
            "pauseReason": self._pause_reason,
            "attempts": self._attempts,
            "maxAttempts": self._policy.maxAttempts,
            "lastAttemptAt": self._last_attempt_at,
            "nextRetryAt": self._next_retry_at,
            "errorCode": self._error_code,
            "errorMessage": self._error_message,
            "provider": self._provider,
            "messageId": self._message_id,
            "completedAt": self._completed_at,
            "createdAt": inp.enqueuedAt or info.start_time.isoformat(),
            "updatedAt": self._updated_at or info.start_time.isoformat(),
        }

    # -- helpers --------------------------------------------------------------------------------
    def _set_status(self, status: Status, *, force_publish: bool = False) -> None:
        self._status = status
        self._updated_at = self._now()
        # The search attribute follows the seed's statuses; 'retrying' is published only once a
        # retry is really pending, so the happy path costs a single upsert (to 'sent').
        publish = status.terminal or force_publish
        if publish and status != self._published_status:
            workflow.upsert_search_attributes([STATUS_ATTRIBUTE.value_set(status.value)])
            self._published_status = status
        self._refresh_details()

    def _refresh_details(self) -> None:
        lines = [f"**Status:** {self._status.value}"]
        if self._attempts:
            lines.append(f"**Attempt:** {self._attempts} of {self._policy.maxAttempts}")
        if self._next_retry_at and not self._status.terminal:
            lines.append(f"**Next retry:** {self._next_retry_at}")
        held = "by this notification" if self._paused else "by the queue" if self._queue_paused else ""
        lines.append(f"**Paused:** {'yes, ' + held if held else 'no'}")
        if self._error_code:
            lines.append(f"**Last error:** {self._error_code}: {self._error_message or ''}")
        if self._message_id:
            lines.append(f"**Provider message:** {self._provider} {self._message_id}")
        workflow.set_current_details("\n\n".join(lines))

    @staticmethod
    def _now() -> str:
        return workflow.now().isoformat()
