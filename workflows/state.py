"""What a notification's workflow reports: one state object feeds the `status` query, the Web UI
details and the SQL mirror, so the three never disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow

from workflows.hold import Hold

with workflow.unsafe.imports_passed_through():
    from notifications.types import (
        AttemptReport,
        DeliveryPolicy,
        LoggedAttempt,
        NotificationInput,
        SendResult,
        Status,
        StatusUpdate,
    )


@dataclass
class NotificationState:
    policy: DeliveryPolicy
    status: Status = Status.QUEUED
    published: Status = Status.QUEUED  # the value of the NotificationStatus search attribute
    attempts: int = 0
    last_attempt_at: str | None = None
    next_retry_at: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    provider: str | None = None
    message_id: str | None = None
    completed_at: str | None = None
    updated_at: str | None = None
    send_at: str | None = None  # a scheduled send's due time (RFC 3339)
    expires_at: str | None = None
    deferred_reason: str | None = None  # why sendAt was moved: QUIET_HOURS
    fallback_id: str | None = None  # a push's fallback email, once enqueued
    hold: Hold = field(default_factory=Hold)
    unlogged: dict[int, LoggedAttempt] = field(default_factory=dict)  # delivery-log rows SQL did not take
    route: dict[str, Any] | None = None  # several providers: their order and the current one

    def set_status(self, status: Status, now: str, *, force_publish: bool = False) -> bool:
        """True when the NotificationStatus search attribute is to be set to the new status.

        It follows the seed's statuses; 'retrying' is published only once a retry is really
        pending, so the happy path costs a single upsert (to 'sent').
        """
        self.status = status
        self.updated_at = now
        publish = (status.terminal or force_publish) and status != self.published
        if publish:
            self.published = status
        return publish

    # -- outcomes ----------------------------------------------------------------------------------
    def sent(self, result: SendResult) -> None:
        self.note_unlogged(result.unlogged)
        self.attempts = max(self.attempts, result.attempt)
        self.provider = result.provider
        self.message_id = result.providerMessageId
        self.route = result.route or self.route
        self.completed_at = self.last_attempt_at = result.completedAt
        self.error_code = self.error_message = self.next_retry_at = None

    def attempt_failed(self, attempt: int | None, code: str | None, message: str | None) -> None:
        if attempt is not None:
            self.attempts = max(self.attempts, attempt)
        self.error_code = code
        self.error_message = message

    def failed(self, code: str, message: str | None, now: str) -> None:
        self.error_code = code
        self.error_message = message
        self.next_retry_at = None
        self.completed_at = now

    def reported(self, report: AttemptReport) -> bool:
        """A failed attempt the send told us of; False when it is older than what we know."""
        self.note_unlogged(report.unlogged)
        if report.attempt < self.attempts or self.status.terminal:
            return False
        self.attempts = report.attempt
        self.route = report.route or self.route
        self.last_attempt_at = report.attemptedAt
        self.next_retry_at = report.nextRetryAt
        self.error_code = report.errorCode
        self.error_message = report.errorMessage
        return True

    def note_unlogged(self, entry: LoggedAttempt | None) -> None:
        if entry is not None:
            self.unlogged[entry.attempt] = entry

    def forget_logged(self, written: list[LoggedAttempt]) -> None:
        for entry in written:
            if self.unlogged.get(entry.attempt) is entry:
                del self.unlogged[entry.attempt]

    # -- views ---------------------------------------------------------------------------------------
    def status_update(self, inp: NotificationInput) -> StatusUpdate:
        return StatusUpdate(
            notification=inp,
            status=self.status.value,
            attempts=self.attempts,
            paused=self.hold.paused,
            errorCode=self.error_code,
            errorMessage=self.error_message,
            provider=self.provider,
            providerMessageId=self.message_id,
            lastAttemptAt=self.last_attempt_at,
            completedAt=self.completed_at,
            nextRetryAt=self.next_retry_at,
            attemptLog=list(self.unlogged.values()),
            sendAt=self.send_at,
            deferredReason=self.deferred_reason,
        )

    def query(self, inp: NotificationInput, workflow_id: str, run_id: str, started: str) -> dict[str, Any]:
        """The `status` query: the same camelCase fields as the SQL record."""
        return {
            "notificationId": inp.notificationId,
            "workflowId": workflow_id,
            "runId": run_id,
            "channel": inp.channel,
            "type": inp.type,
            "priority": inp.priority,
            "userId": inp.userId,
            "tenant": inp.tenant,
            "status": self.status.value,
            "paused": self.hold.paused,
            "queuePaused": self.hold.queue_paused,
            "pauseReason": self.hold.reason,
            "attempts": self.attempts,
            "maxAttempts": self.policy.maxAttempts,
            "lastAttemptAt": self.last_attempt_at,
            "nextRetryAt": self.next_retry_at,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "provider": self.provider,
            "providerOrder": (self.route or {}).get("order"),
            "currentProvider": (self.route or {}).get("current"),
            "messageId": self.message_id,
            "completedAt": self.completed_at,
            "sendAt": self.send_at,
            "expiresAt": self.expires_at,
            "critical": inp.critical,
            "deferredReason": self.deferred_reason,
            "fallbackId": self.fallback_id,
            "fallbackOf": inp.fallbackOf,
            "createdAt": inp.enqueuedAt or started,
            "updatedAt": self.updated_at or started,
        }

    def details(self) -> str:
        """The Web UI's live details (markdown)."""
        lines = [f"**Status:** {self.status.value}"]
        if self.status == Status.SCHEDULED:
            lines.append(f"**Scheduled for:** {self.send_at}")
            if self.deferred_reason:
                lines.append(f"**Deferred by:** {self.deferred_reason.lower().replace('_', ' ')}")
        if self.expires_at and not self.status.terminal:
            lines.append(f"**Expires at:** {self.expires_at}")
        if self.attempts:
            lines.append(f"**Attempt:** {self.attempts} of {self.policy.maxAttempts}")
        if self.next_retry_at and not self.status.terminal:
            lines.append(f"**Next retry:** {self.next_retry_at}")
        held = self.hold.held_by
        lines.append(f"**Paused:** {'yes, by ' + held if held else 'no'}")
        if self.error_code:
            lines.append(f"**Last error:** {self.error_code}: {self.error_message or ''}")
        if self.route and not self.status.terminal:
            lines.append(f"**Providers:** {' > '.join(self.route.get('order') or [])}, now {self.route.get('current')}")
        if self.message_id:
            lines.append(f"**Provider message:** {self.provider} {self.message_id}")
        if self.fallback_id:
            lines.append(f"**Fallback email:** {self.fallback_id}")
        return "\n\n".join(lines)
