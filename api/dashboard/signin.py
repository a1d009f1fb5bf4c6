"""Signing in and out: a pasted admin token, or the link `notifications dev` prints, used once.

Opening the link only shows a button: a GET changes nothing (link previews and mail scanners fetch
links), and the POST spends the link's `jti` in one INSERT, so of two racing uses one wins. Either
way the cookie holds a session token minted here, never the pasted or linked token itself. A
sign-in posted from another site is refused (a login CSRF would sign the operator into the
attacker's session).
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.dashboard.render import HEADERS, page
from api.dashboard.session import (
    COOKIE,
    LINK_USE,
    PATH,
    SESSION_USE,
    FormSession,
    SignInRequired,
    check_token,
)
from api.deps import AppContext, audit_write, context
from notifications.auth import AuthConfigurationError, InvalidTokenError, mint_token
from notifications.config import Settings
from notifications.sql import store

LOGIN_ACTION = "dashboard.login"
SESSION_SECONDS = 12 * 3600  # at most; never past the token signed in with
LINK_SECONDS = 12 * 3600
CROSS_SITE = "That sign-in came from another site and was refused. Sign in from this page."
USED = "That sign-in link was used already. Paste a token, or get one with `notifications token`."

router = APIRouter(prefix=PATH, include_in_schema=False)
Context = Annotated[AppContext, Depends(context)]


def sign_in_link(settings: Settings, base_url: str, *, ttl_seconds: float = LINK_SECONDS) -> str:
    """A link that signs an admin in once (`notifications dev` prints it)."""
    token = mint_token(
        settings, role="admin", ttl_seconds=ttl_seconds, subject="dev-admin", jti=secrets.token_hex(16), use=LINK_USE
    )
    return f"{base_url.rstrip('/')}{PATH}/login?token={token}"


def _safe_next(value: str | None) -> str:
    """Only a dashboard path: a sign-in must not send the browser anywhere else."""
    if value and value.startswith(PATH) and not value.startswith("//") and "\\" not in value:
        return value
    return PATH


def _login_page(request: Request, next_path: str, error: str | None, status_code: int) -> HTMLResponse:
    return page(request, "login.html", status_code, next=next_path, error=error)


def _session_token(ctx: AppContext, claims: dict[str, Any], source: str) -> tuple[str, int]:
    """A dashboard session for whoever the token names, and its seconds to live; the token itself
    when this API cannot sign (RS256 with only the public key)."""
    left = max(1, int(claims["exp"]) - int(time.time()))
    ttl = min(SESSION_SECONDS, left)
    try:
        token = mint_token(
            ctx.settings,
            role="admin",
            ttl_seconds=ttl,
            subject=str(claims["sub"]),
            tenant=claims.get("tenant"),
            keys=ctx.keys,
            jti=secrets.token_hex(16),
            use=SESSION_USE,
        )
    except AuthConfigurationError:
        return source, left
    return token, ttl


def _cross_site(request: Request) -> bool:
    """What the browser says of the form's origin: `Sec-Fetch-Site`, else `Origin` against our Host.
    A client that sends neither is no browser, and no CSRF victim."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()


async def _sign_in(request: Request, ctx: AppContext, token: str, next_path: str) -> Response:
    if _cross_site(request):
        return _login_page(request, PATH, CROSS_SITE, 403)
    try:
        principal, claims = check_token(ctx, token)
        if principal.use not in (None, LINK_USE):
            raise InvalidTokenError("it is not a sign-in token")
    except InvalidTokenError as exc:
        return _login_page(request, next_path, f"That token was refused: {exc}.", 401)
    target = None
    if principal.use == LINK_USE:
        jti = claims.get("jti")
        target = f"link:{jti}"
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        if not isinstance(jti, str) or not await store.spend_token(
            ctx.client.db, jti=jti, kind="link", subject=principal.subject, expires_at=expires
        ):
            return _login_page(request, next_path, USED, 401)
    session, max_age = _session_token(ctx, claims, token)
    await audit_write(ctx, principal, LOGIN_ACTION, target, "ok", {"via": "link" if target else "token"})
    response = RedirectResponse(_safe_next(next_path), status_code=303, headers=HEADERS)
    secure = ctx.settings.is_production or request.url.scheme == "https"
    response.set_cookie(COOKIE, session, max_age=max_age, path=PATH, httponly=True, samesite="strict", secure=secure)
    return response


@router.get("/login", name="dashboard.login")
async def login_page(
    request: Request, ctx: Context, token: str | None = None, next: str = PATH, ended: bool = False
) -> Response:
    """The sign-in form; with a link's `token`, a button that uses it (a GET alone signs nobody in)."""
    next_path = _safe_next(next)
    if token:
        try:
            principal, claims = check_token(ctx, token)
            jti = claims.get("jti")
            if principal.use != LINK_USE or not isinstance(jti, str):
                raise InvalidTokenError("it is not a sign-in link")
        except InvalidTokenError as exc:
            return _login_page(request, next_path, f"That sign-in link was refused: {exc}.", 401)
        if await store.token_spent(ctx.client.db, jti):
            return _login_page(request, next_path, USED, 401)
        return page(request, "login_link.html", token=token, next=next_path, subject=principal.subject)
    error = "Your session ended (it expired, was signed out or is no longer valid). Sign in again." if ended else None
    return _login_page(request, next_path, error, 200)


@router.post("/login", name="dashboard.login_form")
async def login_form(
    request: Request,
    ctx: Context,
    token: Annotated[str, Form(max_length=8192)] = "",
    next: Annotated[str, Form(max_length=512)] = PATH,
) -> Response:
    if not token.strip():
        return _login_page(request, _safe_next(next), "Paste an admin token to sign in.", 400)
    return await _sign_in(request, ctx, token.strip(), next)


@router.post("/logout", name="dashboard.logout")
async def logout(ctx: Context, session: FormSession) -> Response:
    """Ends the session for good: its token is refused from now on, wherever it was copied."""
    if session.jti is not None:
        expires = datetime.fromtimestamp(session.expires_at, UTC)
        await store.spend_token(
            ctx.client.db, jti=session.jti, kind="session", subject=session.principal.subject, expires_at=expires
        )
    response = RedirectResponse(f"{PATH}/login", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")
    return response


def sign_in_redirect(request: Request, exc: SignInRequired) -> Response:
    target = f"{PATH}/login?next={quote(exc.next_path, safe='/')}"
    if exc.reason:
        target += "&ended=1"
    if request.headers.get("HX-Request"):  # an htmx refresh: the whole page goes to the sign-in form
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
