"""GET /api/admin/audit: who did what to which notification or queue, when, and how it ended."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import Admin, DbDep, require_admin
from api.schemas import AuditEntry, AuditPage
from notifications.sql import queries

router = APIRouter(prefix="/api/admin/audit", tags=["audit"], dependencies=[Depends(require_admin)])


@router.get("", response_model=AuditPage, name="audit.list")
async def list_audit(
    principal: Admin,
    db: DbDep,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="nextBefore of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Newest first. A tenant-scoped token sees its tenant's entries only."""
    rows = await queries.list_audit(
        db, limit=limit, before_id=before, tenant=principal.tenant, actor=actor, action=action
    )
    items = [AuditEntry.model_validate(r, from_attributes=True).model_dump(mode="json") for r in rows]
    return {"items": items, "nextBefore": rows[-1].id if len(rows) == limit else None}
