"""Push device tokens: registered, removed, used, invalidated."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from notifications.errors import NotificationConflictError
from notifications.redact import mask_token
from notifications.sql.engine import Database
from notifications.sql.models import Device, utcnow


async def upsert_device(db: Database, user_id: str, token: str, *, platform: str | None, tenant: str | None) -> Device:
    """The same token again updates its owner and platform; an invalidated one is refused."""
    async with db.transaction() as session:
        row = await session.scalar(select(Device).where(Device.token == token))
        if row is None:
            row = Device(
                user_id=user_id, token=token, platform=platform, tenant=tenant, valid=True, created_at=utcnow()
            )
            session.add(row)
        elif not row.valid:
            raise NotificationConflictError(
                f"device token {mask_token(token)} was invalidated ({row.invalid_reason}) and cannot be reused; "
                "the app must obtain a new token"
            )
        else:
            row.user_id = user_id
            row.platform = platform if platform is not None else row.platform
            row.tenant = tenant if tenant is not None else row.tenant
        await session.flush()
        return row


async def delete_device(db: Database, *, token: str | None, device_id: int | None) -> bool:
    condition = Device.token == token if token is not None else Device.id == device_id
    async with db.transaction() as session:
        result = await session.execute(delete(Device).where(condition))
        return bool(getattr(result, "rowcount", 0))


async def mark_devices(db: Database, tokens: list[str], *, invalid_reason: str | None = None) -> None:
    """Tokens just used for a send, or (with a reason) ones FCM no longer knows."""
    if not tokens:
        return
    now = utcnow()
    stmt = update(Device).where(Device.token.in_(tokens))
    if invalid_reason is None:
        stmt = stmt.values(last_used_at=now)
    else:
        stmt = stmt.where(Device.valid.is_(True)).values(valid=False, invalid_reason=invalid_reason, invalidated_at=now)
    async with db.transaction() as session:
        await session.execute(stmt)
