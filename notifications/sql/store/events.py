"""Provider webhook events: stored once each, and applied to their notification when it is known.

An event is matched to its notification by the provider's message ID. One that arrives before
the send recorded that ID waits (`notification_id` NULL); the attempt end or campaign batch that
records the ID applies it (`apply_pending`, `apply_pending_among`), as does the next event about
the same message. On PostgreSQL an ingest and the send recording its message ID can commit at the
same moment, each at READ COMMITTED without seeing the other's row: the event then waits with its
notification known, and the retention run applies it (`apply_stranded`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from notifications.preferences import tenant_key
from notifications.provider_events import RANK, ProviderEvent
from notifications.recipients import masked, normalise
from notifications.sql.dialect import insert_ignore_sync
from notifications.sql.engine import Database
from notifications.sql.models import AuditLog, DeliveryEvent, Notification, utcnow
from notifications.sql.store.suppressions import add_suppression_sync
from notifications.types import Channel


async def ingest(db: Database, event: ProviderEvent) -> bool:
    """Store and apply the event in one transaction; False when this event ID came before."""
    return await db.run(_ingest, event)


def _ingest(conn: Connection, event: ProviderEvent) -> bool:
    row = {
        "provider": event.provider,
        "event_id": event.event_id,
        "provider_message_id": event.message_id,
        "notification_id": None,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "received_at": utcnow(),
        "details": event.details,
    }
    if not insert_ignore_sync(conn, DeliveryEvent, row, ["provider", "event_id"]):
        return False
    apply_pending(conn, event.message_id)
    return True


def apply_pending(conn: Connection, message_id: str) -> int:
    """Apply, in the order they happened, the events about `message_id` not applied yet."""
    target = conn.execute(
        select(Notification.id, Notification.tenant, Notification.channel, Notification.recipient).where(
            Notification.provider_message_id == message_id
        )
    ).first()
    if target is None:
        return 0
    waiting = conn.execute(
        select(DeliveryEvent)
        .where(DeliveryEvent.provider_message_id == message_id, DeliveryEvent.notification_id.is_(None))
        .order_by(DeliveryEvent.occurred_at, DeliveryEvent.id)
    ).all()
    for event in waiting:
        _apply(conn, target, event)
        conn.execute(update(DeliveryEvent).where(DeliveryEvent.id == event.id).values(notification_id=target.id))
    return len(waiting)


# The message IDs among a set that have events waiting; through ix_delivery_events_message.
_WAITING_AMONG = (
    select(DeliveryEvent.provider_message_id)
    .where(
        DeliveryEvent.provider_message_id.in_(bindparam("b_messages", expanding=True)),
        DeliveryEvent.notification_id.is_(None),
    )
    .distinct()
)


def apply_pending_among(conn: Connection, message_ids: Collection[str]) -> int:
    """`apply_pending` for each of `message_ids` with events waiting, found in one query: a
    campaign batch records hundreds of IDs at once and almost never has any waiting."""
    if not message_ids:
        return 0
    waiting = conn.scalars(_WAITING_AMONG, {"b_messages": list(message_ids)}).all()
    return sum(apply_pending(conn, message_id) for message_id in waiting if message_id is not None)


# Message IDs with events waiting although a notification has recorded the ID; through
# ix_delivery_events_notification and ix_notifications_provider_message_id.
_STRANDED = (
    select(DeliveryEvent.provider_message_id)
    .join(Notification, Notification.provider_message_id == DeliveryEvent.provider_message_id)
    .where(DeliveryEvent.notification_id.is_(None), DeliveryEvent.received_at < bindparam("b_before"))
    .distinct()
    .limit(bindparam("b_limit"))
)


async def apply_stranded(db: Database, received_before: datetime, limit: int = 500) -> int:
    """Apply the events received before `received_before` that still wait although their
    notification has recorded the message ID; how many were applied. At most `limit` message IDs."""
    return await db.run(_apply_stranded, received_before, limit)


def _apply_stranded(conn: Connection, received_before: datetime, limit: int) -> int:
    stranded = conn.scalars(_STRANDED, {"b_before": received_before, "b_limit": limit}).all()
    return sum(apply_pending(conn, message_id) for message_id in stranded if message_id is not None)


def _apply(conn: Connection, target: Any, event: Any) -> None:
    stored = ProviderEvent(
        event.provider, event.event_id, event.type, event.provider_message_id, event.occurred_at, event.details or {}
    )
    effect = stored.effect
    now = utcnow()
    if effect.status is not None:
        behind = [status for status, rank in RANK.items() if rank < RANK[effect.status.value]]
        conn.execute(
            update(Notification)
            .where(Notification.id == target.id, Notification.status.in_(behind))
            .values(status=effect.status.value, updated_at=now)
        )
    if effect.stamp is not None:
        column = getattr(Notification, effect.stamp)
        conn.execute(
            update(Notification)
            .where(Notification.id == target.id, column.is_(None))
            .values({effect.stamp: event.occurred_at, "updated_at": now})
        )
    if effect.suppress is not None and target.recipient and target.channel == Channel.EMAIL:
        address = normalise(Channel.EMAIL, target.recipient)
        tenant = tenant_key(target.tenant)
        note = f"{event.type} of notification {target.id}"
        entry, created = add_suppression_sync(
            conn, tenant, Channel.EMAIL.value, address, effect.suppress, note, event.provider
        )
        if created:  # audited like an operator's entry, committed with it
            details: dict[str, Any] = {"channel": entry.channel, "address": masked(entry.channel, entry.address)}
            details.update(reason=entry.reason, created=True, notificationId=target.id, event=event.type)
            conn.execute(
                insert(AuditLog).values(
                    at=now,
                    actor=f"provider:{event.provider}"[:128],
                    tenant=entry.tenant,
                    action="suppressions.add",
                    target=f"suppression:{entry.id}",
                    outcome="ok",
                    details=details,
                )
            )
