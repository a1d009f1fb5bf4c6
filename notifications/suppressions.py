"""The suppression list: recipients no notification goes to, per tenant and channel.

An address is kept normalised (an email lower-cased and trimmed; a push device token as it is).
Entries come from hard bounces and complaints (the provider's webhooks), address-wide one-click
unsubscribes, and operators (`manual`). The attempt start checks it when a send is due; a
`critical` notification passes only an `unsubscribe` entry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from notifications.errors import NotificationNotFoundError, NotificationValidationError
from notifications.preferences import tenant_key
from notifications.recipients import normalise
from notifications.schemas import as_utc
from notifications.sql import store
from notifications.sql.engine import Database, reachable
from notifications.types import Channel

REASONS = ("hard_bounce", "complaint", "unsubscribe", "manual")
Reason = Literal["hard_bounce", "complaint", "unsubscribe", "manual"]


class SuppressionRecord(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)

    id: int
    tenant: str
    channel: str
    address: str
    reason: str
    note: str | None = None
    created_by: str | None = None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> SuppressionRecord:
        record = cls.model_validate(row)
        record.created_at = as_utc(record.created_at)
        return record

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class NewSuppression(BaseModel):
    """`POST /api/admin/suppressions`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: Channel
    address: str = Field(min_length=1, max_length=512)
    reason: Reason = "manual"
    note: str | None = Field(None, max_length=1000)


async def add(db: Database, tenant: str | None, entry: NewSuppression, actor: str) -> tuple[SuppressionRecord, bool]:
    """The entry, and whether it is new (an address already listed keeps its first reason)."""
    address = normalise(entry.channel, entry.address)
    if entry.channel == Channel.EMAIL and ("@" not in address or " " in address):
        raise NotificationValidationError([{"field": "address", "message": "must be an email address"}])
    with reachable():
        row, created = await store.add_suppression(
            db, tenant_key(tenant), entry.channel.value, address, entry.reason, entry.note, actor
        )
    return SuppressionRecord.from_row(row), created


async def remove(db: Database, suppression_id: int, tenant: str | None) -> SuppressionRecord:
    with reachable():
        row = await store.remove_suppression(db, suppression_id, tenant)
    if row is None:
        raise NotificationNotFoundError(f"no suppression with ID {suppression_id}")
    return SuppressionRecord.from_row(row)


async def page(
    db: Database,
    tenant: str | None,
    *,
    channel: str | None = None,
    reason: str | None = None,
    q: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> tuple[list[SuppressionRecord], int | None]:
    """Newest first; the cursor is the last entry's ID."""
    with reachable():
        rows = await store.list_suppressions(db, tenant, channel, reason, q, limit + 1, before)
    items = [SuppressionRecord.from_row(r) for r in rows[:limit]]
    return items, (items[-1].id if len(rows) > limit and items else None)
