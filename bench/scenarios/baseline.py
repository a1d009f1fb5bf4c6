"""`baseline`: N bare workflows, the yardstick of the headline ratio."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from bench.baseline import BASELINE_QUEUES, BASELINE_WORKFLOW, BenchBaselineWorkflow
from bench.harness import _bounded, stack, start_worker
from bench.measure import RAW, Meter, _ms_stats, history_stats
from bench.options import BenchOptions


async def run_baseline(opts: BenchOptions, base: Path, *, n: int, name: str, postgres: bool = False) -> dict[str, Any]:
    """N bare workflows, started concurrently like the notifications, on their own queues and worker."""
    from temporalio.client import Client

    async with stack(opts, name, base, postgres=postgres) as st:
        await start_worker(st, opts, kind="baseline")
        client = await Client.connect(st.address)
        prefix = f"baseline-{uuid.uuid4().hex[:6]}"
        queues = list(BASELINE_QUEUES.values())
        started: dict[str, float] = {}

        async def start(i: int) -> float:
            wid = f"{prefix}-{i:06d}"
            t0 = time.perf_counter()
            started[wid] = time.time()
            await client.start_workflow(BenchBaselineWorkflow.run, wid, id=wid, task_queue=queues[i % 2])
            return time.perf_counter() - t0

        meter = Meter(st)
        meter.start()
        t0 = time.time()
        enqueue = await _bounded(list(range(n)), opts.enqueue_concurrency, start)
        enqueue_done = time.time()
        meter.enqueued()
        deadline = time.monotonic() + opts.scenario_timeout
        done = 0
        query = f'WorkflowType = "{BASELINE_WORKFLOW}" AND ExecutionStatus = "Completed"'
        while time.monotonic() < deadline:
            st.check_worker()
            done = (await client.count_workflows(query)).count
            if done >= n:
                break
            await asyncio.sleep(0.25)
        meter.stop()
        peak = st.worker_peak_rss_kb()

        async def result(wid: str) -> float:
            value: float = await client.get_workflow_handle(wid, result_type=float).result()
            return value

        ids = sorted(started)
        finished = await _bounded(ids, 16, result) if done >= n else []
        e2e = [f - started[w] for w, f in zip(ids, finished, strict=True)]
        wall = (max(finished) if finished else time.time()) - t0
        hist = await history_stats(st.address, ids, opts.history_sample)
        return {
            "kind": "baseline",
            "notifications": n,
            "sent": done,
            "all_sent": done >= n,
            "latency_ms": 0,
            "email_concurrency": opts.email_concurrency,
            "push_concurrency": opts.push_concurrency,
            "wall_seconds": round(wall, 2),
            "throughput_per_s": round(n / wall, 2) if wall > 0 else None,
            "enqueue_seconds": round(enqueue_done - t0, 2),
            "e2e_latency_ms": _ms_stats(e2e),
            "enqueue_latency_ms": _ms_stats(enqueue, (50, 99)),
            **meter.report(n),
            "worker_peak_rss_mb": round(peak / 1024, 1) if peak else None,
            **hist,
            RAW: {"e2e": e2e, "enqueue": enqueue},
        }
