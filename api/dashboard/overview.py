"""The Overview page: per-queue counts refreshed live, outcomes per minute, health, queue pause and resume."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api import health as health_check
from api.dashboard.render import page
from api.dashboard.session import PATH, FormSession, SessionDep, audit, forbid, limited
from api.deps import ContextDep
from notifications.sql import queries
from notifications.sql.activity import Minutes, outcomes_per_minute

router = APIRouter(prefix=PATH, include_in_schema=False)
QueueName = Literal["email", "push", "all"]
_OK = {"ok", "healthy", "closed"}


def health_rows(checks: dict[str, Any]) -> list[dict[str, Any]]:
    """Each check (and each channel's worker and provider check) as name, status and the reason."""
    rows: list[dict[str, Any]] = []

    def add(name: str, entry: Any) -> None:
        if not isinstance(entry, dict):
            rows.append({"name": name, "status": str(entry), "reason": "", "ok": str(entry) in _OK})
            return
        if "status" not in entry and all(isinstance(v, dict) for v in entry.values()):
            for key, value in entry.items():
                add(f"{name} · {key}", value)
            return
        status = str(entry.get("status", "unknown"))
        reason = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "status" and not isinstance(v, dict | list))
        rows.append({"name": name, "status": status, "reason": reason, "ok": status in _OK})

    for name, entry in checks.items():
        add(name, entry)
    return rows


async def _queues(ctx: ContextDep, session: SessionDep) -> dict[str, Any]:
    stats = await queries.queue_stats(ctx.client.db, session.principal.tenant)
    states = await ctx.client.queue_states()
    return {"stats": stats, "states": states}


def _notice(done: str | None) -> str | None:
    """What the last queue switch did, from a fixed vocabulary (never text taken from the URL)."""
    action, _, queue = (done or "").partition("-")
    if action not in ("paused", "resumed") or queue not in ("email", "push", "all"):
        return None
    return f"All queues were {action}." if queue == "all" else f"The {queue} queue was {action}."


@router.get("", name="dashboard.overview")
async def overview(request: Request, ctx: ContextDep, session: SessionDep, done: str | None = None) -> HTMLResponse:
    minutes = await outcomes_per_minute(ctx.client.db, tenant=session.principal.tenant)
    queues = await _queues(ctx, session)
    return page(
        request,
        "overview.html",
        title="Overview",
        minutes=minutes,
        series=_series(minutes),  # drawn at once; the page's script fetches only the refreshes
        notice=_notice(done),
        **queues,
    )


@router.get("/overview/queues", name="dashboard.overview_queues")
async def queues_fragment(request: Request, ctx: ContextDep, session: SessionDep) -> HTMLResponse:
    return page(request, "_queues.html", **await _queues(ctx, session))


@router.get("/overview/health", name="dashboard.overview_health")
async def health_fragment(request: Request, ctx: ContextDep, session: SessionDep) -> HTMLResponse:
    body = await health_check.health(ctx, session.principal.tenant)
    return page(request, "_health.html", status=body["status"], rows=health_rows(body["checks"]))


@router.get("/overview/series", name="dashboard.overview_series")
async def series(ctx: ContextDep, session: SessionDep) -> JSONResponse:
    """Sent and failed per minute over the last hour, for the chart (epoch seconds, UTC)."""
    minutes = await outcomes_per_minute(ctx.client.db, tenant=session.principal.tenant)
    return JSONResponse(_series(minutes), headers={"Cache-Control": "no-store"})


def _series(minutes: Minutes) -> dict[str, Any]:
    return {
        "minutes": minutes.minutes,
        "sent": minutes.sent,
        "failed": minutes.failed,
        "successRate": minutes.success_rate,
    }


@router.post("/queues/{queue}/{action}", name="dashboard.queue_control")
async def queue_control(
    request: Request,
    ctx: ContextDep,
    session: FormSession,
    queue: QueueName,
    action: Literal["pause", "resume"],
    confirm: Annotated[str, Form()] = "",
    reason: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    """Pausing or resuming a queue is broad: the first post asks, the confirmed one acts."""
    if not session.is_global:
        why = "queue-wide operations need a token without a tenant"
        raise await forbid(request, ctx, session, f"queues.{action}", f"queue:{queue}", why)
    if confirm != "yes":
        return page(request, "confirm_queue.html", title=f"{action.title()} {queue}", queue=queue, action=action)
    await limited(ctx, session, f"queues.{action}")
    async with audit(request, ctx, session)(f"queue:{queue}", action=f"queues.{action}") as details:
        details.update(queue=queue, reason=reason or None, via="dashboard")
        if action == "pause":
            await ctx.client.pause_queue(queue, reason=reason or None, actor=session.principal.subject)
        else:
            await ctx.client.resume_queue(queue, actor=session.principal.subject)
    return RedirectResponse(f"{PATH}?done={action}d-{queue}", status_code=303)
