"""How the workflow starts one send: a local activity with the notification's own retry schedule."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.hold import AttemptFlags

with workflow.unsafe.imports_passed_through():
    from notifications.redact import mask_recipient
    from notifications.types import (
        SEND_EMAIL_ACTIVITY,
        SEND_PUSH_ACTIVITY,
        Channel,
        DeliveryPolicy,
        NotificationInput,
        SendInput,
        SendResult,
    )

# A retry backoff longer than this runs as a workflow timer, not a sleep in the worker: durable
# across a worker crash, cancellable by `pause`, visible in the history.
_RETRY_AS_TIMER = timedelta(milliseconds=1)


def ms(value: int) -> timedelta:
    return timedelta(milliseconds=value)


def start_send(
    inp: NotificationInput, policy: DeliveryPolicy, attempts: int, flags: AttemptFlags
) -> workflow.ActivityHandle[SendResult]:
    """The send after `attempts` made: Temporal retries it (`maxAttempts` in all) with backoff."""
    return workflow.start_local_activity(
        SEND_EMAIL_ACTIVITY if inp.channel == Channel.EMAIL else SEND_PUSH_ACTIVITY,
        SendInput(
            notification=inp,
            attemptOffset=attempts,
            afterResume=flags.after_resume,
            queueRecheck=flags.queue_recheck,
        ),
        result_type=SendResult,
        # the provider call is bounded by sendTimeoutMs; the send may first wait up to about
        # as long for a provider slot (EMAIL_CONCURRENCY / PUSH_CONCURRENCY)
        start_to_close_timeout=ms(2 * policy.sendTimeoutMs),
        retry_policy=RetryPolicy(
            initial_interval=ms(policy.baseDelayMs),
            backoff_coefficient=2.0,
            maximum_interval=ms(policy.maxDelayMs),
            maximum_attempts=max(1, policy.maxAttempts - attempts),
        ),
        local_retry_threshold=_RETRY_AS_TIMER,
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary=f"send {inp.channel} to {mask_recipient(inp.channel, inp.to, inp.token, inp.userId)} "
        f"(attempt {attempts + 1}+)",
    )
