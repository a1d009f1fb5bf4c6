"""Signing in to the dashboard: the session cookie, the CSRF token of its forms, sign-in and sign-out.

The session is the admin JWT itself, in an HttpOnly, SameSite=Strict cookie scoped to
`/dashboard` that expires with the token: no server-side session store, and a token revoked by
rotating the key ends every session. Each form carries a CSRF token derived from the session
token, which a page on another site can neither read nor compute. The sign-in link that
`notifications dev` prints names its token (`jti`) and is accepted once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.dashboard.render import page
from api.deps import AppContext, Audit, audit_write, context
from notifications.auth import InvalidTokenError, Principal, mint_token, unverified_claims, verify_token
from notifications.config import Settings
from notifications.sql.activity import audited

COOKIE = "notifications_dashboard"
PATH = "/dashboard"
LOGIN_ACTION = "dashboard.login"


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    expires_at: int

    @property
    def is_global(self) -> bool:
        """Queue-wide switches need a token without a tenant, as in the API."""
        return self.principal.tenant is None


class SignInRequired(Exception):
    """No session, or an expired or invalid one: the browser is sent to the sign-in page."""

    def __init__(self, next_path: str, reason: str | None = None) -> None:
        super().__init__(reason or "sign in")
        self.next_path = next_path
        self.reason = reason


class Refused(Exception):
    """A signed-in request the dashboard will not carry out (a role, a missing CSRF token)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def sign_in_link(settings: Settings, base_url: str, *, ttl_seconds: float = 12 * 3600) -> str:
    """A link that signs an admin in once (`notifications dev` prints it)."""
    token = mint_token(settings, role="admin", ttl_seconds=ttl_seconds, subject="dev-admin", jti=secrets.token_hex(8))
    return f"{base_url.rstrip('/')}{PATH}/login?token={token}"


def csrf_token(session_token: str) -> str:
    return hmac.new(b"notifications-dashboard-csrf", session_token.encode(), hashlib.sha256).hexdigest()[:32]


def _check(ctx: AppContext, token: str) -> tuple[Principal, dict[str, Any]]:
    principal = verify_token(ctx.settings, token, ctx.keys)
    if principal.role != "admin":
        raise InvalidTokenError("the dashboard needs a token with the admin role")
    return principal, unverified_claims(token)


def signed_in(request: Request, ctx: Annotated[AppContext, Depends(context)]) -> Session:
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired(_here(request))
    try:
        principal, claims = _check(ctx, token)
    except InvalidTokenError as exc:
        raise SignInRequired(_here(request), f"your session ended: {exc}") from None
    session = Session(principal, csrf_token(token), int(claims["exp"]))
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


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def _safe_next(value: str | None) -> str:
    """Only a dashboard path: a sign-in link must not send the browser anywhere else."""
    if value and value.startswith(PATH) and not value.startswith("//") and "\\" not in value:
        return value
    return PATH


router = APIRouter(prefix=PATH, include_in_schema=False)


def _login_page(request: Request, next_path: str, error: str | None, status_code: int) -> HTMLResponse:
    return page(request, "login.html", status_code, next=next_path, error=error)


async def _sign_in(request: Request, ctx: AppContext, token: str, next_path: str, *, link: bool) -> Response:
    try:
        principal, claims = _check(ctx, token.strip())
    except InvalidTokenError as exc:
        return _login_page(request, next_path, f"That token was refused: {exc}.", 401)
    jti = claims.get("jti")
    target = f"link:{jti}" if link and jti else None
    if target and await audited(ctx.client.db, action=LOGIN_ACTION, target=target):
        message = "That sign-in link was used already. Paste a token, or get a new one with `notifications token`."
        return _login_page(request, next_path, message, 401)
    await audit_write(ctx, principal, LOGIN_ACTION, target, "ok", {"via": "link" if link else "token"})
    response = RedirectResponse(_safe_next(next_path), status_code=303)
    max_age = max(1, int(claims["exp"]) - int(time.time()))
    secure = ctx.settings.is_production or request.url.scheme == "https"
    response.set_cookie(
        COOKIE, token.strip(), max_age=max_age, path=PATH, httponly=True, samesite="strict", secure=secure
    )
    return response


@router.get("/login", name="dashboard.login")
async def login_page(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    token: str | None = None,
    next: str = PATH,
    ended: bool = False,
) -> Response:
    """The sign-in form, or a sign-in link (`?token=`) accepted once."""
    if token:
        return await _sign_in(request, ctx, token, next, link=True)
    error = "Your session ended (the token expired or is no longer valid). Sign in again." if ended else None
    return _login_page(request, _safe_next(next), error, 200)


@router.post("/login", name="dashboard.login_form")
async def login_form(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    token: Annotated[str, Form(max_length=8192)] = "",
    next: Annotated[str, Form(max_length=512)] = PATH,
) -> Response:
    if not token.strip():
        return _login_page(request, _safe_next(next), "Paste an admin token to sign in.", 400)
    return await _sign_in(request, ctx, token, next, link=False)


@router.post("/logout", name="dashboard.logout")
async def logout(session: FormSession) -> Response:
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")
    return response


def sign_in_redirect(request: Request, exc: SignInRequired) -> Response:
    target = f"{PATH}/login?next={quote(exc.next_path, safe='/')}"
    if exc.reason:
        target += "&ended=1"
    if request.headers.get("HX-Request"):  # an htmx refresh: the whole page goes to the sign-in form
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
