"""The suppression list's rows: added once per (tenant, channel, address), listed, removed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from notifications.sql.dialect import insert_ignore_sync
from notifications.sql.engine import Database
from notifications.sql.models import Suppression, utcnow


async def add_suppression(
    db: Database, tenant: str, channel: str, address: str, reason: str, note: str | None, actor: str | None
) -> tuple[Suppression, bool]:
    return await db.run(_add, tenant, channel, address, reason, note, actor)


def add_suppression_sync(
    conn: Connection, tenant: str, channel: str, address: str, reason: str, note: str | None, actor: str | None
) -> tuple[Suppression, bool]:
    """Inside a caller's transaction (the webhook's)."""
    return _add(conn, tenant, channel, address, reason, note, actor)


def _add(
    conn: Connection, tenant: str, channel: str, address: str, reason: str, note: str | None, actor: str | None
) -> tuple[Suppression, bool]:
    values = {
        "tenant": tenant,
        "channel": channel,
        "address": address,
        "reason": reason,
        "note": note,
        "created_by": (actor or "")[:128] or None,
        "created_at": utcnow(),
    }
    created = insert_ignore_sync(conn, Suppression, values, ["tenant", "channel", "address"])
    row = conn.execute(
        select(Suppression).where(
            Suppression.tenant == tenant, Suppression.channel == channel, Suppression.address == address
        )
    ).one()
    return Suppression(**row._asdict()), created


async def remove_suppression(db: Database, suppression_id: int, tenant: str | None) -> Suppression | None:
    return await db.run(_remove, suppression_id, tenant)


def _remove(conn: Connection, suppression_id: int, tenant: str | None) -> Suppression | None:
    query = select(Suppression).where(Suppression.id == suppression_id)
    if tenant is not None:
        query = query.where(Suppression.tenant == tenant)
    row = conn.execute(query).first()
    if row is None:
        return None
    conn.execute(delete(Suppression).where(Suppression.id == suppression_id))
    return Suppression(**row._asdict())


async def list_suppressions(
    db: Database,
    tenant: str | None,
    channel: str | None,
    reason: str | None,
    q: str | None,
    limit: int,
    before: int | None,
) -> list[Suppression]:
    query = select(Suppression).order_by(Suppression.id.desc()).limit(limit)
    filters: list[Any] = []
    if tenant is not None:
        filters.append(Suppression.tenant == tenant)
    if channel:
        filters.append(Suppression.channel == channel)
    if reason:
        filters.append(Suppression.reason == reason)
    if q:
        filters.append(Suppression.address.contains(q.strip().lower(), autoescape=True))
    if before is not None:
        filters.append(Suppression.id < before)
    async with db.sessions() as session:
        return list(await session.scalars(query.where(*filters)))
