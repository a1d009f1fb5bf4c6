"""The SQL mirror: every notification, every send attempt, queue state, devices, audit.

Temporal is the source of truth while a notification is in flight; these tables
are what dashboards, the admin API and humans query. Every write to them is an
idempotent upsert or a guarded update, so an activity may repeat it safely.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite autoincrements only INTEGER PRIMARY KEY; PostgreSQL gets BIGSERIAL.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


_CAMPAIGN_ROWS: dict[str, Any] = {
    "sqlite_where": text("campaign_id IS NOT NULL"),
    "postgresql_where": text("campaign_id IS NOT NULL"),
}


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    type: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=5)
    user_id: Mapped[str | None] = mapped_column(String(128))
    recipient: Mapped[str | None] = mapped_column(String(4096))
    subject: Mapped[str | None] = mapped_column(Text)
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    last_attempt_at: Mapped[datetime | None]
    next_retry_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(256))
    workflow_id: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[str | None] = mapped_column(String(64))
    completed_at: Mapped[datetime | None]
    send_at: Mapped[datetime | None]  # a scheduled send: when it is due
    expires_at: Mapped[datetime | None]  # not sent by then: it ends `expired`
    critical: Mapped[bool] = mapped_column(Boolean, default=False)  # sent whatever the preferences say
    # What the provider's webhooks told after `sent` (delivery_events has every event)
    delivered_at: Mapped[datetime | None]
    bounced_at: Mapped[datetime | None]
    complained_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]
    deferred_reason: Mapped[str | None] = mapped_column(String(32))  # why its send was held back (QUIET_HOURS)
    # A campaign's recipient: its campaign, its place in it, its digest (one per campaign), its batch call
    campaign_id: Mapped[str | None] = mapped_column(String(64))
    campaign_seq: Mapped[int | None] = mapped_column(Integer)
    campaign_key: Mapped[str | None] = mapped_column(String(64))
    batch_key: Mapped[str | None] = mapped_column(String(160))
    # A push and the email sent in its place when the push could not reach its user
    fallback_id: Mapped[str | None] = mapped_column(String(128))
    fallback_of: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_notifications_status_channel", "status", "channel"),
        Index("ix_notifications_user_id", "user_id"),
        Index("ix_notifications_tenant_created", "tenant", "created_at"),
        Index("ix_notifications_created_at", "created_at"),
        Index("ix_notifications_provider_message_id", "provider_message_id"),
        # Partial (migration 0007): a notification of no campaign maintains none of these.
        Index("ux_notifications_campaign_seq", "campaign_id", "campaign_seq", unique=True, **_CAMPAIGN_ROWS),
        Index("ux_notifications_campaign_key", "campaign_id", "campaign_key", unique=True, **_CAMPAIGN_ROWS),
        Index("ix_notifications_campaign_status", "campaign_id", "status", **_CAMPAIGN_ROWS),
    )


class Campaign(Base):
    """One message to many recipients (`CampaignWorkflow`); each recipient is a notifications row.

    `content` holds the templates (subject/html/text or title/message) rendered per recipient
    when it is added; `next_seq` is the `campaign_seq` the next recipient added gets.
    """

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    type: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=1)
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # draft | scheduled | running | paused | completed | cancelled
    status: Mapped[str] = mapped_column(String(16), default="draft")
    send_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    rate_limit_per_second: Mapped[int | None] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer, default=0)
    next_seq: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_campaigns_tenant_created", "tenant", "created_at"),)


class DeliveryAttempt(Base):
    """One row per send attempt: the seed's "logs stored in DB"."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(String(128), ForeignKey("notifications.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # in_progress | sent | transient_error | rate_limited | permanent_error | configuration_error | interrupted
    outcome: Mapped[str] = mapped_column(String(24))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(256))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        UniqueConstraint("notification_id", "run_id", "attempt", name="uq_delivery_attempt"),
        Index("ix_delivery_attempts_notification", "notification_id"),
    )


class Preference(Base):
    """A preferences document (`notifications.preferences`) of a user, an address or a tenant's defaults.

    `gates` lists what the document could stop (`preferences.gates`), so the attempt start opens
    a send without evaluating documents that cannot stop it; `version` lets it check that the
    documents it evaluated are still the ones stored.
    """

    __tablename__ = "preferences"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    subject: Mapped[str] = mapped_column(String(400), primary_key=True)  # user:<id> | address:<email> | tenant
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gates: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeliveryEvent(Base):
    """An event a provider's webhook reported about a sent message (delivered, bounced, opened ...).

    Matched to its notification by the provider's message ID; one that came before the send's own
    record of that ID waits with `notification_id` NULL and is applied when the ID is recorded.
    """

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))  # the webhook's own ID (svix-id): processed once
    provider_message_id: Mapped[str] = mapped_column(String(256))
    notification_id: Mapped[str | None] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_delivery_event"),
        Index("ix_delivery_events_message", "provider_message_id"),
        Index("ix_delivery_events_notification", "notification_id"),
    )


class Suppression(Base):
    """A recipient no notification goes to: per tenant and channel, by normalised address (push: token)."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(String(32))  # hard_bounce | complaint | unsubscribe | manual
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("tenant", "channel", "address", name="uq_suppression"),)


class WebhookEndpoint(Base):
    """A customer's URL that receives signed events (Standard Webhooks); `tenant` NULL: every tenant's."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str | None] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128))  # still signs until previous_secret_until
    previous_secret_until: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """An event of a notification, written by a trigger in the transaction of the change (migration 0006)."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(String(128))
    tenant: Mapped[str | None] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_webhook_events_notification", "notification_id", "version"),)


class WebhookDelivery(Base):
    """One event to one endpoint: pending until a 2xx (succeeded) or the retry schedule ends (failed)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_delivery"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )


class QueueState(Base):
    """Durable queue-wide pause, one row per channel; read by every send attempt."""

    __tablename__ = "queue_state"

    queue: Mapped[str] = mapped_column(String(16), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OutboxMessage(Base):
    """What the development outbox provider 'sent': one row per notification, ever."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(4096))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    provider_message_id: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Device(Base):
    """A push device token of a user; `valid` turns false for good on UNREGISTERED."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(128))
    tenant: Mapped[str | None] = mapped_column(String(128))
    token: Mapped[str] = mapped_column(String(512), unique=True)
    platform: Mapped[str | None] = mapped_column(String(32))
    valid: Mapped[bool] = mapped_column(Boolean, default=True)
    invalid_reason: Mapped[str | None] = mapped_column(String(64))
    invalidated_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_devices_user_valid", "user_id", "valid"),)


class AuditLog(Base):
    """Who did what to which notification or queue, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    tenant: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(256))
    outcome: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_log_at", "at"),)


# Shared across processes (circuits, rate limits, heartbeats): notifications.sql.models_shared
from notifications.sql.models_shared import (  # noqa: E402
    CIRCUIT_CLOSED,
    CIRCUIT_HALF_OPEN,
    CIRCUIT_OPEN,
    DashboardToken,
    ProviderState,
    RateLimitWindow,
    WorkerHeartbeat,
)

__all__ = [
    "CIRCUIT_CLOSED",
    "CIRCUIT_HALF_OPEN",
    "CIRCUIT_OPEN",
    "DashboardToken",
    "ProviderState",
    "RateLimitWindow",
    "WorkerHeartbeat",
]
