"""Payloads at the edge (Python client, HTTP, CLI), validated before anything is stored.

Field names are the seed's (`notificationId`, `to`, `subject`, `html`, `text`,
`type`, `userId` for email; `notificationId`, `userId`, `title`, `message`,
`data` for push). Unknown fields are rejected so a typo is an error, not a
silently dropped value.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from notifications.emails import FastEmailStr
from notifications.errors import NotificationValidationError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
MAX_SUBJECT = 998  # RFC 5322 line limit
MAX_BODY = 512 * 1024
MAX_PUSH_PAYLOAD = 4096  # FCM's limit for a message's notification + data


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    notificationId: str | None = Field(None, pattern=ID_PATTERN)
    type: str | None = Field(None, pattern=NAME_PATTERN)
    userId: str | None = Field(None, min_length=1, max_length=128)
    tenant: str | None = Field(None, pattern=NAME_PATTERN)
    data: dict[str, Any] | None = None
    # RFC 3339 with an offset; absent or past: now. Checked against now by `check_schedule`.
    sendAt: AwareDatetime | None = None
    expiresAt: AwareDatetime | None = None
    # sent whatever the user's preferences and quiet hours say: password reset, security alert, code
    critical: StrictBool = False


class EmailNotification(_Payload):
    to: FastEmailStr
    subject: str | None = Field(None, max_length=MAX_SUBJECT)
    html: str | None = Field(None, max_length=MAX_BODY)
    text: str | None = Field(None, max_length=MAX_BODY)


class FallbackEmailSpec(BaseModel):
    """`fallback.email` of a push: subject and html or text, or a `type` whose template is rendered
    with the push's `data`. Fields in this order: each check sees the ones before it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    to: FastEmailStr
    type: str | None = Field(None, pattern=NAME_PATTERN)
    subject: str | None = Field(None, max_length=MAX_SUBJECT, validate_default=True)
    text: str | None = Field(None, max_length=MAX_BODY)
    html: str | None = Field(None, max_length=MAX_BODY, validate_default=True)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value and _untyped(info):
            raise ValueError("is required (or a type naming an email template)")
        return value

    @field_validator("html")
    @classmethod
    def _body(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value and not info.data.get("text") and _untyped(info):
            raise ValueError("html or text is required (or a type naming an email template)")
        return value


def _untyped(info: ValidationInfo) -> bool:
    """No type was given (a type that failed its own check is not counted as missing)."""
    return "type" in info.data and not info.data["type"]


class PushFallback(BaseModel):
    """A push's `fallback`: the email sent in its place when it cannot reach its user."""

    model_config = ConfigDict(extra="forbid")

    email: FallbackEmailSpec


class PushNotification(_Payload):
    title: str | None = Field(None, max_length=1024)
    message: str | None = Field(None, max_length=4096)
    token: str | None = Field(None, min_length=1, max_length=512)
    fallback: PushFallback | None = None

    @model_validator(mode="after")
    def _addressed(self) -> PushNotification:
        if not self.userId and not self.token:
            raise ValueError("a push needs a userId or a device token")
        return self

    @field_validator("data")
    @classmethod
    def _flat_data(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # FCM data values are strings; nested objects would be silently stringified.
        for key, item in (value or {}).items():
            if isinstance(item, dict | list):
                raise ValueError(f"data.{key} must be a string, number or boolean")
        return value

    def payload_size(self, title: str, message: str) -> int:
        return len(json.dumps({"title": title, "body": message, "data": self.data or {}}).encode())


def validate_payload(model: type[BaseModel], payload: Any) -> Any:
    if isinstance(payload, model):
        return payload
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise NotificationValidationError(
            [{"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]} for err in exc.errors()]
        ) from None


class Reschedule(BaseModel):
    """`POST /api/admin/notifications/{id}/reschedule`."""

    model_config = ConfigDict(extra="forbid")

    sendAt: AwareDatetime


def check_schedule(
    send_at: datetime | None, expires_at: datetime | None, *, now: datetime, max_days: int
) -> tuple[datetime | None, datetime | None]:
    """sendAt and expiresAt as UTC, sendAt None when due now; 422 naming the field at fault.

    Either may be at most `max_days` (MAX_SCHEDULE_DAYS) ahead of now."""
    utc: dict[str, datetime | None] = {}
    for name, value in (("sendAt", send_at), ("expiresAt", expires_at)):
        try:
            utc[name] = value.astimezone(UTC) if value is not None else None
        except OverflowError:  # past year 9999 once in UTC
            utc[name] = datetime.max.replace(tzinfo=UTC)
        moment = utc[name]
        if moment is not None and moment - now > timedelta(days=max_days):
            raise NotificationValidationError(
                [{"field": name, "message": f"must be at most {max_days} days ahead (MAX_SCHEDULE_DAYS)"}]
            )
    due = utc["sendAt"] if utc["sendAt"] is not None and utc["sendAt"] > now else None
    expires = utc["expiresAt"]
    if expires is not None and expires <= (due or now):
        raise NotificationValidationError([{"field": "expiresAt", "message": "must be after sendAt and after now"}])
    return due, expires


def validate_priority(priority: Any, default: int) -> int:
    if priority is None:
        return default
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 10:
        raise NotificationValidationError([{"field": "priority", "message": "must be an integer from 1 to 10"}])
    return priority


def as_utc(value: Any) -> Any:
    """SQLite hands back naive datetimes; every time we store is UTC."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class _CamelCase(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class _Record(_CamelCase):
    @field_validator("*", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return as_utc(value)


class NotificationRecord(_CamelCase):
    """A notification as stored in SQL; serialises with the seed's camelCase keys."""

    @model_validator(mode="before")
    @classmethod
    def _utc(cls, data: Any) -> Any:
        """Naive datetimes read as UTC, in one pass: one is built for every enqueue, and a validator
        per field (as `_Record` has) costs more than the rest of its validation."""
        if not isinstance(data, dict):  # built from a row's values only (`from_row`)
            return data
        naive = {
            key: value.replace(tzinfo=UTC)
            for key in _RECORD_TIMES
            if isinstance(value := data.get(key), datetime) and value.tzinfo is None
        }
        return {**data, **naive} if naive else data

    notification_id: str
    workflow_id: str
    run_id: str | None = None
    tenant: str | None = None
    channel: str
    type: str | None = None
    status: str
    priority: int
    user_id: str | None = None
    recipient: str | None = None
    subject: str | None = None
    attempts: int = 0
    paused: bool = False
    last_attempt_at: datetime | None = None
    next_retry_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    provider: str | None = None
    message_id: str | None = None
    completed_at: datetime | None = None
    send_at: datetime | None = None
    expires_at: datetime | None = None
    critical: bool = False
    deferred_reason: str | None = None
    delivered_at: datetime | None = None  # the provider's webhooks, after `sent`
    bounced_at: datetime | None = None
    complained_at: datetime | None = None
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    campaign_id: str | None = None  # a campaign's recipient
    fallback_id: str | None = None  # a push: the email sent in its place
    fallback_of: str | None = None  # that email: the push it stands in for
    created_at: datetime
    updated_at: datetime
    # False when the enqueue was accepted while the database was down: the worker writes the
    # row once it answers. Not part of the seed's JSON record.
    mirrored: bool = Field(default=True, exclude=True)

    @classmethod
    def from_row(cls, row: Any) -> NotificationRecord:
        return cls(**_record_fields(row))

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# Each time field by its name and by its camelCase alias (a record read back from JSON).
_RECORD_TIMES = tuple(
    key
    for name, field in NotificationRecord.model_fields.items()
    if field.annotation in (datetime, datetime | None)
    for key in (name, field.alias or name)
)


class DeliveryEventRecord(_Record):
    """A provider webhook's event about a sent message (`events` of a notification's detail)."""

    type: str
    provider: str
    occurred_at: datetime
    received_at: datetime
    details: dict[str, Any] = Field(default_factory=dict)


class DeliveryAttemptRecord(_Record):
    attempt: int
    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str
    error_code: str | None = None
    error_message: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


def _record_fields(row: Any) -> dict[str, Any]:
    return dict(
        notification_id=row.id,
        workflow_id=row.workflow_id,
        run_id=row.run_id,
        tenant=row.tenant,
        channel=row.channel,
        type=row.type,
        status=row.status,
        priority=row.priority,
        user_id=row.user_id,
        recipient=row.recipient,
        subject=row.subject,
        attempts=row.attempts,
        paused=row.paused,
        last_attempt_at=row.last_attempt_at,
        next_retry_at=row.next_retry_at,
        error_code=row.error_code,
        error_message=row.error_message,
        provider=row.provider,
        message_id=row.provider_message_id,
        completed_at=row.completed_at,
        send_at=row.send_at,
        expires_at=row.expires_at,
        critical=bool(row.critical),
        deferred_reason=row.deferred_reason,
        delivered_at=row.delivered_at,
        bounced_at=row.bounced_at,
        complained_at=row.complained_at,
        opened_at=row.opened_at,
        clicked_at=row.clicked_at,
        campaign_id=row.campaign_id,
        fallback_id=row.fallback_id,
        fallback_of=row.fallback_of,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
