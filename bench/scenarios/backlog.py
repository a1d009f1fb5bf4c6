"""`backlog`: queues paused, a backlog held, the worker's memory read, then resumed and drained."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from bench.client import _client, _count_sent, _enqueue_all, _sql_results, _wait_sent
from bench.harness import stack, start_worker, wait_idle
from bench.measure import Meter, _ratio, history_stats
from bench.options import BenchOptions


async def run_backlog(opts: BenchOptions, base: Path) -> dict[str, Any]:
    """Queues paused, a backlog enqueued and held; worker RSS at 10 % and 100 % of it, then resume and drain."""
    from notifications.types import workflow_id_for

    total = opts.backlog
    checkpoint = max(1, total // 10)
    async with stack(opts, "backlog", base) as st:
        await start_worker(st, opts, kind="ours", OUTBOX_LATENCY_MS="0")
        client = await _client(st)
        prefix = f"backlog-{uuid.uuid4().hex[:6]}"
        out: dict[str, Any] = {"notifications": total, "checkpoint": checkpoint}
        try:
            await client.pause_queue("all", reason="bench backlog", actor="bench")
            rss0 = st.worker_rss_kb()
            plan = [(i, "email" if i % 2 == 0 else "push") for i in range(total)]
            t0 = time.time()
            await _enqueue_all(client, plan[:checkpoint], prefix, opts.enqueue_concurrency)
            await wait_idle(st)
            rss_a = st.worker_rss_kb()
            await _enqueue_all(client, plan[checkpoint:], prefix, opts.enqueue_concurrency)
            enqueue_s = time.time() - t0
            await wait_idle(st)
            rss_b = st.worker_rss_kb()
            sent_while_paused = await _count_sent(client, prefix)
            meter = Meter(st)
            meter.start()
            t1 = time.time()
            await client.resume_queue("all", actor="bench")
            sent = await _wait_sent(st, client, prefix, total, opts.scenario_timeout)
            meter.stop()
            res = await _sql_results(client, prefix)
            drain = (res["last_completed"] or time.time()) - t1
            peak = st.worker_peak_rss_kb()
        finally:
            await client.close()
        # held, then released by a signal: what the hold costs in events, and whether a resumed
        # workflow's task waited out the sticky queue's timeout (WORKFLOW_TASK_TIMED_OUT)
        hist = await history_stats(st.address, [workflow_id_for(i) for i in res["ids"]], opts.history_sample)

        def mb(kb: int | None) -> float | None:
            return round(kb / 1024, 1) if kb else None

        out.update(
            {
                "enqueue_seconds": round(enqueue_s, 2),
                "worker_rss_idle_mb": mb(rss0),
                "worker_rss_at_checkpoint_mb": mb(rss_a),
                "worker_rss_at_backlog_mb": mb(rss_b),
                "worker_rss_backlog_ratio": _ratio(rss_b, rss_a),
                "worker_peak_rss_mb": mb(peak),
                "sent_while_paused": sent_while_paused,
                "sent": sent,
                "all_sent": sent == total,
                "drain_seconds": round(drain, 2),
                "drain_throughput_per_s": round(sent / drain, 2) if drain > 0 else None,
                "drain_limit_seconds": opts.scenario_timeout,
                "delivery_attempts": res["delivery_attempts"],
                "outbox_messages": res["outbox_messages"],
                **meter.report(total),
                **hist,
            }
        )
        return out
