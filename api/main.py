"""The FastAPI app: `create_app(settings)` builds it; `app` is the one `uvicorn api.main:app` serves.

Auth keys are resolved in `create_app`, so a production process without JWT_SECRET or
JWT_PUBLIC_KEY refuses to start instead of serving an API nobody can (or everybody could) call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.dashboard import install_dashboard
from api.deps import AppContext
from api.docs import install_docs
from api.errors import BodyGuard, install_error_handlers
from api.ratelimit import RateLimiter
from api.routers import (
    audit,
    campaigns,
    codec,
    dead_letter,
    enqueue,
    metrics,
    notifications,
    preferences,
    queues,
    suppressions,
    unsubscribe,
    webhooks_in,
    webhooks_out,
)
from api.routers.metrics import ApiMetrics
from api.schemas import ErrorBody
from notifications.auth import key_set
from notifications.client import NotificationClient
from notifications.config import Settings, get_settings
from notifications.unsubscribe import UnsubscribeTokens

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "malformed request"),
        (401, "missing, invalid or expired token"),
        (403, "the token's role or tenant does not allow this"),
        (413, "body too large"),
        (415, "body is not JSON"),
        (422, "validation failed: `errors` names each field"),
        (503, "Temporal or the database is unavailable: nothing was stored or changed; retry after Retry-After"),
    )
}


def create_app(settings: Settings, *, client: NotificationClient | None = None) -> FastAPI:
    """Build the API. Pass `client` to share one (tests); otherwise the app connects on startup."""
    keys = key_set(settings)
    unsubscribe_tokens = UnsubscribeTokens.from_settings(settings)  # production refuses to start without it
    limiter = RateLimiter(settings.api_rate_limit, settings.api_rate_limit_window_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = client is None
        active = client if client is not None else await NotificationClient.connect(settings)
        app.state.ctx = AppContext(settings, active, keys, limiter, time.monotonic())
        try:
            yield
        finally:
            if own:
                await active.close()

    app = FastAPI(
        title="Notifications admin API",
        version="1.0.0",
        description="Queue management, monitoring, dead letters and audit of the notification system; "
        "enqueue over HTTP for services. Every route needs a JWT bearer token.",
        lifespan=lifespan,
        responses=_ERRORS,
        docs_url=None,  # served with local assets by api.docs
        redoc_url=None,
    )
    if client is not None:  # usable without running the lifespan (httpx ASGITransport does not)
        app.state.ctx = AppContext(settings, client, keys, limiter, time.monotonic())
    app.state.unsubscribe = unsubscribe_tokens
    install_error_handlers(app)
    install_docs(app)
    app.add_middleware(BodyGuard, max_body=settings.api_max_body_bytes)
    app.state.metrics = ApiMetrics()
    app.middleware("http")(app.state.metrics.middleware)
    # The Web UI calls the codec server from the browser, from its own origin.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.codec_cors_origins,
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
    )
    # Literal paths before /api/admin/notifications/{notification_id}.
    routers = (
        queues,
        dead_letter,
        notifications,
        preferences,
        suppressions,
        webhooks_out,
        campaigns,
        audit,
        enqueue,
        codec,
        metrics,
    )
    for module in (*routers, unsubscribe, webhooks_in):
        app.include_router(module.router)
    install_dashboard(app)  # after the error handlers: it renders theirs as pages on its paths

    @app.get("/livez", tags=["health"], name="livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        """Liveness for orchestrators: the process answers (no auth, no dependencies checked)."""
        return {"status": "ok"}

    return app


def __getattr__(name: str) -> Any:
    """`app`, built from the environment on first access rather than at import.

    Importing `api.main` (tests, `create_app` users) must not resolve keys or write the
    development secret; `uvicorn api.main:app` still finds a module-level `app`.
    """
    if name == "app":
        value = create_app(get_settings())
        globals()["app"] = value
        return value
    raise AttributeError(name)
