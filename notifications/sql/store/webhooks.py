"""Webhook endpoints and their deliveries: the admin API's writes and the dispatcher's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, select, update
from sqlalchemy.orm import aliased

from notifications.schemas import as_utc
from notifications.sql.engine import Database
from notifications.sql.models import WebhookDelivery, WebhookEndpoint, WebhookEvent, utcnow


def _scoped(query: Any, tenant: str | None) -> Any:
    return query.where(WebhookEndpoint.tenant == tenant) if tenant is not None else query


async def create_endpoint(db: Database, values: dict[str, Any]) -> WebhookEndpoint:
    now = utcnow()
    row = WebhookEndpoint(**values, enabled=True, created_at=now, updated_at=now)
    async with db.transaction() as session:
        session.add(row)
    return row


async def get_endpoint(db: Database, endpoint_id: str, tenant: str | None) -> WebhookEndpoint | None:
    async with db.sessions() as session:
        found: WebhookEndpoint | None = await session.scalar(
            _scoped(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id), tenant)
        )
        return found


async def list_endpoints(db: Database, tenant: str | None) -> list[WebhookEndpoint]:
    async with db.sessions() as session:
        return list(
            await session.scalars(_scoped(select(WebhookEndpoint), tenant).order_by(WebhookEndpoint.created_at))
        )


async def update_endpoint(db: Database, endpoint_id: str, tenant: str | None, values: dict[str, Any]) -> bool:
    async with db.transaction() as session:
        query = _scoped(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id), tenant)
        result = await session.execute(query.values(**values, updated_at=utcnow()))
        return bool(getattr(result, "rowcount", 0))


async def rotate_secret(db: Database, endpoint: WebhookEndpoint, secret: str, overlap: timedelta) -> None:
    """The new secret signs from now on; the old one beside it until `overlap` has passed."""
    now = utcnow()
    values = {"secret": secret, "previous_secret": endpoint.secret, "previous_secret_until": now + overlap}
    await update_endpoint(db, endpoint.id, None, values)


async def delete_endpoint(db: Database, endpoint_id: str, tenant: str | None) -> bool:
    async with db.transaction() as session:
        result = await session.execute(
            _scoped(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id), tenant)
        )
        if not getattr(result, "rowcount", 0):
            return False
        await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
        return True


@dataclass
class Due:
    """A delivery to attempt now, with what its request needs."""

    id: int
    attempts: int
    endpoint_id: str
    url: str
    secrets: list[str]
    event_id: int
    type: str
    version: int
    created_at: datetime
    snapshot: dict[str, Any]


async def due_deliveries(db: Database, limit: int, busy: set[int]) -> list[Due]:
    """Pending deliveries whose time has come, oldest first; per endpoint, a notification's events
    in `version` order: one waits while an earlier one of the same notification is pending."""
    now = utcnow()
    earlier_d, earlier_e = aliased(WebhookDelivery), aliased(WebhookEvent)
    waiting = exists().where(
        earlier_d.endpoint_id == WebhookDelivery.endpoint_id,
        earlier_d.status == "pending",
        earlier_e.id == earlier_d.event_id,
        earlier_e.notification_id == WebhookEvent.notification_id,
        earlier_e.version < WebhookEvent.version,
    )
    query = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.attempts,
            WebhookEndpoint.id.label("endpoint_id"),
            WebhookEndpoint.url,
            WebhookEndpoint.secret,
            WebhookEndpoint.previous_secret,
            WebhookEndpoint.previous_secret_until,
            WebhookEvent.id.label("event_id"),
            WebhookEvent.type,
            WebhookEvent.version,
            WebhookEvent.created_at,
            WebhookEvent.snapshot,
        )
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, and_(WebhookEndpoint.id == WebhookDelivery.endpoint_id, WebhookEndpoint.enabled))
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now, ~waiting)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit + len(busy))
    )
    async with db.connection() as conn:
        rows = (await conn.execute(query)).all()
    due = []
    for row in rows:
        if row.id in busy:
            continue
        keys = [row.secret]
        if row.previous_secret and row.previous_secret_until and as_utc(row.previous_secret_until) > now:
            keys.append(row.previous_secret)
        request = (row.event_id, row.type, row.version, as_utc(row.created_at), row.snapshot)
        due.append(Due(row.id, row.attempts, row.endpoint_id, row.url, keys, *request))
    return due[:limit]


_RECORD = (
    update(WebhookDelivery)
    .where(WebhookDelivery.id == bindparam("b_id"))
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        next_attempt_at=bindparam("next_attempt_at"),
        last_status_code=bindparam("last_status_code"),
        last_error=bindparam("last_error"),
        last_attempt_at=bindparam("last_attempt_at"),
    )
)


async def record_attempts(db: Database, outcomes: list[dict[str, Any]]) -> None:
    """Deliveries' outcomes (`b_id` and every column of `_RECORD`), in one transaction."""
    async with db.connection() as conn:
        await conn.execute(_RECORD, outcomes)


async def disable_endpoint(db: Database, endpoint_id: str, reason: str) -> None:
    await update_endpoint(db, endpoint_id, None, {"enabled": False, "disabled_reason": reason})


async def list_deliveries(db: Database, endpoint_id: str, limit: int, before: int | None) -> list[Any]:
    query = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.event_id,
            WebhookDelivery.status,
            WebhookDelivery.attempts,
            WebhookDelivery.next_attempt_at,
            WebhookDelivery.last_status_code,
            WebhookDelivery.last_error,
            WebhookDelivery.last_attempt_at,
            WebhookEvent.type,
            WebhookEvent.notification_id,
            WebhookEvent.version,
        )
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    async with db.sessions() as session:
        return list((await session.execute(query)).all())


async def retry_delivery(db: Database, endpoint_id: str, delivery_id: int) -> bool:
    """Back to pending, due now, with a fresh retry schedule."""
    async with db.transaction() as session:
        result = await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
            .values(status="pending", attempts=0, next_attempt_at=utcnow())
        )
        return bool(getattr(result, "rowcount", 0))
