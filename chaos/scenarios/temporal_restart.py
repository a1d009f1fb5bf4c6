"""temporal-restart: the Temporal server SIGKILLed mid-burst, restarted on its database file later.

Enqueues go on at a steady rate through the downtime, through the Python client and (one in
three) the HTTP API, mostly without a notificationId, as real callers send them. Those made
while the server is down must be refused, with nothing stored for them. The fault ends when
the restarted server listens again; one run per downtime (5 s and 15 s), on the same stack.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from chaos.harness import Harness, harness
from chaos.load import Caller, Ledger, at_rate
from chaos.options import ChaosOptions
from chaos.scenarios.common import measure, timeline

LEAD_S = 2.0  # enqueues before the kill and after the restart


async def run(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    async with harness("temporal-restart", base) as h:
        await h.start_worker()
        api = await h.start_api()
        client = await h.client()
        caller = Caller(client, api=api, timeout=opts.enqueue_timeout_s)
        try:
            runs = [await _outage(h, caller, opts, downtime) for downtime in opts.restart_downtimes_s]
        finally:
            await caller.aclose()
        return {"runs": runs, "worker_alive": bool(h.live_workers())}


async def _outage(h: Harness, caller: Caller, opts: ChaosOptions, downtime: float) -> dict[str, Any]:
    ledger = Ledger(f"tr{downtime:g}")
    stop = asyncio.Event()
    plans = ledger.mix(via=("client", "client", "http"))
    burst = asyncio.create_task(at_rate(caller, plans, rate=opts.fault_rate, stop=stop))
    await asyncio.sleep(LEAD_S)
    killed_at = time.time()
    h.kill_server()
    await asyncio.sleep(downtime)
    await h.restart_server()
    back_at = time.time()
    await asyncio.sleep(LEAD_S)
    stop.set()
    await burst
    during = [e for e in ledger.entries if killed_at <= e.started < back_at]
    out = await measure(h, caller.client, ledger.entries, opts, fault_end={"email": back_at, "push": back_at})
    out.update(
        label=f"down {downtime:g} s",
        downtime_s=round(back_at - killed_at, 2),
        timeline=timeline(killed=killed_at, back=back_at),
        enqueued_while_down=len(during),
        accepted_while_down=sum(1 for e in during if e.accepted),
        worker_alive=bool(h.live_workers()),
    )
    return out
