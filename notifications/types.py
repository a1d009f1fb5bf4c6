"""Workflow-safe contracts: the dataclasses that cross the Temporal boundary.

This module is imported by the workflow sandbox, so it holds only dataclasses,
enums and constants. Field names are camelCase on purpose: they ARE the JSON a
user sees in the Web UI and types on the `temporal` CLI, and they match the
seed's payloads (`notificationId`, `userId`, ...).
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from temporalio.common import SearchAttributeKey


class Channel(StrEnum):
    EMAIL = "email"
    PUSH = "push"


class Status(StrEnum):
    PENDING = "pending"  # row stored, workflow not started yet
    SCHEDULED = "scheduled"  # waiting for its sendAt
    QUEUED = "queued"  # workflow started, no send attempt yet
    RETRYING = "retrying"  # a send attempt is running, or waiting for the next one
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # its expiresAt came before it could be sent
    SUPPRESSED = "suppressed"  # its user opted out, or its recipient is on the suppression list: never sent
    # Set after `sent` by the provider's webhooks, in SQL only (the workflow has ended by then).
    DELIVERED = "delivered"
    BOUNCED = "bounced"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        Status.SENT,
        Status.FAILED,
        Status.CANCELLED,
        Status.EXPIRED,
        Status.SUPPRESSED,
        Status.DELIVERED,
        Status.BOUNCED,
    }
)

TASK_QUEUES = {Channel.EMAIL: "notification-email", Channel.PUSH: "notification-push"}

WORKFLOW_NAME = "NotificationWorkflow"
SEND_EMAIL_ACTIVITY = "send_email"
SEND_PUSH_ACTIVITY = "send_push"
RECORD_STATUS_ACTIVITY = "record_status"
# The workflow's messages, by their wire names (the `temporal` CLI's --name / --type). Code that
# can import the workflow passes its methods instead (`handle.signal(NotificationWorkflow.pause)`);
# the library below it uses these.
PAUSE_SIGNAL = "pause"
RESUME_SIGNAL = "resume"
ATTEMPT_FAILED_SIGNAL = "attempt_failed"
STATUS_QUERY = "status"
RESCHEDULE_UPDATE = "reschedule"
CANCEL_UPDATE = "cancel"

# Error types carried by ApplicationError between the activities and the workflow.
QUEUE_PAUSED_ERROR = "QueuePaused"
# An attempt refused because the notification was paused through the client/API/CLI (SQL flag)
# before the workflow saw the `pause` signal (a workflow task is busy while its send runs).
NOTIFICATION_PAUSED_ERROR = "NotificationPaused"
# The send found the notification past its expiresAt (the workflow's own timer may not have fired yet).
EXPIRED_ERROR = "EXPIRED"
# The send found its user opted out of it (status `suppressed`), or inside their quiet hours.
USER_OPTED_OUT_ERROR = "USER_OPTED_OUT"
QUIET_HOURS_ERROR = "QUIET_HOURS"
# Its recipient is on the suppression list (a hard bounce, a complaint, an unsubscribe, an operator).
RECIPIENT_SUPPRESSED_ERROR = "RECIPIENT_SUPPRESSED"
QUIET_HOURS_REASON = "QUIET_HOURS"  # the `deferredReason` of a send held back by quiet hours
# An update refused: what it asks for can no longer be done (the API's 409).
TOO_LATE_ERROR = "TooLate"

# Channel fallback: a push that ends failed with one of these codes, or suppressed, is followed by
# the email its payload names, a notification of its own (`<notificationId>-fallback-email`).
ENQUEUE_FALLBACK_ACTIVITY = "enqueue_fallback"
FALLBACK_ERROR_CODES = frozenset({"NO_VALID_DEVICES", "UNREGISTERED", "INVALID_RECIPIENT"})
FALLBACK_EMAIL_SUFFIX = "-fallback-email"


def fallback_id_for(notification_id: str) -> str:
    return f"{notification_id}{FALLBACK_EMAIL_SUFFIX}"


def workflow_id_for(notification_id: str) -> str:
    return f"notification-{notification_id}"


def temporal_priority_key(priority: int) -> int:
    """Seed priority 10 is the most urgent; Temporal's key 1 is. 1..10 -> 10..1."""
    return 11 - priority


@dataclass
class DeliveryPolicy:
    """The retry schedule of one notification, fixed at enqueue from the settings.

    Defaults are the seed's, so a workflow started by hand from the `temporal`
    CLI without a policy behaves like one started by the client.
    """

    maxAttempts: int = 5
    baseDelayMs: int = 2000
    maxDelayMs: int = 300_000
    jitter: float = 0.3
    sendTimeoutMs: int = 30_000
    queuePauseRecheckMs: int = 60_000
    mirrorRetryMaxMs: int = 30_000


@dataclass
class FallbackEmail:
    """A push's fallback email, rendered at the push's enqueue (a template with the push's data)."""

    to: str
    subject: str
    html: str | None = None
    text: str | None = None
    type: str | None = None


