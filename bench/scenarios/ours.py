"""`ours`: N notifications through the client, concurrently, until every SQL row is `sent`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench.client import _client, _enqueue_all, _sql_results, _store_preferences, _wait_sent
from bench.harness import stack, start_worker
from bench.measure import RAW, Meter, _ms_stats, history_stats
from bench.options import BenchOptions


async def run_ours(
    opts: BenchOptions,
    base: Path,
    name: str,
    *,
    n: int,
    latency_ms: int,
    email_concurrency: int,
    push_concurrency: int,
    channels: Sequence[str] = ("email", "push"),
    worker_env: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    postgres: bool = False,
    setup: Callable[[Any], Awaitable[None]] | None = None,
    after: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """N notifications through the client, concurrently, until every SQL row is `sent`.
    `setup(client)` runs once the database is migrated, before the clock starts; `after()` once
    the clock stopped, with the worker still running (its answer joins the result)."""
    from notifications.types import workflow_id_for

    async with stack(opts, name, base, postgres=postgres) as st:
        await start_worker(
            st,
            opts,
            kind="ours",
            email_concurrency=email_concurrency,
            push_concurrency=push_concurrency,
            queues=[f"notification-{c}" for c in channels],
            OUTBOX_LATENCY_MS=str(latency_ms),
            **(worker_env or {}),
        )
        client = await _client(st)
        if setup is not None:
            await setup(client)
        prefix = f"{name}-{uuid.uuid4().hex[:6]}"
        plan = [(i, channels[i % len(channels)]) for i in range(n)]
        try:
            await _store_preferences(client, plan, opts.enqueue_concurrency)  # each user's, before the clock starts
            meter = Meter(st)
            meter.start()
            t0 = time.time()
            enqueue = await _enqueue_all(client, plan, prefix, opts.enqueue_concurrency)
            enqueue_done = time.time()
            meter.enqueued()
            sent = await _wait_sent(st, client, prefix, n, opts.scenario_timeout)
            meter.stop()
            peak = st.worker_peak_rss_kb()
            res = await _sql_results(client, prefix)
            later = await after() if after is not None else {}
        finally:
            await client.close()
        end = res["last_completed"] or time.time()
        wall = end - t0
        hist = await history_stats(st.address, [workflow_id_for(i) for i in res["ids"]], opts.history_sample)
        result: dict[str, Any] = {
            "kind": "ours",
            "notifications": n,
            "sent": sent,
            "all_sent": sent == n,
            "latency_ms": latency_ms,
            "email_concurrency": email_concurrency,
            "push_concurrency": push_concurrency,
            "channels": list(channels),
            "wall_seconds": round(wall, 2),
            "throughput_per_s": round(n / wall, 2) if wall > 0 else None,
            "enqueue_seconds": round(enqueue_done - t0, 2),
            "e2e_latency_ms": _ms_stats(res["e2e"]),
            "enqueue_latency_ms": _ms_stats(enqueue, (50, 99)),
            **meter.report(n),
            "worker_peak_rss_mb": round(peak / 1024, 1) if peak else None,
            **hist,
            RAW: {"e2e": res["e2e"], "enqueue": enqueue},
            "delivery_attempts": res["delivery_attempts"],
            "outbox_messages": res["outbox_messages"],
            **(extra or {}),
            **later,
        }
        if "outbox" not in (worker_env or {}).get("EMAIL_PROVIDER", "outbox"):
            result.pop("outbox_messages")
        return result
