"""The operators' dashboard at `/dashboard`: server-rendered pages over the same client and queries as the API.

`install_dashboard(app)` adds its routes and makes every error of a dashboard page an HTML page
(with the status code the API's handler chose for it, so a 409 stays a 409), not JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from api.dashboard import campaigns, notifications, overview, pages, signin
from api.dashboard.render import page
from api.dashboard.session import PATH, Refused, SignInRequired
from api.dashboard.signin import sign_in_redirect

Handler = Callable[[Request, Exception], Awaitable[Response]]
_HEADINGS = {404: "Not found", 409: "Not possible now", 422: "Check the form", 503: "Try again shortly"}


def _html_on_dashboard(handler: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        if not request.url.path.startswith(PATH):
            return response
        try:
            body: dict[str, Any] = json.loads(bytes(response.body))
        except ValueError:
            body = {}
        errors = [f"{e.get('field')}: {e.get('message')}" for e in body.get("errors", []) if isinstance(e, dict)]
        message = str(body.get("detail") or "Something went wrong.")
        if errors:
            message = f"{message}: {'; '.join(errors)}"
        heading = _HEADINGS.get(response.status_code, "That did not work")
        html = page(request, "error.html", response.status_code, heading=heading, message=message)
        if "Retry-After" in response.headers:
            html.headers["Retry-After"] = response.headers["Retry-After"]
        return html

    return handle


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    heading = "Slow down" if exc.status_code == 429 else "Not allowed"
    response = page(request, "error.html", exc.status_code, heading=heading, message=exc.message)
    response.headers.update(exc.headers)
    return response


async def _sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return sign_in_redirect(request, exc)


def install_dashboard(app: FastAPI) -> None:
    """Call after the API's error handlers are installed: it wraps them for the dashboard's paths."""
    for kind, handler in list(app.exception_handlers.items()):
        app.exception_handlers[kind] = _html_on_dashboard(handler)  # type: ignore[arg-type]
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(Refused, _refused)
    for module in (signin, overview, notifications, campaigns, pages):
        app.include_router(module.router)
