"""The dashboard's session: the cookie, the CSRF token of its forms, its rate limit and audit.

The session is a JWT the dashboard mints at sign-in (`use: "dashboard"`, its own `jti`), kept in
an HttpOnly, SameSite=Strict cookie scoped to `/dashboard` that expires with it. The admin API
refuses it as a bearer token, and signing out records its `jti` so it is refused here too
(`notifications.sql.store.dashboard_tokens`). Each form carries a CSRF token derived from the
session token, which a page on another site can neither read nor compute.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from api.deps import AppContext, Audit, audit_write, context, over_limit
from notifications.auth import InvalidTokenError, Principal, unverified_claims, verify_token
from notifications.sql import store

COOKIE = "notifications_dashboard"
PATH = "/dashboard"
SESSION_USE = "dashboard"
LINK_USE = "dashboard-link"


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    expires_at: int
    jti: str | None

    @property
    def is_global(self) -> bool:
        """Queue-wide switches need a token without a tenant, as in the API."""
        return self.principal.tenant is None


class SignInRequired(Exception):
    """No session, or an expired, invalid or signed-out one: the browser goes to the sign-in page."""

    def __init__(self, next_path: str, reason: str | None = None) -> None:
        super().__init__(reason or "sign in")
        self.next_path = next_path
        self.reason = reason


class Refused(Exception):
    """A signed-in request the dashboard will not carry out (a role, a CSRF token, the rate limit)."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}


def csrf_token(session_token: str) -> str:
    return hmac.new(b"notifications-dashboard-csrf", session_token.encode(), hashlib.sha256).hexdigest()[:32]


def check_token(ctx: AppContext, token: str) -> tuple[Principal, dict[str, Any]]:
    """A verified admin token and its claims (InvalidTokenError otherwise)."""
    principal = verify_token(ctx.settings, token, ctx.keys)
    if principal.role != "admin":
        raise InvalidTokenError("the dashboard needs a token with the admin role")
    return principal, unverified_claims(token)


async def signed_in(request: Request, ctx: Annotated[AppContext, Depends(context)]) -> Session:
    token = request.cookies.get(COOKIE)
    # a form's page is not one to come back to with a GET after signing in
    back = _here(request) if request.method == "GET" else PATH
    if not token:
        raise SignInRequired(back)
    try:
        principal, claims = check_token(ctx, token)
        if principal.use not in (SESSION_USE, None):
            raise InvalidTokenError("not a dashboard session")
        jti = claims.get("jti")
        if principal.use == SESSION_USE and (not isinstance(jti, str) or await store.token_spent(ctx.client.db, jti)):
            raise InvalidTokenError("signed out")
    except InvalidTokenError as exc:
        raise SignInRequired(back, f"your session ended: {exc}") from None
    session = Session(principal, csrf_token(token), int(claims["exp"]), jti if isinstance(jti, str) else None)
    request.state.dashboard = session
    request.state.principal = principal
    return session


async def checked(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    session: Annotated[Session, Depends(signed_in)],
) -> Session:
    """A form post: its `csrf` field must be this session's."""
    form = await request.form()
    sent = form.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf):
        path = request.url.path
        await audit_write(ctx, session.principal, f"dashboard {path}"[:64], None, "forbidden", {"reason": "csrf"})
        raise Refused(403, "This form did not come from your dashboard session. Reload the page and try again.")
    return session


SessionDep = Annotated[Session, Depends(signed_in)]
FormSession = Annotated[Session, Depends(checked)]


def audit(request: Request, ctx: AppContext, session: Session) -> Audit:
    return Audit(request, ctx, session.principal)


async def forbid(request: Request, ctx: AppContext, session: Session, action: str, target: str, why: str) -> Refused:
    """A refused change, audited as the API audits its 403s."""
    await audit_write(ctx, session.principal, action, target, "forbidden", {"reason": why, "via": "dashboard"})
    return Refused(403, why)


async def limited(ctx: AppContext, session: Session, action: str) -> None:
    """The API's limit on queue operations, counted for the same subject (the dashboard is no way around it)."""
    retry = await over_limit(ctx, session.principal, action, None, {"via": "dashboard"})
    if retry is not None:
        limit = f"{ctx.limiter.limit} per {ctx.limiter.window:g} s"
        message = f"Too many changes: the limit is {limit}. Try again in {retry} s."
        raise Refused(429, message, {"Retry-After": retry})


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path
