"""Rendering the dashboard's pages: one Jinja2 environment, its filters, and the headers every page gets.

Pages are plain HTML forms and links (usable without JavaScript); htmx refreshes parts of them
and uPlot draws the chart, both served from `api/static/vendor`. The Content-Security-Policy
allows nothing that is not from the API itself, and no inline script or style.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from notifications.redact import mask_email, mask_emails_in, mask_recipient, mask_token

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
STATIC = "/static"
HTMX = f"{STATIC}/vendor/htmx.org-2.0.11/htmx.min.js"
UPLOT_JS = f"{STATIC}/vendor/uplot-1.6.32/uPlot.iife.min.js"
UPLOT_CSS = f"{STATIC}/vendor/uplot-1.6.32/uPlot.min.css"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the login link's token must not leak to another page
    "Cache-Control": "no-store",
}


def when(value: datetime | str | None) -> dict[str, str] | None:
    """A time as the templates show it: ISO UTC for the browser to localise, and a UTC text."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return {"iso": value.isoformat().replace("+00:00", "Z"), "utc": value.strftime("%Y-%m-%d %H:%M:%S UTC")}


def page_url(path: str, **params: Any) -> str:
    """A dashboard path with its query: the filters that are set, blank ones left out."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def masked(record: dict[str, Any]) -> str:
    """The recipient of a notification record (its JSON form) as list pages show it."""
    channel, recipient = record.get("channel", ""), record.get("recipient")
    email = recipient if channel == "email" else None
    return mask_recipient(channel, email, None if email else recipient, record.get("userId")) or "–"


TEMPLATES.env.globals.update(htmx=HTMX, uplot_js=UPLOT_JS, uplot_css=UPLOT_CSS, static=STATIC)
TEMPLATES.env.filters.update(
    when=when, masked=masked, mask_email=mask_email, mask_token=mask_token, mask_emails_in=mask_emails_in
)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A full page or an htmx fragment, with the dashboard's headers."""
    context.setdefault("session", getattr(request.state, "dashboard", None))
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(HEADERS)
    return response
