"""Provider health, the audit trail and the retention purge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from notifications.sql.dialect import insert_ignore
from notifications.sql.engine import Database
from notifications.sql.models import AuditLog, DeliveryAttempt, Notification, OutboxMessage, ProviderState, utcnow


async def record_provider_state(db: Database, channel: str, provider: str, values: dict[str, Any]) -> None:
    async with db.transaction() as session:
        key = {"channel": channel, "provider": provider}
        inserted = await insert_ignore(session, ProviderState, {**key, **values}, list(key))
        if not inserted:
            await session.execute(
                update(ProviderState)
                .where(ProviderState.channel == channel, ProviderState.provider == provider)
                .values(**values)
            )


async def write_audit(
    db: Database,
    *,
    actor: str,
    tenant: str | None,
    action: str,
    target: str | None,
    outcome: str,
    details: dict[str, Any] | None = None,
) -> None:
    async with db.transaction() as session:
        session.add(
            AuditLog(
                at=utcnow(),
                actor=actor[:128],
                tenant=tenant,
                action=action[:64],
                target=(target or None) and target[:256],
                outcome=outcome[:32],
                details=details or {},
            )
        )


async def purge_finished(db: Database, statuses: list[str], cutoff: datetime, limit: int) -> tuple[int, int, int]:
    """Delete up to `limit` notifications finished before `cutoff`, with their log and outbox rows.

    Returns how many notifications, delivery attempts and outbox messages went; 0 notifications
    means nothing is left to purge.
    """
    async with db.transaction() as session:
        ids = list(
            await session.scalars(
                select(Notification.id)
                .where(Notification.status.in_(statuses), Notification.completed_at < cutoff)
                .limit(limit)
            )
        )
        if not ids:
            return 0, 0, 0
        attempts = await session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.notification_id.in_(ids)))
        outbox = await session.execute(delete(OutboxMessage).where(OutboxMessage.notification_id.in_(ids)))
        await session.execute(delete(Notification).where(Notification.id.in_(ids)))
    return len(ids), getattr(attempts, "rowcount", 0) or 0, getattr(outbox, "rowcount", 0) or 0
