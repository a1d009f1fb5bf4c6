"""A campaign's own writes: its row, its recipients (one notifications row each), its start and
the status its workflow reports. The batches' writes are in `campaign_batches`."""

from __future__ import annotations

import functools
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from notifications.campaign_types import CampaignStatus, CampaignUpdate, campaign_workflow_id
from notifications.errors import NotificationConflictError, NotificationNotFoundError, NotificationValidationError
from notifications.schemas import as_utc
from notifications.sql.engine import Database
from notifications.sql.models import Campaign, Notification, utcnow
from notifications.types import Status


async def create_campaign(db: Database, values: dict[str, Any]) -> None:
    """A new campaign row (a draft); 409 when its ID is taken."""
    await db.run(_create, values)


def _create(conn: Connection, values: dict[str, Any]) -> None:
    if conn.scalar(select(Campaign.id).where(Campaign.id == values["id"])) is not None:
        raise NotificationConflictError(f"campaign {values['id']!r} exists already")
    now = utcnow()
    draft = {"status": CampaignStatus.DRAFT.value, "total": 0, "next_seq": 1}
    conn.execute(insert(Campaign), {**draft, **values, "created_at": now, "updated_at": now})


def _owned(conn: Connection, campaign_id: str, tenant: str | None, *, lock: bool = False) -> Any:
    stmt = select(Campaign.__table__).where(Campaign.id == campaign_id)
    if lock and conn.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE already holds the write lock
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None or (tenant is not None and row.tenant != tenant):
        raise NotificationNotFoundError(f"no campaign with ID {campaign_id!r}")
    return row


async def add_recipients(
    db: Database, campaign_id: str, rows: list[dict[str, Any]], *, tenant: str | None = None
) -> tuple[int, int]:
    """Store recipients (notifications rows, `pending`) of a draft: (added, duplicates).

    Each gets the next `campaign_seq` and, without its own, the notificationId `<campaignId>-<seq>`.
    A recipient already in the campaign (same digest) or a notificationId already used is not
    stored again: it counts as a duplicate.
    """
    return await db.run(_add, campaign_id, rows, tenant)


def _add(conn: Connection, campaign_id: str, rows: list[dict[str, Any]], tenant: str | None) -> tuple[int, int]:
    campaign = _owned(conn, campaign_id, tenant, lock=True)
    if campaign.status != CampaignStatus.DRAFT.value:
        raise NotificationConflictError(f"campaign {campaign_id} is {campaign.status}: recipients go to a draft only")
    first = campaign.next_seq
    now = utcnow()
    workflow_id = campaign_workflow_id(campaign_id)
    for offset, row in enumerate(rows):
        seq = first + offset
        row.update(campaign_id=campaign_id, campaign_seq=seq, workflow_id=workflow_id, created_at=now, updated_at=now)
        row["id"] = row.get("id") or f"{campaign_id}-{seq}"
    if rows:
        conn.execute(_insert_ignore(conn.dialect.name), rows)
    added = conn.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.campaign_id == campaign_id, Notification.campaign_seq >= first)
    )
    added = int(added or 0)
    conn.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(next_seq=first + len(rows), total=Campaign.total + added, updated_at=now)
    )
    return added, len(rows) - added


@functools.cache
def _insert_ignore(dialect: str) -> Any:
    # No conflict target: a taken notificationId and a recipient listed twice are both skipped.
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(Notification).on_conflict_do_nothing()


async def start_campaign(db: Database, campaign_id: str, *, tenant: str | None = None) -> SimpleNamespace:
    """A draft becomes `scheduled` (sendAt ahead) or `running`; 409 for any other status."""
    return await db.run(_start, campaign_id, tenant, utcnow())


def _start(conn: Connection, campaign_id: str, tenant: str | None, now: datetime) -> SimpleNamespace:
    campaign = _owned(conn, campaign_id, tenant, lock=True)
    if campaign.status != CampaignStatus.DRAFT.value:
        raise NotificationConflictError(f"campaign {campaign_id} is {campaign.status}: only a draft can be started")
    if not campaign.total:
        raise NotificationValidationError([{"field": "recipients", "message": "the campaign has no recipients"}])
    send_at = as_utc(campaign.send_at) if campaign.send_at else None
    due_later = send_at is not None and send_at > now
    status = CampaignStatus.SCHEDULED if due_later else CampaignStatus.RUNNING
    values: dict[str, Any] = {"status": status.value, "updated_at": now}
    if not due_later:
        values["started_at"] = now
    conn.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))
    return SimpleNamespace(**{**campaign._mapping, **values, "send_at": send_at})


async def back_to_draft(db: Database, campaign_id: str) -> None:
    """Its workflow could not be started: the campaign is a draft again, to be started later."""
    await db.run(_back_to_draft, campaign_id)


def _back_to_draft(conn: Connection, campaign_id: str) -> None:
    conn.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(status=CampaignStatus.DRAFT.value, started_at=None, updated_at=utcnow())
    )


async def cancel_draft(db: Database, campaign_id: str) -> bool:
    """A draft cancelled with its recipients; False when it is no longer a draft (started meanwhile)."""
    return await db.run(_cancel_draft, campaign_id)


def _cancel_draft(conn: Connection, campaign_id: str) -> bool:
    now = utcnow()
    done = conn.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.DRAFT.value)
        .values(status=CampaignStatus.CANCELLED.value, completed_at=now, updated_at=now)
    )
    if not done.rowcount:
        return False
    _cancel_open_rows(conn, campaign_id, now)
    return True


async def record_campaign(db: Database, upd: CampaignUpdate) -> None:
    """The workflow's view of its campaign; a finished campaign's status never changes again."""
    await db.run(_record, upd)


_FINISHED = (CampaignStatus.COMPLETED.value, CampaignStatus.CANCELLED.value)


def _record(conn: Connection, upd: CampaignUpdate) -> None:
    now = utcnow()
    values: dict[str, Any] = {"status": upd.status, "updated_at": now}
    if upd.startedAt:
        values["started_at"] = func.coalesce(Campaign.started_at, datetime.fromisoformat(upd.startedAt))
    if upd.completedAt:
        values["completed_at"] = datetime.fromisoformat(upd.completedAt)
    conn.execute(
        update(Campaign).where(Campaign.id == upd.campaignId, Campaign.status.not_in(_FINISHED)).values(**values)
    )
    if upd.cancelRemaining:
        _cancel_open_rows(conn, upd.campaignId, now)


def _cancel_open_rows(conn: Connection, campaign_id: str, now: datetime) -> None:
    """Every recipient not sent and no longer going to be: not reached by a batch, or claimed by one
    that then stopped (a queue pause, a provider outage; the workflow waited for its batches in
    flight). Rows handed to workflows of their own (no batch_key) are theirs to finish."""
    open_rows = or_(
        Notification.status == Status.PENDING.value,
        and_(Notification.status == Status.RETRYING.value, Notification.batch_key.is_not(None)),
    )
    conn.execute(
        update(Notification)
        .where(Notification.campaign_id == campaign_id, open_rows)
        .values(status=Status.CANCELLED.value, completed_at=now, updated_at=now)
    )
