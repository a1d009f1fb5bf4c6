"""Campaigns: `POST/GET /api/admin/campaigns`, `GET /api/admin/campaigns/{id}`, the recipients upload
and `start | pause | resume | cancel`. Each recipient is a notification (`?campaignId=` on the list)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request

from api.deps import Admin, AuditDep, ClientDep, require_admin
from notifications.campaign_payloads import CAMPAIGN_ID_PATTERN, CampaignCreate
from notifications.errors import NotificationValidationError

router = APIRouter(prefix="/api/admin/campaigns", tags=["campaigns"], dependencies=[Depends(require_admin)])

CampaignId = Annotated[str, Path(pattern=CAMPAIGN_ID_PATTERN)]
# Uploads stream past the JSON body guard (api.errors.BodyGuard): read in pieces, never whole.
UPLOAD_PATH = "/recipients"
_UPLOAD_TYPES = ("text/csv", "application/x-ndjson")


@router.post("", name="campaigns.create", status_code=201)
async def create_campaign(
    principal: Admin, client: ClientDep, audit: AuditDep, body: Annotated[CampaignCreate, Body()]
) -> dict[str, Any]:
    """A campaign with up to 10,000 inline recipients: started at once (or at `sendAt`) unless
    `"draft": true`. 201 with its record and `added`, `duplicates`, `rejected` (by line)."""
    async with audit() as details:
        record = await client.create_campaign(body, tenant=principal.tenant, actor=principal.subject)
        details.update(campaignId=record["campaignId"], channel=record["channel"], added=record["added"])
    return record


@router.get("", name="campaigns.list")
async def list_campaigns(
    principal: Admin, client: ClientDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    """Newest first, each with its counts."""
    return {"items": await client.campaigns(tenant=principal.tenant, limit=limit)}


@router.get("/{campaign_id}", name="campaigns.get")
async def get_campaign(principal: Admin, client: ClientDep, campaign_id: CampaignId) -> dict[str, Any]:
    """Its status, its recipients by outcome, `ratePerSecond` and `etaSeconds`."""
    return await client.campaign(campaign_id, tenant=principal.tenant)


@router.post(f"/{{campaign_id}}{UPLOAD_PATH}", name="campaigns.recipients")
async def add_recipients(
    request: Request, principal: Admin, client: ClientDep, audit: AuditDep, campaign_id: CampaignId
) -> dict[str, Any]:
    """Recipients for a draft, streamed: `text/csv` (a header row; columns other than `to`,
    `userId`, `notificationId` are template data) or `application/x-ndjson` (one object a line).
    Bad rows are reported by line, the others kept; 409 once the campaign started."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in _UPLOAD_TYPES:
        raise NotificationValidationError(
            [{"field": "Content-Type", "message": "must be text/csv or application/x-ndjson"}]
        )
    async with audit() as details:
        found = await client.upload_campaign_recipients(
            campaign_id, _chunks(request), media=media, tenant=principal.tenant
        )
        details.update(added=found["added"], duplicates=found["duplicates"], rejected=len(found["rejected"]))
    return found


async def _chunks(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


@router.post("/{campaign_id}/start", name="campaigns.start")
async def start_campaign(principal: Admin, client: ClientDep, audit: AuditDep, campaign_id: CampaignId) -> Any:
    """A draft starts (at its `sendAt`, or now); 409 for a campaign that is not a draft."""
    async with audit():
        return await client.start_campaign(campaign_id, tenant=principal.tenant)


@router.post("/{campaign_id}/pause", name="campaigns.pause")
async def pause_campaign(principal: Admin, client: ClientDep, audit: AuditDep, campaign_id: CampaignId) -> Any:
    """No new batch starts; the batches in flight finish."""
    async with audit():
        return await client.pause_campaign(campaign_id, tenant=principal.tenant)


@router.post("/{campaign_id}/resume", name="campaigns.resume")
async def resume_campaign(principal: Admin, client: ClientDep, audit: AuditDep, campaign_id: CampaignId) -> Any:
    async with audit():
        return await client.resume_campaign(campaign_id, tenant=principal.tenant)


@router.post("/{campaign_id}/cancel", name="campaigns.cancel")
async def cancel_campaign(principal: Admin, client: ClientDep, audit: AuditDep, campaign_id: CampaignId) -> Any:
    """The batches in flight finish; every recipient no batch reached ends `cancelled`."""
    async with audit():
        return await client.cancel_campaign(campaign_id, tenant=principal.tenant)
