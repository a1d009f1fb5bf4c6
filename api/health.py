"""The health check: the seed's JSON plus what an operator needs to know something is wrong.

- unhealthy: Temporal or the database does not answer (nothing can be enqueued or tracked);
- degraded: both answer, but a task queue has no live worker, or a provider reports a
  configuration error or an open circuit (notifications queue up but do not go out);
- healthy: everything answers.

Workers, from two sources:
- heartbeats: every worker process writes a row naming its task queues every
  `WORKER_HEARTBEAT_SECONDS` (processes/heartbeat.py) and deletes it on a graceful exit;
  a worker is live while its row is younger than `WORKER_HEARTBEAT_STALE_SECONDS`.
- pollers: DescribeTaskQueue lists the pollers of each task queue (workflow and activity
  types) with the time each last polled. The server keeps a poller listed for minutes after
  its worker is gone, and an idle worker re-polls once per long-poll interval (60 s on a
  default server), so a poller counts as live only when seen within the longer
  `API_WORKER_STALE_SECONDS`.
Once the heartbeat table holds a row (any worker of the deployment beats), a queue is live when a
fresh heartbeat names it AND it has live pollers of both types: a killed worker shows within
the heartbeat window, one that is alive but cannot reach Temporal within the poller window. A
queue polled only by a worker that writes no heartbeat (an older version) then counts as without
a worker. With no row at all (no worker that beats has run, or the last one stopped
gracefully), or when the table cannot be read, the pollers alone decide, as before heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from api.deps import AppContext
from notifications.sql import queries, store
from notifications.sql.models import utcnow
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


async def _heartbeats(ctx: AppContext) -> dict[str, dict[str, Any]] | str:
    """Per task queue, its fresh heartbeats and latest beat; the error's type when unreadable."""
    since = utcnow() - timedelta(seconds=ctx.settings.worker_heartbeat_stale_seconds)
    try:
        return await asyncio.wait_for(store.live_queues(ctx.client.db, since), ctx.settings.api_check_timeout_seconds)
    except Exception as exc:  # the database check reports the outage; the pollers decide meanwhile
        return type(exc).__name__


async def _pollers(ctx: AppContext, queue: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    live_types = 0
    for name in POLLER_KINDS:
        pollers = await asyncio.wait_for(
            task_queue_pollers(ctx.client.temporal, queue, name), ctx.settings.api_check_timeout_seconds
        )
        live = [p.seconds_ago for p in pollers if p.seconds_ago <= ctx.settings.api_worker_stale_seconds]
        out[f"{name}Pollers"] = len(live)
        if live:
            live_types += 1
            out[f"{name}LastPollSecondsAgo"] = round(max(min(live), 0.0), 1)
    out["live"] = live_types == len(POLLER_KINDS)
    return out


async def check_workers(ctx: AppContext) -> dict[str, Any]:
    """Per channel: its task queue, `status` ok / no_workers (unknown when Temporal could not be
    asked), the live pollers, `heartbeatWorkers` and `lastHeartbeatSecondsAgo`, and `source`,
    what decided: `heartbeat` (heartbeats and pollers) or `pollers` (see the module's docstring)."""
    queues = [TASK_QUEUES[c] for c in Channel]
    beats, polled = await asyncio.gather(
        _heartbeats(ctx), asyncio.gather(*(_pollers(ctx, q) for q in queues), return_exceptions=True)
    )
    by_beat = isinstance(beats, dict) and bool(beats)
    out: dict[str, Any] = {}
    for channel, queue, pollers in zip(Channel, queues, polled, strict=True):
        entry: dict[str, Any] = {"taskQueue": queue, "source": "heartbeat" if by_beat else "pollers"}
        if isinstance(beats, dict):
            seen = beats.get(queue, {})
            entry["heartbeatWorkers"] = seen.get("workers", 0)
            if "lastSeenSecondsAgo" in seen:
                entry["lastHeartbeatSecondsAgo"] = seen["lastSeenSecondsAgo"]
        else:
            entry["heartbeatError"] = beats
        if isinstance(pollers, BaseException):
            entry.update(status="unknown", error=type(pollers).__name__)
        else:
            live = pollers.pop("live") and (not by_beat or entry["heartbeatWorkers"] > 0)
            entry.update(pollers, status="ok" if live else "no_workers")
        out[channel.value] = entry
    return out


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
