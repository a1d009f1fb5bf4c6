"""`notifications bench`: what a notification costs the engine, against a bare Temporal workflow, in one run.

Every scenario (bench/scenarios/) gets its own fresh dev server and SQL database; the headline
pair (baseline and ours at 0 ms) runs in alternating rounds merged into one result. The method
and the latest numbers are in docs/performance.md.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.baseline import run_baseline_worker
from bench.harness import cancel_on_signals, precompile
from bench.measure import _drop_raw, merge_rounds
from bench.options import BenchOptions
from bench.report import compare, publish, table
from bench.scenarios.backlog import run_backlog
from bench.scenarios.baseline import run_baseline
from bench.scenarios.campaign import run_campaign
from bench.scenarios.concurrency import run_concurrency
from bench.scenarios.ours import run_ours
from bench.scenarios.resend import run_resend
from bench.scenarios.unloaded import run_unloaded
from bench.scenarios.webhooks import run_webhooks


async def run_bench(opts: BenchOptions, progress: Callable[[str], None] = print) -> dict[str, Any]:
    import temporalio

    await asyncio.to_thread(precompile)
    scenarios: dict[str, Any] = {}
    started = time.time()
    base = Path(tempfile.mkdtemp(prefix="notifications-bench-"))
    from processes.devserver import dev_server_flags

    meta: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": opts.quick,
        "n": opts.n,
        "backlog": opts.backlog,
        "enqueue_concurrency": opts.enqueue_concurrency,
        "rounds": opts.rounds,
        "campaign_n": opts.campaign_n,
        "email_concurrency": opts.email_concurrency,
        "push_concurrency": opts.push_concurrency,
        "database": "postgresql" if (opts.database_url or "").startswith("postgres") else "sqlite",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "temporalio": temporalio.__version__,
        "server_flags": [
            *dev_server_flags(),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ],
        "scenarios": list(opts.scenarios),
    }

    async def scenario(name: str, coro: Awaitable[dict[str, Any]]) -> None:
        progress(f"[bench] {name} ...")
        t = time.monotonic()
        try:
            scenarios[name] = await coro
        except Exception as exc:  # one broken scenario must not hide the others' numbers
            scenarios[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        progress(f"[bench] {name} done in {time.monotonic() - t:.1f} s")

    def ours_at(latency: int, name: str, postgres: bool = False) -> Awaitable[dict[str, Any]]:
        return run_ours(
            opts,
            base,
            name,
            n=opts.n,
            latency_ms=latency,
            email_concurrency=opts.email_concurrency,
            push_concurrency=opts.push_concurrency,
            postgres=postgres,
        )

    async def headline_pair(wanted: list[str], suffix: str = "", postgres: bool = False) -> None:
        """The ratio's two sides alternate over --rounds (B O O B ...), each round on a fresh server
        (and database), so a drift of the machine's speed weighs on both (docs/decisions/0016)."""
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in wanted}
        for r in range(opts.rounds):
            for name in wanted if r % 2 == 0 else wanted[::-1]:
                label = f"{name}{suffix} (round {r + 1}/{opts.rounds})"
                workdir = f"{name}{suffix}-r{r + 1}"
                coro = (
                    run_baseline(opts, base, n=opts.n, name=workdir, postgres=postgres)
                    if name == "baseline"
                    else ours_at(0, workdir, postgres)
                )
                await scenario(label, coro)
                rounds[name].append(scenarios.pop(label))
        for name, runs in rounds.items():
            scenarios[name + suffix] = merge_rounds(runs)

    try:
        pair = [
            name
            for name, wanted in (
                ("baseline", "baseline" in opts.scenarios),
                ("ours_0ms", "ours" in opts.scenarios and 0 in opts.latencies_ms),
            )
            if wanted
        ]
        await headline_pair(pair)
        if "postgres" in opts.scenarios:
            # The production database: the same pair, a fresh database on the server per round.
            await headline_pair(["baseline", "ours_0ms"], "_postgres", postgres=True)
        if "ours" in opts.scenarios:
            for latency in opts.latencies_ms:
                if latency == 0 and "ours_0ms" in scenarios:
                    continue
                await scenario(f"ours_{latency}ms", ours_at(latency, f"ours_{latency}ms"))
        if "resend" in opts.scenarios:
            await scenario("ours_resend", run_resend(opts, base))
        if "webhooks" in opts.scenarios:
            await scenario("webhooks", run_webhooks(opts, base))
        if "concurrency" in opts.scenarios:
            await scenario("concurrency", run_concurrency(opts, base))
        if "backlog" in opts.scenarios:
            await scenario("backlog", run_backlog(opts, base))
        if "unloaded" in opts.scenarios:
            await scenario("unloaded", run_unloaded(opts, base))
        if "campaign" in opts.scenarios:
            await scenario("campaign", run_campaign(opts, base))
    finally:
        if not opts.keep_temp:
            shutil.rmtree(base, ignore_errors=True)
        else:
            progress(f"[bench] scenario data kept in {base}")
    meta["total_seconds"] = round(time.time() - started, 1)
    _drop_raw(scenarios)
    results: dict[str, Any] = {"meta": meta, "scenarios": scenarios}
    results.update(compare(scenarios))
    return results


async def main_async(opts: BenchOptions) -> int:
    cancel_on_signals()
    results = await run_bench(opts)
    publish(results, opts.output, table(results))
    scenarios = results["scenarios"]
    failed = [k for k, v in scenarios.items() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":  # `python -m bench.run worker` runs the bare workflow's worker
    if sys.argv[1:2] == ["worker"]:
        asyncio.run(run_baseline_worker(5, 10, 30.0))
    else:
        from processes.cli import main

        sys.exit(main(["bench", *sys.argv[1:]]))
