"""Preferences: each user's (`/api/admin/users/{userId}/preferences`) and each tenant's defaults.

A tenant-scoped token reads and writes its own tenant's; a token without a tenant names one with
`?tenant=` (default: `default`, the tenant of notifications enqueued without one).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from api.deps import Admin, AuditDep, ClientDep, require_admin
from notifications.preferences import Preferences
from notifications.schemas import NAME_PATTERN

router = APIRouter(prefix="/api/admin", tags=["preferences"], dependencies=[Depends(require_admin)])

UserId = Annotated[str, Path(min_length=1, max_length=128)]
TenantName = Annotated[str, Path(pattern=NAME_PATTERN)]
TenantQuery = Annotated[str | None, Query(pattern=NAME_PATTERN, description="for a token without a tenant")]


def _tenant(principal: Admin, asked: str | None) -> str | None:
    if principal.tenant is not None:
        if asked is not None and asked != principal.tenant:
            raise HTTPException(403, detail="the token may only see its own tenant's preferences")
        return principal.tenant
    return asked


@router.get(
    "/users/{user_id}/preferences",
    name="preferences.user.get",
    response_model=Preferences,
    response_model_exclude_none=True,
)
async def get_user_preferences(
    principal: Admin, client: ClientDep, user_id: UserId, tenant: TenantQuery = None
) -> dict[str, Any]:
    """The user's own document; `{}` when they set nothing (everything allowed, tenant defaults apply)."""
    return await client.get_preferences(user_id, tenant=_tenant(principal, tenant))


@router.put(
    "/users/{user_id}/preferences",
    name="preferences.user.set",
    response_model=Preferences,
    response_model_exclude_none=True,
)
async def set_user_preferences(
    principal: Admin, client: ClientDep, audit: AuditDep, user_id: UserId, body: Preferences, tenant: TenantQuery = None
) -> dict[str, Any]:
    """Replace the user's document. Applies to every send that comes due afterwards, scheduled ones too."""
    scope = _tenant(principal, tenant)
    async with audit(f"user:{user_id}") as details:
        document = await client.set_preferences(user_id, body.document(), tenant=scope, actor=None)
        details["preferences"] = document
    return document


@router.get(
    "/tenants/{tenant}/preferences",
    name="preferences.tenant.get",
    response_model=Preferences,
    response_model_exclude_none=True,
)
async def get_tenant_preferences(principal: Admin, client: ClientDep, tenant: TenantName) -> dict[str, Any]:
    """The tenant's defaults; each user's own values override them key by key."""
    return await client.get_tenant_preferences(_tenant(principal, tenant) or tenant)


@router.put(
    "/tenants/{tenant}/preferences",
    name="preferences.tenant.set",
    response_model=Preferences,
    response_model_exclude_none=True,
)
async def set_tenant_preferences(
    principal: Admin, client: ClientDep, audit: AuditDep, tenant: TenantName, body: Preferences
) -> dict[str, Any]:
    scope = _tenant(principal, tenant) or tenant
    async with audit(f"tenant:{scope}") as details:
        document = await client.set_tenant_preferences(scope, body.document(), actor=None)
        details["preferences"] = document
    return document
