"""worker-kill: two workers share the queues; one is SIGKILLed mid-burst and a replacement started.

Every provider call of a trial is answered `provider_latency_s` late, and the worker killed is
one with an email and a push in flight at the providers (found by its TCP connections): the
email's retry must be an idempotent replay; the push's (FCM has no idempotency key) is a
repeat, and the figures count it. The fault ends when the
replacement polls both queues. Each trial is a fresh burst on the same stack.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

from chaos.harness import Harness, harness
from chaos.load import Caller, Ledger, at_rate
from chaos.options import ChaosOptions
from chaos.scenarios.common import measure, timeline, until
from fakes.fcm import Step as FcmStep
from fakes.resend import Step as ResendStep

BURST_RATE = 15.0  # enqueues per second


async def run(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    async with harness("worker-kill", base) as h:
        for _ in range(2):
            await h.start_worker()
        client = await h.client()
        caller = Caller(client, timeout=opts.enqueue_timeout_s)
        try:
            runs = [await _trial(h, caller, opts, n + 1) for n in range(opts.trials)]
        finally:
            await caller.aclose()
        failed = [f for r in runs for f in r["replacement_failed_starts"]]
        return {"runs": runs, "replacement_failed_starts": failed}


async def _trial(h: Harness, caller: Caller, opts: ChaosOptions, n: int) -> dict[str, Any]:
    ledger = Ledger(f"wk{n}")
    entries = [ledger.plan("email" if i % 2 == 0 else "push") for i in range(opts.kill_burst)]
    for e in entries:
        if e.channel == "email":
            h.resend.script(e.recipient, ResendStep(delay=opts.provider_latency_s))
        else:
            h.fcm.script(e.recipient, FcmStep(delay=opts.provider_latency_s))
    burst = asyncio.create_task(at_rate(caller, iter(entries), rate=BURST_RATE, count=len(entries)))

    busy: list[subprocess.Popen[bytes]] = []

    def found_busy() -> bool:
        """Mid-burst, a worker with an email and a push in flight at the providers."""
        if sum(1 for e in entries if e.started) < len(entries) // 3:
            return False
        email = {r.peer_port for r in h.resend.pending}
        push = {r.peer_port for r in h.fcm.pending}
        busy[:] = [w for w in h.live_workers() if (ports := h.local_ports(w)) & email and ports & push]
        return bool(busy)

    caught = await until(found_busy, limit_s=10, interval=0.02)
    in_flight = {"email": h.resend.in_flight, "push": h.fcm.in_flight}
    victim = busy[0] if busy else h.live_workers()[0]  # bounded: kill anyway
    killed_at = time.time()
    h.kill(victim)
    failed_starts = await _replace(h)
    replaced_at = time.time()
    await burst
    out = await measure(h, caller.client, entries, opts, fault_end={"email": replaced_at, "push": replaced_at})
    out.update(
        label=f"trial {n}",
        killed_pid=victim.pid,
        provider_calls_in_flight_at_kill=in_flight,
        victim_had_both_in_flight=caught,
        replacement_ready_s=round(replaced_at - killed_at, 2),
        timeline=timeline(killed=killed_at, replaced=replaced_at),
        replacement_failed_starts=failed_starts,
    )
    return out


async def _replace(h: Harness) -> list[str]:
    """Start the replacement; a start that fails is recorded (its output's end) and tried once more."""
    failures: list[str] = []
    while True:
        try:
            await h.start_worker()
            return failures
        except RuntimeError as exc:
            failures.append(str(exc)[-2000:])
            if len(failures) > 1:
                raise
