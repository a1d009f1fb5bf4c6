"""`concurrency`: a slow provider at a low and a high concurrency cap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.measure import _ratio, merge_rounds
from bench.options import BenchOptions
from bench.scenarios.baseline import run_baseline
from bench.scenarios.ours import run_ours


async def run_concurrency(opts: BenchOptions, base: Path) -> dict[str, Any]:
    """A slow provider at a low and a high concurrency cap: throughput is min(concurrency / latency, engine).

    The high run is bound by the engine, so it is bracketed by two bare-workflow runs of the same
    N (baseline, high, baseline): the engine's limit it is held to is measured in the same
    minutes, not several minutes earlier with the headline pair, as this machine drifts.
    """
    latency = opts.concurrency_latency_ms

    async def capped(conc: int, n: int) -> dict[str, Any]:
        res = await run_ours(
            opts,
            base,
            f"concurrency_{conc}x{conc}",
            n=n,
            latency_ms=latency,
            email_concurrency=conc,
            push_concurrency=conc,
        )
        bound = 2 * conc * 1000 / latency if latency else None  # both queues, each conc / latency
        res["concurrency_bound_per_s"] = bound
        res["achieved_of_bound"] = _ratio(res["throughput_per_s"], bound)
        return res

    low = await capped(opts.low_concurrency, max(20, opts.other_n // 10))
    before = await run_baseline(opts, base, n=opts.other_n, name="concurrency_baseline_before")
    high = await capped(opts.high_concurrency, opts.other_n)
    after = await run_baseline(opts, base, n=opts.other_n, name="concurrency_baseline_after")
    engine = merge_rounds([before, after])
    high["engine_reference_per_s"] = engine["throughput_per_s"]
    high["engine_reference_runs_per_s"] = [r["throughput_per_s"] for r in engine["rounds"]]
    return {"latency_ms": latency, "runs": [low, high]}
