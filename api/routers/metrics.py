"""GET /metrics: Prometheus metrics of the API (requests, latency) and of the queues (from SQL).

Unauthenticated like every Prometheus target; it carries counts only, no personal data.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from api.deps import AppContext, context
from notifications.sql import queries


class ApiMetrics:
    """One registry per app, so several apps in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "http_request_duration_seconds", "HTTP request latency", ["method", "route"], registry=self.registry
        )
        self.jobs = Gauge(
            "notification_queue_jobs",
            "notifications per queue and state (as GET /stats)",
            ["queue", "state"],
            registry=self.registry,
        )

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        if route != "/metrics":
            self.requests.labels(request.method, route, str(response.status_code)).inc()
            self.latency.labels(request.method, route).observe(time.perf_counter() - started)
        return response


router = APIRouter(tags=["metrics"])


@router.get("/metrics", name="metrics", include_in_schema=False)
async def metrics(request: Request, ctx: Annotated[AppContext, Depends(context)]) -> Response:
    api_metrics: ApiMetrics = request.app.state.metrics
    stats = await queries.queue_stats(ctx.client.db)
    for queue, counts in stats.items():
        for state, value in counts.items():
            api_metrics.jobs.labels(queue, state).set(value)
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
