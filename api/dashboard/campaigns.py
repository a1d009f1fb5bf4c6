"""Campaigns: the newest with their progress, a detail page, and pause, resume and cancel (asked first)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.dashboard.render import page
from api.dashboard.session import PATH, FormSession, SessionDep, audit
from api.deps import ContextDep
from notifications.campaign_payloads import CAMPAIGN_ID_PATTERN
from notifications.campaign_types import CampaignStatus

router = APIRouter(prefix=PATH, include_in_schema=False)
CampaignId = Annotated[str, Path(pattern=CAMPAIGN_ID_PATTERN)]
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200  # the API's own limit: campaigns are listed newest first, with no cursor

_DONE = {
    "pause": "Paused: no new batch starts; the batches in flight finish.",
    "resume": "Resumed: its batches start again.",
    "cancel": "Cancelled: the batches in flight finish; every recipient no batch reached ends cancelled.",
}


def progress(campaign: dict[str, Any]) -> dict[str, Any]:
    """The campaign's record with what its progress bar shows: recipients finished out of its total."""
    total = int(campaign.get("total") or 0)
    done = max(total - int(campaign.get("queued") or 0), 0)
    percent = round(100 * done / total) if total else 0
    return {**campaign, "done": done, "percent": percent}


def actions(status: str) -> list[str]:
    """The switches that apply to a campaign in this status (as the client allows them)."""
    state = CampaignStatus(status)
    found = []
    if state in (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING):
        found.append("pause")
    if state == CampaignStatus.PAUSED:
        found.append("resume")
    if not state.terminal:
        found.append("cancel")
    return found


@router.get("/campaigns", name="dashboard.campaigns")
async def campaigns(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
) -> HTMLResponse:
    items = await ctx.client.campaigns(tenant=session.principal.tenant, limit=limit)
    more = len(items) == limit and limit < MAX_PAGE_SIZE
    return page(
        request,
        "campaigns.html",
        title="Campaigns",
        items=[progress(c) for c in items],
        more_url=f"{PATH}/campaigns?limit={MAX_PAGE_SIZE}" if more else None,
        capped=len(items) == MAX_PAGE_SIZE,
    )


@router.get("/campaigns/{campaign_id}", name="dashboard.campaign")
async def campaign(
    request: Request, ctx: ContextDep, session: SessionDep, campaign_id: CampaignId, done: str | None = None
) -> HTMLResponse:
    record = await ctx.client.campaign(campaign_id, tenant=session.principal.tenant)
    return page(
        request,
        "campaign.html",
        title=f"Campaign {campaign_id}",
        c=progress(record),
        actions=actions(record["status"]),
        done=_DONE.get(done or ""),
    )


@router.post("/campaigns/{campaign_id}/{action}", name="dashboard.campaign_action")
async def campaign_action(
    request: Request,
    ctx: ContextDep,
    session: FormSession,
    campaign_id: CampaignId,
    action: Literal["pause", "resume", "cancel"],
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Pause and resume at once; cancel is broad (it cannot be undone): the first post asks."""
    tenant = session.principal.tenant
    if action == "cancel" and confirm != "yes":
        record = await ctx.client.campaign(campaign_id, tenant=tenant)
        return page(request, "confirm_campaign.html", title=f"Cancel campaign {campaign_id}", c=progress(record))
    async with audit(request, ctx, session)(f"campaign:{campaign_id}", action=f"campaigns.{action}") as details:
        details.update(campaignId=campaign_id, via="dashboard")
        if action == "pause":
            record = await ctx.client.pause_campaign(campaign_id, tenant=tenant)
        elif action == "resume":
            record = await ctx.client.resume_campaign(campaign_id, tenant=tenant)
        else:
            record = await ctx.client.cancel_campaign(campaign_id, tenant=tenant)
        details["status"] = record.get("status")
    return RedirectResponse(f"{PATH}/campaigns/{campaign_id}?done={action}", status_code=303)