@dataclass
class NotificationInput:
    notificationId: str
    channel: str
    priority: int = 5
    type: str | None = None
    userId: str | None = None
    tenant: str | None = None
    # email
    to: str | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    # push
    title: str | None = None
    message: str | None = None
    token: str | None = None
    data: dict[str, Any] | None = None
    # delivery
    policy: DeliveryPolicy | None = None
    startPaused: bool = False
    enqueuedAt: str | None = None
    # when: due at sendAt (RFC 3339; None: now), given up at expiresAt
    sendAt: str | None = None
    expiresAt: str | None = None
    # sent whatever the user's preferences and quiet hours say (password reset, one-time code)
    critical: bool = False
    # a push: the email sent in its place if it cannot reach its user; that email: the push's ID
    fallback: FallbackEmail | None = None
    fallbackOf: str | None = None


@dataclass
class SendInput:
    notification: NotificationInput
    attemptOffset: int = 0
    afterResume: bool = False  # resumed since the last attempt: the SQL pause flag is stale
    # Released from a queue pause by the recheck timer, not by a resume: if SQL cannot say
    # whether the queue is still paused, the attempt holds rather than sends.
    queueRecheck: bool = False


@dataclass
class LoggedAttempt:
    """A delivery-log row the send could not write (database down); the workflow's mirror writes it."""

    attempt: int
    outcome: str
    startedAt: str
    finishedAt: str
    provider: str | None = None
    providerMessageId: str | None = None
    errorCode: str | None = None
    errorMessage: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class SendResult:
    attempt: int
    provider: str
    providerMessageId: str | None
    completedAt: str
    mirrored: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    unlogged: LoggedAttempt | None = None  # this attempt's delivery-log row, when SQL was down
    route: dict[str, Any] | None = None  # several providers: {"order": [...], "current": name}


@dataclass
class AttemptReport:
    """What the send activity tells its workflow after a failed attempt (signal `attempt_failed`)."""

    attempt: int
    errorCode: str
    errorMessage: str
    attemptedAt: str
    nextRetryAt: str | None = None
    unlogged: LoggedAttempt | None = None
    route: dict[str, Any] | None = None  # several providers: where the next attempt goes


@dataclass
class PauseRequest:
    """Input of the `pause` and `resume` signals; both fields are optional.

    scope "workflow" (default) pauses this notification only; "queue" is what the
    queue-wide pause sends to every notification of a channel.
    """

    reason: str | None = None
    scope: str = "workflow"


@dataclass
class RescheduleRequest:
    """The `reschedule` update: a new sendAt (RFC 3339 with an offset)."""

    sendAt: str


@dataclass
class CancelRequest:
    """The `cancel` update; the reason is kept in the audit trail, not in the workflow."""

    reason: str | None = None


@dataclass
class StatusUpdate:
    """Input of `record_status`: the workflow's state written to the SQL mirror."""

    notification: NotificationInput
    status: str
    attempts: int = 0
    paused: bool = False
    errorCode: str | None = None
    errorMessage: str | None = None
    provider: str | None = None
    providerMessageId: str | None = None
    lastAttemptAt: str | None = None
    completedAt: str | None = None
    nextRetryAt: str | None = None
    attemptLog: list[LoggedAttempt] = field(default_factory=list)  # rows the sends could not write
    sendAt: str | None = None
    deferredReason: str | None = None


# Custom search attributes, registered by `notifications dev` and the worker.

STATUS_ATTRIBUTE = SearchAttributeKey.for_keyword("NotificationStatus")
CHANNEL_ATTRIBUTE = SearchAttributeKey.for_keyword("NotificationChannel")
TYPE_ATTRIBUTE = SearchAttributeKey.for_keyword("NotificationType")
PRIORITY_ATTRIBUTE = SearchAttributeKey.for_int("NotificationPriority")
SEND_AT_ATTRIBUTE = SearchAttributeKey.for_datetime("NotificationSendAt")
SEARCH_ATTRIBUTES = (STATUS_ATTRIBUTE, CHANNEL_ATTRIBUTE, TYPE_ATTRIBUTE, PRIORITY_ATTRIBUTE, SEND_AT_ATTRIBUTE)


# Retention (the seed's removeOnComplete / removeOnFail), run by a Temporal Schedule.
MAINTENANCE_TASK_QUEUE = "notification-maintenance"
RETENTION_WORKFLOW_NAME = "RetentionWorkflow"
RETENTION_SCHEDULE_ID = "notifications-retention"
PURGE_ACTIVITY = "purge_expired"


# Webhooks out: one dispatcher workflow per namespace, on the maintenance queue.
WEBHOOK_DISPATCHER_NAME = "WebhookDispatcherWorkflow"
WEBHOOK_DISPATCHER_ID = "notifications-webhook-dispatcher"
DISPATCH_WEBHOOKS_ACTIVITY = "dispatch_webhooks"


@dataclass
class DispatchRequest:
    seconds: float = 60  # how long one dispatch activity runs
    timeoutSeconds: float = 10  # WEBHOOK_TIMEOUT_SECONDS, which bounds what is in flight at its end


@dataclass
class PurgeRequest:
    sentDays: float = 7
    failedDays: float = 30


@dataclass
class PurgeResult:
    notifications: int = 0
    deliveryAttempts: int = 0
    outboxMessages: int = 0
    eventsApplied: int = 0  # provider events found waiting although their notification was known
