"""api-load: 50 concurrent HTTP clients enqueueing emails through the API for 30 s.

Each client has its own connection pool and sends one request after the other, no
Idempotency-Key, as independent services would. Every answer is counted by status; the
fault ends with the load, and everything accepted must be sent soon after.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bench.measure import percentile
from chaos.harness import harness
from chaos.load import Caller, Ledger
from chaos.options import ChaosOptions
from chaos.scenarios.common import measure, timeline

REQUEST_TIMEOUT_S = 30.0


async def run(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    async with harness("api-load", base) as h:
        await h.start_worker()
        api = await h.start_api()
        client = await h.client()
        ledger = Ledger("al")
        callers = [Caller(client, api=api, timeout=REQUEST_TIMEOUT_S) for _ in range(opts.api_clients)]
        until = time.monotonic() + opts.api_duration_s
        started = time.time()

        async def one(caller: Caller) -> None:
            while time.monotonic() < until:
                await caller.send(ledger.plan("email", via="http"))

        try:
            await asyncio.gather(*(one(c) for c in callers))
        finally:
            for caller in callers:
                await caller.aclose()
        ended = time.time()
        out = await measure(h, client, ledger.entries, opts, fault_end={"email": ended})
        latencies = [e.finished - e.started for e in ledger.entries]
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        out.update(
            label=f"{opts.api_clients} clients, {opts.api_duration_s:g} s",
            load_s=round(ended - started, 2),
            timeline=timeline(started=started, ended=ended),
            requests_per_s=round(len(ledger.entries) / (ended - started), 1),
            request_p50_ms=None if p50 is None else round(p50 * 1000, 1),
            request_p99_ms=None if p99 is None else round(p99 * 1000, 1),
        )
        return {"runs": [out]}
