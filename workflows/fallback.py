"""After a push that could not reach its user: the email its payload names, a notification of its own.

The push keeps its status (`failed` or `suppressed`); an activity enqueues the email under the
ID `<notificationId>-fallback-email`, so a retried activity or a replayed history starts it once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.send import ms
from workflows.state import NotificationState

with workflow.unsafe.imports_passed_through():
    from notifications.types import (
        ENQUEUE_FALLBACK_ACTIVITY,
        FALLBACK_ERROR_CODES,
        Channel,
        NotificationInput,
        Status,
    )

# Patch ID (`workflow.patched`): a history recorded before the fallback existed replays without it.
CHANNEL_FALLBACK = "channel-fallback"


def falls_back(inp: NotificationInput, state: NotificationState) -> bool:
    """A push with a fallback that ended suppressed, or failed because its recipient cannot be reached."""
    if inp.fallback is None or inp.channel != Channel.PUSH:
        return False
    if state.status == Status.SUPPRESSED:
        return True
    return state.status == Status.FAILED and state.error_code in FALLBACK_ERROR_CODES


async def fall_back(inp: NotificationInput, state: NotificationState) -> None:
    """Enqueue the push's fallback email when its end calls for one; its ID goes to the `status` query."""
    if not falls_back(inp, state) or not workflow.patched(CHANNEL_FALLBACK):
        return
    try:
        # Retried like the SQL mirror, until the database and Temporal answer: an outage must not
        # lose the email. A refusal (its ID taken by another notification) ends the push as it is.
        state.fallback_id = await workflow.execute_activity(
            ENQUEUE_FALLBACK_ACTIVITY,
            inp,
            result_type=str,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1), maximum_interval=ms(state.policy.mirrorRetryMaxMs)
            ),
            summary="enqueue the fallback email",
        )
    except ActivityError as err:
        workflow.logger.warning("fallback email not enqueued: %s", err.cause or err)
        return
    workflow.set_current_details(state.details())
