"""One-click unsubscribe (RFC 8058): the link in every non-critical email's `List-Unsubscribe` header.

`POST /unsubscribe/{token}` with the form body `List-Unsubscribe=One-Click` (what Gmail, Yahoo and
Apple Mail send, and what the confirmation page's button sends) records the opt-out: no login,
idempotent, audited. `GET` only shows that page: mail scanners fetch links, and a fetch must never
unsubscribe anyone. A token that is not ours gets a 400 page that says nothing about why.
"""

from __future__ import annotations

import html
import re
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse

from api.deps import ContextDep
from notifications.recipients import normalise
from notifications.redact import mask_email
from notifications.sql import store
from notifications.types import Channel
from notifications.unsubscribe import ONE_CLICK, Target, UnsubscribeTokens

router = APIRouter(prefix="/unsubscribe", tags=["unsubscribe"])
Token = Annotated[str, Path(max_length=2048)]
_MULTIPART_FIELD = re.compile(rb'name="?List-Unsubscribe"?\r?\n(?:[^\r\n]*\r?\n)*?\r?\n\s*One-Click\s*\r?\n', re.I)
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family: Arial, sans-serif; color: #222; max-width: 32rem; margin: 3rem auto; padding: 0 1rem;">
<h1 style="font-size: 1.4rem;">{title}</h1>{body}</body></html>"""


def tokens(request: Request) -> UnsubscribeTokens:
    found: UnsubscribeTokens = request.app.state.unsubscribe
    return found


TokensDep = Annotated[UnsubscribeTokens, Depends(tokens)]


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status)


def _invalid() -> HTMLResponse:
    return _page("This link is not valid", "<p>Nothing was changed.</p>", 400)


def _what(target: Target) -> str:
    return f"{target.type.replace('_', ' ')} emails" if target.type else "these emails"


@router.get("/{token}", response_class=HTMLResponse, name="unsubscribe.confirm")
async def confirm(token: Token, found: TokensDep) -> HTMLResponse:
    """The confirmation page; its button POSTs the one-click form. Changes nothing by itself."""
    target = found.read(token)
    if target is None:
        return _invalid()
    form = (
        f'<p>Stop receiving {html.escape(_what(target))}?</p><form method="post">'
        f'<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit" style="font-size: 1rem; padding: .5rem 1rem;">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", form)


@router.post("/{token}", response_class=HTMLResponse, name="unsubscribe.one_click")
async def one_click(token: Token, request: Request, found: TokensDep, ctx: ContextDep) -> HTMLResponse:
    """Record the opt-out from this type of email (the email channel only); 200 again if already out."""
    target = found.read(token)
    if target is None:
        return _invalid()
    if not _is_one_click(request.headers.get("content-type", ""), await request.body()):
        return _page("Unsubscribe", f"<p>The request must carry <code>{ONE_CLICK}</code>.</p>", 400)
    db = ctx.client.db
    if target.user_id is None and target.type is None:  # an address out of every email: the suppression list
        address = normalise(Channel.EMAIL, target.address or "")
        _, changed = await store.add_suppression(
            db, target.tenant, Channel.EMAIL.value, address, "unsubscribe", "one-click unsubscribe", "unsubscribe"
        )
    else:
        changed = await store.add_opt_out(
            db, target.tenant, target.subject, Channel.EMAIL.value, target.type, "unsubscribe"
        )
    await store.write_audit(
        db,
        actor="unsubscribe",
        tenant=target.tenant,
        action="unsubscribe",
        target=f"user:{target.user_id}" if target.user_id else f"address:{mask_email(target.address)}",
        outcome="ok" if changed else "already",
        details={"type": target.type, "channel": Channel.EMAIL.value},
    )
    return _page("You are unsubscribed", f"<p>You will no longer receive {html.escape(_what(target))}.</p>")


def _is_one_click(content_type: str, body: bytes) -> bool:
    """RFC 8058's body, form-urlencoded or multipart/form-data."""
    if content_type.startswith("multipart/form-data"):
        return bool(_MULTIPART_FIELD.search(body))
    values = parse_qs(body.decode("utf-8", "replace"))
    return values.get("List-Unsubscribe") == ["One-Click"]
