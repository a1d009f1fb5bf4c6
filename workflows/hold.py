"""What holds a notification: a small pure state machine, unit-tested without a server.

A notification is held by its own pause, by its queue's pause, or both. Signals can arrive
while an attempt is under way, and the attempt's answer is only read correctly together
with what happened meanwhile, so that is kept beside the hold (`DuringAttempt`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from notifications.types import EXPIRED_ERROR, QUIET_HOURS_ERROR, RECIPIENT_SUPPRESSED_ERROR, USER_OPTED_OUT_ERROR

# Non-retryable failures that are not the notification's end in SQL: the workflow decides it.
_DECIDED_BY_WORKFLOW = frozenset({EXPIRED_ERROR, QUIET_HOURS_ERROR, USER_OPTED_OUT_ERROR, RECIPIENT_SUPPRESSED_ERROR})


class Refusal(StrEnum):
    """Why a send attempt was refused before it started (the failure type the send raises)."""

    NOTIFICATION_PAUSED = "NotificationPaused"  # paused through the client; the signal follows
    QUEUE_PAUSED = "QueuePaused"

    @classmethod
    def of(cls, failure_type: str | None) -> Refusal | None:
        """The refusal a failure of this type is, if it is one."""
        return next((refusal for refusal in cls if refusal.value == failure_type), None)


@dataclass
class AttemptFlags:
    """What the send needs to know about the hold it starts from."""

    after_resume: bool  # resumed since an attempt last got past the pause checks: SQL's flag is stale
    queue_recheck: bool  # released by the recheck timer, not a resume: SQL alone can end the pause


@dataclass
class DuringAttempt:
    paused: bool = False  # a pause came and cancelled the pending send
    queue_resumed: bool = False  # a queue-wide resume came


@dataclass
class Hold:
    paused: bool = False
    reason: str | None = None
    queue_paused: bool = False
    resumed: bool = False
    recheck: bool = False
    attempt: DuringAttempt = field(default_factory=DuringAttempt)

    @property
    def held(self) -> bool:
        return self.paused or self.queue_paused

    @property
    def held_by(self) -> str:
        return "this notification" if self.paused else "the queue" if self.queue_paused else ""

    # -- signals ---------------------------------------------------------------------------------
    def pause(self, scope: str | None, reason: str | None, *, send_pending: bool) -> bool:
        """True when the pending send is to be cancelled: a retry waiting for its backoff.

        A queue-wide pause cancels nothing: the SQL flag refuses the retry when it comes due.
        """
        if scope == "queue":
            self.queue_paused = True
            return False
        self.paused = True
        self.reason = reason
        if send_pending:
            self.attempt.paused = True
        return send_pending

    def resume(self, scope: str | None) -> None:
        if scope == "queue":
            self.queue_paused = False
            self.attempt.queue_resumed = True
        else:
            self.paused = False
            self.reason = None
            self.resumed = True

    def recheck_elapsed(self) -> None:
        """The queue hold's safety-net timer: try once more; the send reads the flag in SQL."""
        self.queue_paused = False
        self.recheck = True

    # -- the attempt -----------------------------------------------------------------------------
    def start_attempt(self) -> AttemptFlags:
        flags = AttemptFlags(after_resume=self.resumed, queue_recheck=self.recheck)
        self.attempt = DuringAttempt()
        self.recheck = False
        return flags

    def refused(self, refusal: Refusal, *, retry_at_once: bool = False) -> None:
        """The attempt did not start. `retry_at_once`: its queue was resumed while it read the old flag."""
        if refusal is Refusal.NOTIFICATION_PAUSED:
            self.paused = True
        elif not retry_at_once:
            self.queue_paused = True

    def passed_checks(self) -> None:
        """The attempt read this notification's pause flag in SQL: the flag there is current again."""
        self.resumed = False


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time with its offset (the client and the API refuse one without)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return parsed


def final_failure(outcome: object) -> bool:
    """A failure that is the notification's end (SQL has `failed` already), not a refusal or a retry."""
    cause = outcome.cause if isinstance(outcome, ActivityError) else outcome
    return (
        isinstance(cause, ApplicationError)
        and cause.non_retryable
        and Refusal.of(cause.type) is None
        and cause.type not in _DECIDED_BY_WORKFLOW
    )
