"""Request and response models at the HTTP edge.

Requests reject unknown fields (a typo is a 422 naming the field, not a silently ignored
value). Responses keep the seed's camelCase JSON shapes: the stats and health bodies are
exactly the ones its dashboards read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from notifications.schemas import (
    MAX_BODY,
    MAX_SUBJECT,
    NAME_PATTERN,
    EmailNotification,
    NotificationRecord,
    PushNotification,
    as_utc,
)


def _priority() -> Any:
    return Field(None, ge=1, le=10, description="1 (low) to 10 (most urgent); default DEFAULT_PRIORITY")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- requests -------------------------------------------------------------------------------------
class QueueControl(_Strict):
    queue: Literal["email", "push", "all"] = "all"
    reason: str | None = Field(None, max_length=500)


class TestEmail(_Strict):
    to: EmailStr
    subject: str = Field("Test Email", min_length=1, max_length=MAX_SUBJECT)
    message: str = Field(..., min_length=1, max_length=MAX_BODY, description="HTML body")
    priority: int | None = _priority()


class TestPush(_Strict):
    userId: str = Field(..., min_length=1, max_length=128)
    title: str = Field("Test Push", min_length=1, max_length=1024)
    message: str = Field(..., min_length=1, max_length=4096)
    priority: int | None = _priority()


class EmailEnqueue(EmailNotification):
    """The Python client's email payload, plus its priority argument."""

    priority: int | None = _priority()


class PushEnqueue(PushNotification):
    """The Python client's push payload, plus its priority argument."""

    priority: int | None = _priority()


class DeadLetterRetry(_Strict):
    channel: Literal["email", "push"] | None = None
    type: str | None = Field(None, pattern=NAME_PATTERN)
    errorCode: str | None = Field(None, max_length=64)
    userId: str | None = Field(None, min_length=1, max_length=128)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(100, ge=1, le=500)


# -- responses ------------------------------------------------------------------------------------
class QueueCounts(BaseModel):
    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    expired: int = Field(0, description="ended unsent at their expiresAt (beside the seed's five)")
    suppressed: int = Field(0, description="ended unsent: their user opted out (beside the seed's five)")


class QueueStats(BaseModel):
    email: QueueCounts
    push: QueueCounts


class QueueState(BaseModel):
    paused: bool
    reason: str | None = None
    updatedAt: str | None = None
    updatedBy: str | None = None


class QueueControlResult(BaseModel):
    message: str
    queues: dict[str, QueueState]


class HealthMetrics(BaseModel):
    successRate: float
    totalProcessed: int
    successful: int
    failed: int
    pending: int


class Health(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: str
    metrics: HealthMetrics
    queues: QueueStats
    uptime: int
    checks: dict[str, Any]


class Enqueued(BaseModel):
    notificationId: str
    status: str
    channel: str
    priority: int
    mirrored: bool = Field(
        True, description="false: accepted while the database was down; its SQL record follows when it answers"
    )
    sendAt: datetime | None = Field(None, description="when a scheduled notification is due (status scheduled)")
    expiresAt: datetime | None = None

    @classmethod
    def of(cls, record: NotificationRecord) -> dict[str, Any]:
        return cls(
            notificationId=record.notification_id,
            status=record.status,
            channel=record.channel,
            priority=record.priority,
            mirrored=record.mirrored,
            sendAt=record.send_at,
            expiresAt=record.expires_at,
        ).model_dump()


class NotificationOut(NotificationRecord):
    """NotificationRecord's camelCase JSON, the shape every route returns a notification in."""

    model_config = ConfigDict(extra="allow")


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    nextCursor: str | None = None


class NotificationDetail(BaseModel):
    notification: NotificationOut
    deliveryLog: list[dict[str, Any]]
    events: list[dict[str, Any]] = Field(default_factory=list, description="the provider's webhook events")
    workflow: dict[str, Any] | None = None
    workflowError: str | None = None


class LastError(BaseModel):
    code: str | None = None
    message: str | None = None
    at: datetime | None = None


class DeadLetter(NotificationOut):
    lastError: LastError


class DeadLetterPage(BaseModel):
    items: list[DeadLetter]
    nextCursor: str | None = None


class RetryFailure(BaseModel):
    notificationId: str
    error: str


class DeadLetterRetryResult(BaseModel):
    matched: int
    retried: list[str]
    errors: list[RetryFailure]


class CancelResult(BaseModel):
    notification: NotificationOut
    cancelled: bool = Field(description="true once the workflow has recorded the cancellation")


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    tenant: str | None = None
    action: str
    target: str | None = None
    outcome: str
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("at", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return as_utc(value)


class AuditPage(BaseModel):
    items: list[AuditEntry]
    nextBefore: int | None = None


class ErrorItem(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[ErrorItem] = Field(default_factory=list)
