"""The suppression list: `GET/POST /api/admin/suppressions`, `DELETE /api/admin/suppressions/{id}`.

A tenant-scoped token sees and changes its tenant's entries; every change is audited (the address
masked in the audit row).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from api.deps import Admin, AuditDep, DbDep, require_admin
from notifications import suppressions
from notifications.recipients import masked

router = APIRouter(prefix="/api/admin/suppressions", tags=["suppressions"], dependencies=[Depends(require_admin)])


@router.get("", name="suppressions.list")
async def list_suppressions(
    principal: Admin,
    db: DbDep,
    channel: Literal["email", "push"] | None = None,
    reason: suppressions.Reason | None = None,
    q: Annotated[str | None, Query(max_length=256, description="part of the address")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[int | None, Query(ge=1, le=2**62, description="the previous page's nextCursor")] = None,
) -> dict[str, Any]:
    """Newest first; `{"items", "nextCursor"}`."""
    items, next_cursor = await suppressions.page(
        db, principal.tenant, channel=channel, reason=reason, q=q, limit=limit, before=cursor
    )
    return {"items": [i.to_json() for i in items], "nextCursor": next_cursor}


@router.post("", name="suppressions.add", status_code=201)
async def add_suppression(
    principal: Admin, db: DbDep, audit: AuditDep, body: suppressions.NewSuppression, response: Response
) -> dict[str, Any]:
    """`{"channel", "address", "reason": "manual", "note"}`: 201 with the entry, 200 when it was listed already."""
    async with audit() as details:
        record, created = await suppressions.add(db, principal.tenant, body, principal.subject)
        details.update(channel=record.channel, address=masked(record.channel, record.address), reason=record.reason)
        details["created"] = created
    if not created:
        response.status_code = 200
    return record.to_json()


@router.delete("/{suppression_id}", name="suppressions.remove")
async def remove_suppression(
    principal: Admin, db: DbDep, audit: AuditDep, suppression_id: Annotated[int, Path(ge=1, le=2**62)]
) -> dict[str, Any]:
    """The entry removed: its recipient gets notifications again. 404 when there is none."""
    async with audit(f"suppression:{suppression_id}") as details:
        record = await suppressions.remove(db, suppression_id, principal.tenant)
        details.update(channel=record.channel, address=masked(record.channel, record.address), reason=record.reason)
    return record.to_json()
