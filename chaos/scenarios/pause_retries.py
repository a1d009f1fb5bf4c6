"""pause-during-retries: the queues paused while every notification waits for its retry backoff.

Each provider fails each notification's first call once (503), so every one sits in its
backoff (BASE_DELAY_MS, 2 s by default) when both queues are paused; resumed after 10 s.
Nothing may reach a provider while paused, and all must be sent after the resume (the
fault's end). The worker's circuit breaker is set above the burst: one failure each must not
turn into its 30 s cool-down here (provider-storm covers the breaker).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from chaos.harness import harness
from chaos.load import Caller, Ledger, at_rate
from chaos.options import ChaosOptions
from chaos.scenarios.common import delivered_between, measure, timeline, until
from fakes.fcm import error as fcm_error
from fakes.resend import error as resend_error


async def run(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    async with harness("pause-during-retries", base) as h:
        await h.start_worker(CIRCUIT_FAILURE_THRESHOLD=str(10 * opts.pause_burst))
        client = await h.client()
        caller = Caller(client, timeout=opts.enqueue_timeout_s)
        ledger = Ledger("pr")
        entries = [ledger.plan("email" if i % 2 == 0 else "push") for i in range(opts.pause_burst)]
        for e in entries:
            if e.channel == "email":
                h.resend.script(e.recipient, resend_error(503, "application_error"))
            else:
                h.fcm.script(e.recipient, fcm_error(503))
        try:
            await at_rate(caller, iter(entries), rate=20, count=len(entries))

            def failed_once() -> bool:
                calls = [*h.resend.exchanges, *h.fcm.exchanges]
                return sum(1 for ex in calls if ex.response.status == 503) >= sum(1 for e in entries if e.accepted)

            all_waiting = await until(failed_once, limit_s=15, interval=0.02)
            pause_called = time.time()
            await client.pause_queue("all", reason="chaos: during retries", actor="chaos")
            paused_at = time.time()
            await asyncio.sleep(opts.pause_hold_s)  # the fault itself: how long the queues stay paused
            resumed_at = time.time()
            await client.resume_queue("all", actor="chaos")
            out = await measure(h, client, entries, opts, fault_end={"email": resumed_at, "push": resumed_at})
        finally:
            await caller.aclose()
        calls = [*h.resend.exchanges, *h.fcm.exchanges]
        out.update(
            label=f"paused {opts.pause_hold_s:g} s",
            all_in_backoff_at_pause=all_waiting,
            retries_before_pause=sum(1 for ex in calls if ex.response.status == 200 and ex.at < pause_called),
            sent_while_paused=sum(delivered_between(h, entries, paused_at, resumed_at, ch) for ch in ("email", "push")),
            calls_while_paused=sum(1 for ex in calls if paused_at <= ex.at < resumed_at),
            pause_call_s=round(paused_at - pause_called, 3),
            timeline=timeline(pause_called=pause_called, paused=paused_at, resumed=resumed_at),
        )
        return {"runs": [out]}
