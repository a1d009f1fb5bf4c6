"""provider-storm: Resend answers 503 for 8 s, then 429 with Retry-After, then accepts again.

After five consecutive 5xx the worker's circuit breaker holds every email for its cool-down
(CIRCUIT_COOLDOWN_SECONDS, 30 s by default), so no call reaches the provider meanwhile: the
429 phase lasts until Retry-After past the first probe the cool-down lets through, so the
retries that follow the cool-down meet it, and must each wait at least Retry-After. The
storm starts a third of the way into a burst of emails; the fault ends when it is over.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from chaos.harness import harness
from chaos.load import Caller, Ledger, at_rate
from chaos.options import ChaosOptions
from chaos.scenarios.common import measure, timeline, until
from fakes.resend import Storm


def storm_for(opts: ChaosOptions) -> Storm:
    from notifications.config import Settings

    cooldown = opts.circuit_cooldown_s or float(Settings.model_fields["circuit_cooldown_seconds"].default)
    retry_after = opts.storm_retry_after_s
    rate_limited = max(float(retry_after), cooldown + retry_after - opts.storm_unavailable_s)
    return Storm(opts.storm_unavailable_s, rate_limited, retry_after)


async def run(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    async with harness("provider-storm", base) as h:
        env = {"CIRCUIT_COOLDOWN_SECONDS": f"{opts.circuit_cooldown_s:g}"} if opts.circuit_cooldown_s else {}
        await h.start_worker(**env)
        client = await h.client()
        caller = Caller(client, timeout=opts.enqueue_timeout_s)
        ledger = Ledger("ps")
        try:
            burst = asyncio.create_task(
                at_rate(caller, ledger.mix(("email",)), rate=opts.fault_rate, count=opts.storm_burst)
            )
            await until(lambda: len(ledger.entries) >= opts.storm_burst // 3, limit_s=30)
            storm = h.resend.storm = storm_for(opts)
            started = time.time()
            ended = started + storm.seconds
            await burst
            settle_s = max(0.0, ended - time.time()) + opts.settle_s
            out = await measure(
                h,
                client,
                ledger.entries,
                opts,
                fault_end={"email": ended},
                settle_s=settle_s,
            )
        finally:
            await caller.aclose()
        answers = [ex.response.status for ex in h.resend.exchanges if ex.at >= started]
        out.update(
            label=f"503 {storm.unavailable_s:g} s, 429 {storm.rate_limited_s:g} s",
            storm_s=round(storm.seconds, 2),
            timeline=timeline(storm_started=started, storm_ended=ended),
            retry_after_s=storm.retry_after_s,
            circuit_cooldown_s=opts.circuit_cooldown_s,
            provider_answers={str(s): answers.count(s) for s in sorted(set(answers))},
        )
        return {"runs": [out]}
