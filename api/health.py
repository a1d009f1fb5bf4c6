"""The health check: the seed's JSON plus what an operator needs to know something is wrong.

- unhealthy: Temporal or the database does not answer (nothing can be enqueued or tracked);
- degraded: both answer, but a task queue has no live worker, or a provider reports a
  configuration error or an open circuit (notifications queue up but do not go out);
- healthy: everything answers.

Workers: DescribeTaskQueue lists the pollers of each task queue (workflow and activity
types) with the time each last polled. The server keeps a poller listed for minutes after
its worker is gone, so a poller counts as live only when seen within
`API_WORKER_STALE_SECONDS`. An idle worker re-polls once per long-poll interval (60 s on a
default server), so that window must be longer than the server's long-poll interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

from api.deps import AppContext
from notifications.sql import queries
from notifications.temporal import POLLER_KINDS, task_queue_pollers
from notifications.types import TASK_QUEUES, Channel

log = logging.getLogger("api.health")
T = TypeVar("T")


async def _timed(coro: Awaitable[T], limit: float) -> tuple[T, float]:
    start = time.monotonic()
    result = await asyncio.wait_for(coro, limit)
    return result, round((time.monotonic() - start) * 1000, 1)


async def check_temporal(ctx: AppContext) -> dict[str, Any]:
    try:
        ok, ms = await _timed(ctx.client.temporal.service_client.check_health(), ctx.settings.api_check_timeout_seconds)
    except Exception as exc:
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok" if ok else "down", "latencyMs": ms}


async def check_database(ctx: AppContext) -> dict[str, Any]:
    try:
        _, ms = await _timed(queries.ping(ctx.client.db), ctx.settings.api_check_timeout_seconds)
    except Exception as exc:
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "latencyMs": ms}


async def check_workers(ctx: AppContext) -> dict[str, Any]:
    temporal = ctx.client.temporal
    stale = ctx.settings.api_worker_stale_seconds

    async def one(channel: Channel) -> dict[str, Any]:
        queue = TASK_QUEUES[channel]
        out: dict[str, Any] = {"taskQueue": queue}
        live_types = 0
        for name in POLLER_KINDS:
            pollers = await asyncio.wait_for(
                task_queue_pollers(temporal, queue, name), ctx.settings.api_check_timeout_seconds
            )
            live = [p.seconds_ago for p in pollers if p.seconds_ago <= stale]
            out[f"{name}Pollers"] = len(live)
            if live:
                live_types += 1
                out[f"{name}LastPollSecondsAgo"] = round(max(min(live), 0.0), 1)
        out["status"] = "ok" if live_types == len(POLLER_KINDS) else "no_workers"
        return out

    try:
        results = await asyncio.gather(*(one(c) for c in Channel))
    except Exception as exc:
        return {
            c.value: {"taskQueue": TASK_QUEUES[c], "status": "unknown", "error": type(exc).__name__} for c in Channel
        }
    return {c.value: r for c, r in zip(Channel, results, strict=True)}


async def check_providers(ctx: AppContext) -> dict[str, Any]:
    """`notifications.provider_state.provider_health(db)`: per channel provider, status, circuit."""
    from notifications.provider_state import provider_health

    try:
        return await asyncio.wait_for(provider_health(ctx.client.db), ctx.settings.api_check_timeout_seconds)
    except Exception as exc:
        return {"status": "unknown", "error": type(exc).__name__}


def _provider_degraded(providers: dict[str, Any]) -> bool:
    for value in providers.values():
        if isinstance(value, dict) and (value.get("status") not in (None, "ok") or value.get("circuit") == "open"):
            return True
    return False


async def health(ctx: AppContext, tenant: str | None) -> dict[str, Any]:
    temporal, database, workers, providers = await asyncio.gather(
        check_temporal(ctx), check_database(ctx), check_workers(ctx), check_providers(ctx)
    )
    stats = {c.value: dict.fromkeys(queries.STAT_KEYS, 0) for c in Channel}
    queue_state: dict[str, Any] = {}
    if database["status"] == "ok":
        try:
            stats = await queries.queue_stats(ctx.client.db, tenant)
            queue_state = {k: {"paused": v["paused"]} for k, v in (await ctx.client.queue_states()).items()}
        except Exception as exc:
            database = {"status": "down", "error": type(exc).__name__}
    if temporal["status"] != "ok" or database["status"] != "ok":
        status = "unhealthy"
    elif any(w.get("status") != "ok" for w in workers.values()) or _provider_degraded(providers):
        status = "degraded"
    else:
        status = "healthy"
    return {
        "status": status,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "metrics": queries.health_metrics(stats),
        "queues": stats,
        "uptime": int(time.monotonic() - ctx.started_at),
        "checks": {
            "temporal": temporal,
            "database": database,
            "workers": workers,
            "providers": providers,
            "queueState": queue_state,
        },
    }
