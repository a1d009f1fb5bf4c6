"""Campaigns through the client: create one, add its recipients, start, pause, resume, cancel, read.

Each recipient becomes a notifications row when it is added (rendered then, so a template
that cannot render for a recipient is reported with its line, before anything is sent); the
`CampaignWorkflow` started by `start_campaign` sends them in batches.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client, WorkflowHandle
from temporalio.common import Priority, TypedSearchAttributes
from temporalio.common import SearchAttributePair as Pair
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from notifications.campaign_content import CampaignContent, CampaignTemplates
from notifications.campaign_payloads import UPLOAD_HINT, CampaignCreate, campaign_json
from notifications.campaign_recipients import (
    Recipient,
    RecipientError,
    check_inline,
    dedupe_key,
    parse_csv,
    parse_ndjson,
)
from notifications.campaign_types import (
    CAMPAIGN_PRIORITY_KEY,
    CAMPAIGN_TASK_QUEUE,
    CAMPAIGN_WORKFLOW_NAME,
    MAX_INLINE_RECIPIENTS,
    PROGRESS_QUERY,
    CampaignInput,
    CampaignStatus,
    campaign_workflow_id,
)
from notifications.config import Settings
from notifications.errors import (
    NotificationConflictError,
    NotificationNotFoundError,
    NotificationValidationError,
    PayloadTooLargeError,
)
from notifications.schemas import check_schedule, validate_payload
from notifications.sql.engine import Database, reachable
from notifications.sql.models import Campaign, Notification, utcnow
from notifications.sql.store import campaigns as store
from notifications.temporal import reachable as temporal_reachable
from notifications.types import CHANNEL_ATTRIBUTE, PAUSE_SIGNAL, RESUME_SIGNAL, TYPE_ATTRIBUTE, Channel, Status
from notifications.unsubscribe import UnsubscribeTokens

_CHUNK = 1000  # recipients stored per transaction


class CampaignsMixin:
    """`NotificationClient`'s campaign methods."""

    temporal: Client
    db: Database
    settings: Settings
    _unsubscribe: UnsubscribeTokens | None

    async def create_campaign(
        self, payload: Mapping[str, Any] | CampaignCreate, *, tenant: str | None = None, actor: str | None = None
    ) -> dict[str, Any]:
        """Store a campaign and its inline recipients; start it unless `draft`. The campaign's
        record has `rejected`: the recipients not stored, by line (index + 1), field and message."""
        if isinstance(payload, Mapping) and len(payload.get("recipients") or []) > MAX_INLINE_RECIPIENTS:
            raise PayloadTooLargeError(f"at most {MAX_INLINE_RECIPIENTS} recipients inline; {UPLOAD_HINT}")
        p: CampaignCreate = validate_payload(CampaignCreate, payload)
        if len(p.recipients) > MAX_INLINE_RECIPIENTS:
            raise PayloadTooLargeError(f"at most {MAX_INLINE_RECIPIENTS} recipients inline; {UPLOAD_HINT}")
        if not p.draft and not p.recipients:
            raise NotificationValidationError(
                [{"field": "recipients", "message": 'a campaign needs at least one recipient (or "draft": true)'}]
            )
        send_at, expires_at = check_schedule(
            p.sendAt, p.expiresAt, now=utcnow(), max_days=self.settings.max_schedule_days
        )
        content = CampaignContent(p.channel, p.type, p.subject, p.html, p.text, p.title, p.message)
        templates = CampaignTemplates(content, templates_dir=self.settings.templates_dir)
        campaign_id = p.campaignId or f"cmp-{uuid.uuid4().hex[:12]}"
        values = {
            "id": campaign_id,
            "tenant": tenant or p.tenant,
            "name": p.name,
            "channel": p.channel,
            "type": p.type,
            "priority": p.priority,
            "content": {k: v for k, v in vars(content).items() if k not in ("channel", "type") and v is not None},
            "data": p.data,
            "send_at": send_at,
            "expires_at": expires_at,
            "rate_limit_per_second": p.rateLimitPerSecond,
            "created_by": actor,
        }
        with reachable():
            try:
                await store.create_campaign(self.db, values)
            except IntegrityError:  # the same campaignId created at the same moment
                raise NotificationConflictError(f"campaign {campaign_id!r} exists already") from None
        added = await self._store_recipients(campaign_id, templates, values, check_inline(p.recipients, p.channel))
        if not p.draft:
            if not added["added"]:
                raise NotificationValidationError(
                    [{"field": "recipients", "message": "no valid recipient"}, *added["rejected"][:20]]
                )
            await self.start_campaign(campaign_id, tenant=tenant)
        return {**await self.campaign(campaign_id, tenant=tenant), **added}

    async def add_campaign_recipients(
        self,
        campaign_id: str,
        recipients: Iterable[Mapping[str, Any]] | AsyncIterator[list[Recipient | RecipientError]],
        *,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """Add recipients to a draft: objects (`to` | `userId`, `notificationId`?, any other key is
        template data) or a parsed upload (`campaign_recipients.parse_csv` / `parse_ndjson`).
        Answers `{"added", "duplicates", "rejected": [{"line", "field", "message"}]}`."""
        return await self._add_to(await self._draft_row(campaign_id, tenant), recipients)

    async def upload_campaign_recipients(
        self, campaign_id: str, chunks: AsyncIterator[bytes], *, media: str, tenant: str | None = None
    ) -> dict[str, Any]:
        """A streamed upload, `text/csv` or `application/x-ndjson`, parsed for the campaign's channel:
        `add_campaign_recipients`'s answer and the campaign's `total` after it."""
        row = await self._draft_row(campaign_id, tenant)
        parse = parse_csv if media == "text/csv" else parse_ndjson
        found = await self._add_to(row, parse(chunks, row.channel))
        with reachable():
            async with self.db.sessions() as session:
                total = await session.scalar(select(Campaign.total).where(Campaign.id == campaign_id))
        return {**found, "total": int(total or 0)}

    async def _draft_row(self, campaign_id: str, tenant: str | None) -> Campaign:
        row = await self._campaign_row(campaign_id, tenant)
        if row.status != CampaignStatus.DRAFT.value:  # before reading an upload that could not be stored
            raise NotificationConflictError(f"campaign {campaign_id} is {row.status}: recipients go to a draft only")
        return row

    async def _add_to(
        self,
        row: Campaign,
        recipients: Iterable[Mapping[str, Any]] | AsyncIterator[list[Recipient | RecipientError]],
    ) -> dict[str, Any]:
        templates = CampaignTemplates(_content(row), templates_dir=self.settings.templates_dir)
        values: dict[str, Any] = {"tenant": row.tenant, "channel": row.channel, "type": row.type}
        values.update(priority=row.priority, data=row.data, expires_at=row.expires_at)
        if isinstance(recipients, AsyncIterator):
            added = duplicates = 0
            rejected: list[dict[str, Any]] = []
            async for part in recipients:
                found = await self._store_recipients(row.id, templates, values, part)
                added, duplicates = added + found["added"], duplicates + found["duplicates"]
                rejected.extend(found["rejected"][: _MAX_REPORTED - len(rejected)])
            return {"added": added, "duplicates": duplicates, "rejected": rejected}
        return await self._store_recipients(row.id, templates, values, check_inline(list(recipients), row.channel))

    async def _store_recipients(
        self,
        campaign_id: str,
        templates: CampaignTemplates,
        campaign: Mapping[str, Any],
        items: list[Recipient | RecipientError],
    ) -> dict[str, Any]:
        rejected: list[dict[str, Any]] = []
        added = duplicates = 0
        rows: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, RecipientError):
                rejected.append({"line": item.line, "field": item.field, "message": item.message})
                continue
            try:
                rows.append(self._recipient_row(templates, campaign, item))
            except NotificationValidationError as exc:
                rejected.extend({"line": item.line, **e} for e in exc.errors[:1])
            if len(rows) >= _CHUNK:
                a, d = await _add(self.db, campaign_id, rows)
                added, duplicates, rows = added + a, duplicates + d, []
        if rows:
            a, d = await _add(self.db, campaign_id, rows)
            added, duplicates = added + a, duplicates + d
        return {"added": added, "duplicates": duplicates, "rejected": rejected[:_MAX_REPORTED]}

    def _recipient_row(self, templates: CampaignTemplates, c: Mapping[str, Any], r: Recipient) -> dict[str, Any]:
        data = {**(c.get("data") or {}), **r.data}
        channel = c["channel"]
        if channel == Channel.EMAIL:
            if self._unsubscribe is None:
                self._unsubscribe = UnsubscribeTokens.from_settings(self.settings)
            url = self._unsubscribe.url(c["tenant"], r.user_id, str(r.to), c["type"])
            subject, html, text = templates.render_email(data, unsubscribe_url=url)
            content: dict[str, Any] = {"html": html, "text": text}
        else:
            subject, message = templates.render_push(data)
            content = {"message": message, "data": {k: v for k, v in data.items()}}
        return {
            "id": r.notification_id,
            "tenant": c["tenant"],
            "channel": channel,
            "type": c["type"],
            "status": Status.PENDING.value,
            "priority": c["priority"],
            "user_id": r.user_id,
            "recipient": r.to,
            "subject": subject,
            "content": content,
            "attempts": 0,
            "paused": False,
            "expires_at": c.get("expires_at"),
            "critical": False,
            "campaign_key": dedupe_key(channel, r),
        }

    async def start_campaign(self, campaign_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        """Start a draft: its workflow sends at its sendAt, or now. 409 unless it is a draft."""
        with reachable():
            row = await store.start_campaign(self.db, campaign_id, tenant=tenant)
        last = row.next_seq - 1  # the range ends there; a seq a duplicate left unused is skipped
        rate = row.rate_limit_per_second
        inp = CampaignInput(
            campaignId=campaign_id,
            channel=row.channel,
            lastSeq=last,
            batchSize=max(1, min(self.settings.campaign_batch_size, rate or self.settings.campaign_batch_size)),
            maxInFlight=self.settings.campaign_max_in_flight,
            rateLimitPerSecond=rate,
            sendAt=row.send_at.isoformat() if row.status == CampaignStatus.SCHEDULED.value else None,
            startedAt=None,
            maxAttempts=self.settings.max_retries,
            queuePauseRecheckMs=int(self.settings.queue_pause_recheck_seconds * 1000),
            batchesPerRun=self.settings.campaign_batches_per_run,
            total=row.total,
        )
        try:
            with temporal_reachable():
                await self.temporal.start_workflow(
                    CAMPAIGN_WORKFLOW_NAME,
                    inp,
                    id=campaign_workflow_id(campaign_id),
                    task_queue=CAMPAIGN_TASK_QUEUE,
                    priority=Priority(priority_key=CAMPAIGN_PRIORITY_KEY, fairness_key=row.tenant),
                    search_attributes=TypedSearchAttributes(
                        [Pair(CHANNEL_ATTRIBUTE, row.channel), Pair(TYPE_ATTRIBUTE, row.type or "none")]
                    ),
                    static_summary=f"campaign · {row.channel} · {row.name[:80]}",
                    static_details=f"**Campaign** `{campaign_id}` · {last} recipients",
                )
        except WorkflowAlreadyStartedError:
            pass  # an earlier start whose answer was lost did start it
        except BaseException:
            if not await self._workflow_exists(campaign_id):
                await store.back_to_draft(self.db, campaign_id)  # start it again later: nothing was sent
            raise
        return await self.campaign(campaign_id, tenant=tenant)

    async def campaign(self, campaign_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        """The campaign's record: status, recipients by outcome, rate and ETA (from SQL)."""
        row = await self._campaign_row(campaign_id, tenant)
        return campaign_json(row, (await self._counts([campaign_id])).get(campaign_id, {}), utcnow())

    async def campaigns(self, *, tenant: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest campaigns first, each with its counts."""
        with reachable():
            async with self.db.sessions() as session:
                query = select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit)
                if tenant is not None:
                    query = query.where(Campaign.tenant == tenant)
                rows = list(await session.scalars(query))
        counts, now = await self._counts([r.id for r in rows]), utcnow()
        return [campaign_json(r, counts.get(r.id, {}), now) for r in rows]

    async def _counts(self, campaign_ids: list[str]) -> dict[str, dict[str, int]]:
        """Recipients by status, per campaign, in one query."""
        counts: dict[str, dict[str, int]] = {cid: {} for cid in campaign_ids}
        if not campaign_ids:
            return counts
        with reachable():
            async with self.db.sessions() as session:
                found = await session.execute(
                    select(Notification.campaign_id, Notification.status, func.count())
                    .where(Notification.campaign_id.in_(campaign_ids))
                    .group_by(Notification.campaign_id, Notification.status)
                )
                for cid, status, n in found:
                    counts[str(cid)][status] = int(n)
        return counts

    async def campaign_progress(self, campaign_id: str) -> dict[str, Any]:
        """The workflow's live `progress` query."""
        result: dict[str, Any] = await self._campaign_handle(campaign_id).query(
            PROGRESS_QUERY, rpc_timeout=timedelta(seconds=self.settings.query_timeout_seconds)
        )
        return result

    async def pause_campaign(self, campaign_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        return await self._signal(campaign_id, PAUSE_SIGNAL, tenant)

    async def resume_campaign(self, campaign_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        return await self._signal(campaign_id, RESUME_SIGNAL, tenant)

    async def cancel_campaign(self, campaign_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        """Cancel its workflow: batches in flight finish, recipients not reached end `cancelled`."""
        row = await self._campaign_row(campaign_id, tenant)
        if row.status == CampaignStatus.DRAFT:
            with reachable():
                if await store.cancel_draft(self.db, campaign_id):
                    return await self.campaign(campaign_id, tenant=tenant)
            row = await self._campaign_row(campaign_id, tenant)  # started meanwhile: cancel its workflow
        if not CampaignStatus(row.status).terminal:
            await self._running(campaign_id, row, lambda h: h.cancel())
        return await self.campaign(campaign_id, tenant=tenant)

    async def _signal(self, campaign_id: str, signal: str, tenant: str | None) -> dict[str, Any]:
        row = await self._campaign_row(campaign_id, tenant)
        if CampaignStatus(row.status) in (CampaignStatus.DRAFT, CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
            raise NotificationConflictError(f"campaign {campaign_id} is {row.status}: it cannot be paused or resumed")
        await self._running(campaign_id, row, lambda h: h.signal(signal))
        return {**await self.campaign(campaign_id, tenant=tenant), "status": _after(signal, row.status)}

    async def _running(self, campaign_id: str, row: Any, act: Any) -> None:
        try:
            with temporal_reachable():
                await act(self._campaign_handle(campaign_id))
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            raise NotificationConflictError(f"campaign {campaign_id} has no running workflow") from None

    async def _workflow_exists(self, campaign_id: str) -> bool:
        """Whether a start whose answer was lost reached Temporal (False when it cannot tell)."""
        try:
            await self._campaign_handle(campaign_id).describe(rpc_timeout=timedelta(seconds=5))
        except Exception:
            return False
        return True

    def _campaign_handle(self, campaign_id: str) -> WorkflowHandle[Any, Any]:
        return self.temporal.get_workflow_handle(campaign_workflow_id(campaign_id))

    async def _campaign_row(self, campaign_id: str, tenant: str | None) -> Campaign:
        with reachable():
            async with self.db.sessions() as session:
                row = await session.get(Campaign, campaign_id)
        if row is None or (tenant is not None and row.tenant != tenant):
            raise NotificationNotFoundError(f"no campaign with ID {campaign_id!r}")
        return row


_MAX_REPORTED = 1000  # rejected recipients listed in one answer


async def _add(db: Database, campaign_id: str, rows: list[dict[str, Any]]) -> tuple[int, int]:
    with reachable():
        return await store.add_recipients(db, campaign_id, rows)


def _content(row: Campaign) -> CampaignContent:
    c = row.content or {}
    return CampaignContent(
        row.channel, row.type, c.get("subject"), c.get("html"), c.get("text"), c.get("title"), c.get("message")
    )


def _after(signal: str, status: str) -> str:
    if status == CampaignStatus.SCHEDULED:
        return status
    return (CampaignStatus.PAUSED if signal == PAUSE_SIGNAL else CampaignStatus.RUNNING).value
