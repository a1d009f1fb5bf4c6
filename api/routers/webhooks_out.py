"""Webhooks out: the customer's endpoints (`/api/admin/webhooks`) and what was sent to them.

The secret (`whsec_...`) is shown once, when the endpoint is created or its secret rotated. A
tenant-scoped token manages its tenant's endpoints, which receive that tenant's events; one
without a tenant manages endpoints that receive every tenant's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from api.deps import Admin, AuditDep, DbDep, SettingsDep, require_admin
from notifications.errors import NotificationNotFoundError
from notifications.sql.store import webhooks as store
from notifications.webhooks_out import (
    ROTATION_OVERLAP_HOURS,
    EndpointIn,
    EndpointPatch,
    check_url,
    delivery_json,
    endpoint_json,
    new_endpoint_id,
    new_secret,
)

router = APIRouter(prefix="/api/admin/webhooks", tags=["webhooks out"], dependencies=[Depends(require_admin)])
EndpointId = Annotated[str, Path(pattern=r"^we_[0-9a-f]{24}$")]


async def _endpoint(db: Any, endpoint_id: str, tenant: str | None) -> Any:
    row = await store.get_endpoint(db, endpoint_id, tenant)
    if row is None:
        raise NotificationNotFoundError(f"no webhook endpoint {endpoint_id!r}")
    return row


@router.post("", name="webhooks.create", status_code=201)
async def create(
    principal: Admin, db: DbDep, audit: AuditDep, settings: SettingsDep, body: EndpointIn
) -> dict[str, Any]:
    """`{"url", "events", "description"}` -> the endpoint with its `secret`, shown this once."""
    async with audit() as details:
        url = await check_url(body.url, allow_private=settings.webhooks_may_reach_private)
        values = {"id": new_endpoint_id(), "tenant": principal.tenant, "url": url, "events": body.events}
        row = await store.create_endpoint(db, {**values, "description": body.description, "secret": new_secret()})
        details.update(endpoint=row.id, events=body.events)
    return endpoint_json(row, with_secret=True)


@router.get("", name="webhooks.list")
async def list_endpoints(principal: Admin, db: DbDep) -> dict[str, Any]:
    return {"items": [endpoint_json(row) for row in await store.list_endpoints(db, principal.tenant)]}


@router.get("/{endpoint_id}", name="webhooks.get")
async def get(principal: Admin, db: DbDep, endpoint_id: EndpointId) -> dict[str, Any]:
    return endpoint_json(await _endpoint(db, endpoint_id, principal.tenant))


@router.patch("/{endpoint_id}", name="webhooks.update")
async def patch(
    principal: Admin, db: DbDep, audit: AuditDep, settings: SettingsDep, endpoint_id: EndpointId, body: EndpointPatch
) -> dict[str, Any]:
    """Any of `url`, `events`, `description`, `enabled` (true re-enables one a 410 disabled)."""
    async with audit(endpoint_id) as details:
        await _endpoint(db, endpoint_id, principal.tenant)
        values = body.model_dump(exclude_unset=True)
        if "url" in values and values["url"] is not None:
            await check_url(values["url"], allow_private=settings.webhooks_may_reach_private)
        if values.get("enabled"):
            values["disabled_reason"] = None
        await store.update_endpoint(db, endpoint_id, principal.tenant, values)
        details.update(changed=sorted(values))
    return endpoint_json(await _endpoint(db, endpoint_id, principal.tenant))


@router.delete("/{endpoint_id}", name="webhooks.delete", status_code=204)
async def remove(principal: Admin, db: DbDep, audit: AuditDep, endpoint_id: EndpointId) -> None:
    async with audit(endpoint_id):
        if not await store.delete_endpoint(db, endpoint_id, principal.tenant):
            raise NotificationNotFoundError(f"no webhook endpoint {endpoint_id!r}")


@router.post("/{endpoint_id}/rotate-secret", name="webhooks.rotate_secret")
async def rotate(principal: Admin, db: DbDep, audit: AuditDep, endpoint_id: EndpointId) -> dict[str, Any]:
    """A new secret, shown this once; the old one keeps signing beside it for 24 h."""
    async with audit(endpoint_id):
        row = await _endpoint(db, endpoint_id, principal.tenant)
        await store.rotate_secret(db, row, new_secret(), timedelta(hours=ROTATION_OVERLAP_HOURS))
    return endpoint_json(await _endpoint(db, endpoint_id, principal.tenant), with_secret=True)


@router.get("/{endpoint_id}/deliveries", name="webhooks.deliveries")
async def deliveries(
    principal: Admin,
    db: DbDep,
    endpoint_id: EndpointId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> dict[str, Any]:
    """Newest first: event, status (pending, succeeded, failed), attempts, last response code and time."""
    await _endpoint(db, endpoint_id, principal.tenant)
    rows = await store.list_deliveries(db, endpoint_id, limit + 1, cursor)
    items = [delivery_json(r) for r in rows[:limit]]
    return {"items": items, "nextCursor": items[-1]["id"] if len(rows) > limit else None}


@router.post("/{endpoint_id}/deliveries/{delivery_id}/retry", name="webhooks.retry_delivery")
async def retry(
    principal: Admin,
    db: DbDep,
    audit: AuditDep,
    endpoint_id: EndpointId,
    delivery_id: Annotated[int, Path(ge=1, le=2**62)],
) -> dict[str, Any]:
    """Send it again now, with a fresh retry schedule (the same `webhook-id`)."""
    async with audit(endpoint_id) as details:
        await _endpoint(db, endpoint_id, principal.tenant)
        if not await store.retry_delivery(db, endpoint_id, delivery_id):
            raise NotificationNotFoundError(f"no delivery {delivery_id} of {endpoint_id}")
        details["delivery"] = delivery_id
    return {"retrying": True, "deliveryId": delivery_id}
