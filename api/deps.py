"""Dependencies: settings, the NotificationClient, the database, auth, rate limit and audit.

Everything the routes need hangs off `app.state` (set by `create_app`), so a test can
build an app around its own client and database and nothing global leaks between apps.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.ratelimit import RateLimiter
from notifications.audit import audit_outcome
from notifications.auth import InvalidTokenError, KeySet, Principal, verify_token
from notifications.client import NotificationClient
from notifications.config import Settings
from notifications.sql import store
from notifications.sql.engine import Database

log = logging.getLogger("api.audit")

_bearer = HTTPBearer(auto_error=False, description="JWT with a `role` claim (admin or service)")


@dataclass
class AppContext:
    settings: Settings
    client: NotificationClient
    keys: KeySet
    limiter: RateLimiter
    started_at: float


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_settings(ctx: Annotated[AppContext, Depends(context)]) -> Settings:
    return ctx.settings


def get_client(ctx: Annotated[AppContext, Depends(context)]) -> NotificationClient:
    return ctx.client


def get_db(ctx: Annotated[AppContext, Depends(context)]) -> Database:
    return ctx.client.db


# -- auth -------------------------------------------------------------------------------------------
def _unauthorized(description: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=description,
        headers={
            "WWW-Authenticate": f'Bearer realm="notifications", error="invalid_token", '
            f'error_description="{description}"'
        },
    )


def api_principal(ctx: AppContext, token: str) -> Principal:
    """A token the API accepts: verified, and not one minted for the dashboard alone (its link or
    session), which works nowhere else."""
    principal = verify_token(ctx.settings, token, ctx.keys)
    if principal.use is not None:
        raise InvalidTokenError(f"this token is for the {principal.use} only")
    return principal


def authenticate(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="notifications"'},
        )
    try:
        principal = api_principal(ctx, credentials.credentials)
    except InvalidTokenError as exc:
        raise _unauthorized(str(exc)) from None
    request.state.principal = principal
    return principal


async def _forbidden(request: Request, ctx: AppContext, principal: Principal, why: str) -> HTTPException:
    await audit_write(ctx, principal, _action(request), _target(request), "forbidden", {"reason": why})
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=why)


async def require_admin(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    principal: Annotated[Principal, Depends(authenticate)],
) -> Principal:
    if principal.role != "admin":
        raise await _forbidden(request, ctx, principal, "this operation needs the admin role")
    return principal


async def require_service(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    principal: Annotated[Principal, Depends(authenticate)],
) -> Principal:
    if principal.role not in ("service", "admin"):
        raise await _forbidden(request, ctx, principal, "this operation needs the service or admin role")
    return principal


async def require_global_admin(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    principal: Annotated[Principal, Depends(require_admin)],
) -> Principal:
    """Queue-wide switches affect every tenant, so a tenant-scoped token may not flip them."""
    if principal.tenant is not None:
        raise await _forbidden(request, ctx, principal, "queue-wide operations need a token without a tenant")
    return principal


Admin = Annotated[Principal, Depends(require_admin)]
Service = Annotated[Principal, Depends(require_service)]


# -- rate limit -------------------------------------------------------------------------------------
async def rate_limit(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    principal: Annotated[Principal, Depends(authenticate)],
) -> None:
    retry = await over_limit(ctx, principal, _action(request), _target(request), {})
    if retry is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"rate limit of {ctx.limiter.limit} operations per {ctx.limiter.window:g}s exceeded",
            headers={"Retry-After": retry},
        )


async def over_limit(
    ctx: AppContext, principal: Principal, action: str, target: str | None, details: dict[str, Any]
) -> str | None:
    """One limited operation counted for its subject: None when allowed, else its Retry-After
    value, with the refusal audited (the API's routes and the dashboard's forms alike)."""
    wait = await ctx.limiter.hit(principal.subject, ctx.client.db)
    if wait is None:
        return None
    await audit_write(ctx, principal, action, target, "rate_limited", details)
    return RateLimiter.retry_after_header(wait)


# -- audit ------------------------------------------------------------------------------------------
def _action(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "name", None) or f"{request.method} {request.url.path}")


def _target(request: Request) -> str | None:
    params = request.path_params
    return str(params["notification_id"]) if "notification_id" in params else None


async def audit_write(
    ctx: AppContext, principal: Principal, action: str, target: str | None, outcome: str, details: dict[str, Any]
) -> None:
    try:
        await store.write_audit(
            ctx.client.db,
            actor=principal.subject,
            tenant=principal.tenant,
            action=action,
            target=target,
            outcome=outcome,
            details=details,
        )
    except Exception as exc:  # the operation's own result matters more than its audit row; say so loudly
        # type only: a database error's text carries the row's parameters
        log.error("could not write the audit row for %s by %s: %s", action, principal.subject, type(exc).__name__)


class Audit:
    """`async with audit(target) as details:` records one admin operation and how it ended."""

    def __init__(self, request: Request, ctx: AppContext, principal: Principal) -> None:
        self.request = request
        self.ctx = ctx
        self.principal = principal

    @asynccontextmanager
    async def __call__(self, target: str | None = None, action: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """`action` names the operation when the route's own name does not (the dashboard's forms)."""
        details: dict[str, Any] = {}
        outcome = "ok"
        try:
            yield details
        except HTTPException as exc:
            outcome = f"http_{exc.status_code}"
            raise
        except BaseException as exc:
            outcome = audit_outcome(exc)
            details.setdefault("error", type(exc).__name__)
            raise
        finally:
            await audit_write(
                self.ctx,
                self.principal,
                action or _action(self.request),
                target or _target(self.request),
                outcome,
                details,
            )


def get_audit(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    principal: Annotated[Principal, Depends(authenticate)],
) -> Audit:
    return Audit(request, ctx, principal)


AuditDep = Annotated[Audit, Depends(get_audit)]
ClientDep = Annotated[NotificationClient, Depends(get_client)]
DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ContextDep = Annotated[AppContext, Depends(context)]
