"""Clean 4xx for bad input, never a 500: error bodies, exception handlers and the body guard.

Every error body is `{"detail": str, "errors": [{"field", "message"}]}` so scripts can
name the offending field the same way for the Python client's NotificationValidationError
and for a bad HTTP request.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.service import RPCError

from notifications.campaign_payloads import UPLOAD_HINT
from notifications.errors import (
    NotificationConflictError,
    NotificationNotFoundError,
    NotificationUnavailableError,
    NotificationValidationError,
    PayloadTooLargeError,
)
from notifications.sql.engine import UNAVAILABLE, is_unavailable
from notifications.sql.queries import InvalidCursorError

log = logging.getLogger("api")

_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def error_response(
    status: int,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": errors or [], **extra}, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed JSON body", [{"field": "body", "message": "not valid JSON"}])
    items = [{"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in errors]
    return error_response(422, "validation failed", items)


async def _notification_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotificationValidationError)
    return error_response(422, "validation failed", exc.errors)


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, str(exc) or "not found")


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(409, str(exc))


async def _too_large(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(413, str(exc), [{"field": "recipients", "message": str(exc)}])


async def _bad_cursor(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, "validation failed", [{"field": "cursor", "message": str(exc)}])


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))


async def _temporal(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RPCError)
    log.warning("Temporal call failed: %s (%s)", exc.status.name if exc.status else "?", type(exc).__name__)
    return error_response(503, "Temporal is unavailable; try again", headers={"Retry-After": "5"})


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """503 + Retry-After: nothing was stored or changed; `notificationId` is safe to retry with."""
    assert isinstance(exc, NotificationUnavailableError)
    extra: dict[str, Any] = {"notificationId": exc.notification_id} if exc.notification_id else {}
    return error_response(503, str(exc), headers={"Retry-After": str(exc.retry_after)}, **extra)


async def _database(request: Request, exc: Exception) -> JSONResponse:
    # A read the routes make themselves: the driver's own error, type only (its text has parameters).
    if not is_unavailable(exc):
        return await _unexpected(request, exc)
    log.warning("database unavailable: %s", type(exc).__name__)
    return error_response(503, "the database is unavailable; try again", headers={"Retry-After": "5"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Type and stack only: exception messages may carry addresses, tokens or SQL parameters.
    stack = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unhandled %s on %s %s\n%s", type(exc).__name__, request.method, request.url.path, stack)
    return error_response(500, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(NotificationValidationError, _notification_validation)
    app.add_exception_handler(NotificationNotFoundError, _not_found)
    app.add_exception_handler(NotificationConflictError, _conflict)
    app.add_exception_handler(PayloadTooLargeError, _too_large)
    app.add_exception_handler(InvalidCursorError, _bad_cursor)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(RPCError, _temporal)
    app.add_exception_handler(NotificationUnavailableError, _unavailable)
    for kind in (*UNAVAILABLE, DBAPIError):
        app.add_exception_handler(kind, _database)
    app.add_exception_handler(Exception, _unexpected)


# Routes whose bodies are forms, not JSON: RFC 8058's one-click POST and the dashboard's forms.
FORM_PATHS = ("/unsubscribe/", "/dashboard/")
# Uploads the route streams and bounds itself (a campaign's CSV / NDJSON recipients, any size).
STREAMED = re.compile(r"^/api/admin/campaigns/[^/]+/recipients$")


class BodyGuard:
    """Rejects oversized bodies (413) and non-JSON bodies (415, but for FORM_PATHS) before any route parses them.

    The body is read here, bounded, and replayed to the app, so a client that lies in
    Content-Length or streams without one cannot make the app buffer more than the limit.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH") or STREAMED.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await self._reject(scope, receive, send, 400, "invalid Content-Length")
                return
            if int(length) > self.max_body:
                await self._reject(scope, receive, send, 413, self._too_large(scope))
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._reject(scope, receive, send, 413, self._too_large(scope))
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if body.strip() and not str(scope.get("path", "")).startswith(FORM_PATHS):
            media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
                await self._reject(scope, receive, send, 415, "Content-Type must be application/json")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self, scope: Scope) -> str:
        hint = f"; {UPLOAD_HINT}" if scope.get("path") == "/api/admin/campaigns" else ""
        return f"request body exceeds {self.max_body} bytes{hint}"

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        await error_response(status, detail)(scope, receive, send)
