"""`unloaded`: a few notifications one at a time, against a bare workflow's round trip."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.baseline import BASELINE_QUEUES, BenchBaselineWorkflow
from bench.client import _client, _epoch, _payload, _sql_results
from bench.harness import Stack, stack, start_worker
from bench.measure import _ms_stats, _ratio
from bench.options import BenchOptions


async def run_unloaded(opts: BenchOptions, base: Path) -> dict[str, Any]:
    """One at a time, nothing else running: what a single notification waits for, against a bare round trip."""
    from temporalio.client import Client

    count = opts.unloaded_count
    out: dict[str, Any] = {"count": count}
    async with stack(opts, "unloaded-baseline", base) as st:
        await start_worker(st, opts, kind="baseline")
        client = await Client.connect(st.address)
        trips: list[float] = []
        for i in range(count + 1):  # the first one warms the worker's caches and is not counted
            t0 = time.perf_counter()
            await client.execute_workflow(
                BenchBaselineWorkflow.run,
                str(i),
                id=f"unloaded-{uuid.uuid4().hex[:8]}",
                task_queue=BASELINE_QUEUES["email"],
                execution_timeout=timedelta(seconds=30),
            )
            if i:
                trips.append(time.perf_counter() - t0)
            await asyncio.sleep(0.2)
        out["baseline_round_trip_ms"] = _ms_stats(trips, (50, 99))
    async with stack(opts, "unloaded-ours", base) as st:
        await start_worker(st, opts, kind="ours", OUTBOX_LATENCY_MS="0")
        nclient = await _client(st)
        prefix = f"unloaded-{uuid.uuid4().hex[:6]}"
        observed: list[float] = []
        try:
            for i in range(count + 1):
                channel = "email" if i % 2 == 0 else "push"
                t0 = time.perf_counter()
                if channel == "email":
                    await nclient.enqueue_email(_payload(i, channel, prefix), 5)
                else:
                    await nclient.enqueue_push(_payload(i, channel, prefix), 5)
                deadline = time.monotonic() + 30
                nid = f"{prefix}-{i:06d}"
                while time.monotonic() < deadline:
                    row = await nclient.get(nid)
                    if row.status == "sent":
                        break
                    await asyncio.sleep(0.002)
                if i:
                    observed.append(time.perf_counter() - t0)
                await asyncio.sleep(0.2)
            res = await _sql_results(nclient, prefix)
        finally:
            await nclient.close()
        warm = sorted(res["ids"])[0]
        e2e_rows = await _per_row_e2e(st, prefix, exclude=warm)
        out["ours_enqueue_to_sent_ms"] = _ms_stats(e2e_rows, (50, 99))
        out["ours_client_observed_ms"] = _ms_stats(observed, (50, 99))
        out["all_sent"] = res["sent"] == count + 1
    ours = out["ours_enqueue_to_sent_ms"]["p50"]
    out["p50_ratio"] = _ratio(ours, out["baseline_round_trip_ms"]["p50"])
    return out


async def _per_row_e2e(st: Stack, prefix: str, exclude: str) -> list[float]:
    client = await _client(st)
    try:
        from sqlalchemy import select

        from notifications.sql.models import Notification

        async with client.db.sessions() as session:
            rows = (
                await session.execute(
                    select(Notification.id, Notification.created_at, Notification.completed_at).where(
                        Notification.id.like(f"{prefix}-%")
                    )
                )
            ).all()
    finally:
        await client.close()
    return [_epoch(r.completed_at) - _epoch(r.created_at) for r in rows if r.id != exclude and r.completed_at]
