"""Push device tokens in SQL: register, list, remove, and what the FCM provider needs.

A token FCM answered UNREGISTERED for is marked invalid and stays so: the app
instance is gone and FCM never revives a token, so registering it again is
refused instead of silently resurrecting a dead address. A token moving to
another user (a shared phone, a new login) is simply re-assigned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy import exists, or_, select

from notifications.errors import NotificationValidationError
from notifications.preferences import tenant_key
from notifications.redact import mask_token
from notifications.schemas import as_utc
from notifications.sql import store
from notifications.sql.engine import Database
from notifications.sql.models import Device, Suppression
from notifications.types import Channel

PLATFORMS = ("android", "ios", "web")
MAX_TOKEN = 512
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")  # the payloads' tenant names


class DeviceRecord(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)

    id: int
    user_id: str
    tenant: str | None = None
    token: str
    platform: str | None = None
    valid: bool
    invalid_reason: str | None = None
    invalidated_at: datetime | None = None
    last_used_at: datetime | None = None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Device) -> DeviceRecord:
        record = cls.model_validate(row)
        for name in ("invalidated_at", "last_used_at", "created_at"):
            setattr(record, name, as_utc(getattr(record, name)))
        return record

    def to_json(self, *, reveal_token: bool = False) -> dict[str, Any]:
        data = self.model_dump(mode="json", by_alias=True)
        if not reveal_token:
            data["token"] = mask_token(self.token)
        return data


def _validate(user_id: str | None, token: str | None, platform: str | None, tenant: str | None) -> None:
    errors = []
    if not user_id or not user_id.strip() or len(user_id) > 128:
        errors.append({"field": "userId", "message": "is required (1-128 characters)"})
    if not token or len(token) > MAX_TOKEN or any(c.isspace() for c in token):
        errors.append({"field": "token", "message": f"is required (1-{MAX_TOKEN} characters, no spaces)"})
    if platform is not None and platform not in PLATFORMS:
        errors.append({"field": "platform", "message": f"must be one of {', '.join(PLATFORMS)}"})
    if tenant is not None and not TENANT_PATTERN.match(tenant):
        errors.append({"field": "tenant", "message": "must be a short name (letters, digits, . _ -)"})
    if errors:
        raise NotificationValidationError(errors)


async def register_device(
    db: Database, user_id: str, token: str, *, platform: str | None = None, tenant: str | None = None
) -> DeviceRecord:
    """Idempotent: the same token again updates its owner and platform."""
    _validate(user_id, token, platform, tenant)
    return DeviceRecord.from_row(await store.upsert_device(db, user_id, token, platform=platform, tenant=tenant))


async def list_devices(
    db: Database, user_id: str | None = None, *, include_invalid: bool = True, limit: int = 500
) -> list[DeviceRecord]:
    query = select(Device).order_by(Device.id).limit(limit)
    if user_id is not None:
        query = query.where(Device.user_id == user_id)
    if not include_invalid:
        query = query.where(Device.valid.is_(True))
    async with db.sessions() as session:
        return [DeviceRecord.from_row(row) for row in await session.scalars(query)]


async def remove_device(db: Database, token: str | None = None, *, device_id: int | None = None) -> bool:
    """True when a device was removed."""
    if (token is None) == (device_id is None):
        raise NotificationValidationError([{"field": "token", "message": "give a token or a device id"}])
    return await store.delete_device(db, token=token, device_id=device_id)


# -- used by the push provider ---------------------------------------------------------------------
async def valid_tokens(db: Database, user_id: str, *, tenant: str | None = None, critical: bool = False) -> list[str]:
    """The user's valid devices, less those on the tenant's suppression list: the attempt start
    checks only a push's explicit token. A critical push passes an `unsubscribe` entry, as there.

    A device registered for a tenant is that tenant's only: two tenants' users may share an ID.
    One registered without a tenant gets its user's pushes of any tenant."""
    suppressed = select(Suppression.id).where(
        Suppression.tenant == tenant_key(tenant),
        Suppression.channel == Channel.PUSH.value,
        Suppression.address == Device.token,
    )
    if critical:
        suppressed = suppressed.where(Suppression.reason != "unsubscribe")
    async with db.sessions() as session:
        rows = await session.scalars(
            select(Device.token)
            .where(Device.user_id == user_id, Device.valid.is_(True), ~exists(suppressed))
            .where(or_(Device.tenant.is_(None), Device.tenant == tenant_key(tenant)))
            .order_by(Device.id)
        )
        return list(rows)


async def token_is_invalid(db: Database, token: str) -> bool:
    async with db.sessions() as session:
        valid = await session.scalar(select(Device.valid).where(Device.token == token))
        return valid is False


async def mark_invalid(db: Database, tokens: Iterable[str], reason: str) -> None:
    await store.mark_devices(db, list(tokens), invalid_reason=reason)


async def mark_used(db: Database, tokens: Iterable[str]) -> None:
    await store.mark_devices(db, list(tokens))


class DevicesMixin:
    """Device-token methods of NotificationClient (which provides `db`)."""

    db: Database

    async def register_device(
        self, user_id: str, token: str, *, platform: str | None = None, tenant: str | None = None
    ) -> DeviceRecord:
        return await register_device(self.db, user_id, token, platform=platform, tenant=tenant)

    async def list_devices(self, user_id: str | None = None, *, include_invalid: bool = True) -> list[DeviceRecord]:
        return await list_devices(self.db, user_id, include_invalid=include_invalid)

    async def remove_device(self, token: str | None = None, *, device_id: int | None = None) -> bool:
        return await remove_device(self.db, token, device_id=device_id)
