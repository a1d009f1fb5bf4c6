"""db-outage: PostgreSQL (a private cluster) stopped with `-m immediate` mid-burst, started again later.

The push queue is paused before the outage and pushes are enqueued while it is paused, before
and during the outage, so the pause must hold through it: no push may reach FCM until the
queue is resumed, which happens once the database is back. Emails and pushes are enqueued
during the outage through the client and the HTTP API. The fault ends for email when the
database is back, for push at the resume.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from chaos.harness import Harness, harness
from chaos.load import Caller, Ledger, at_rate
from chaos.options import ChaosOptions
from chaos.postgres import PrivatePostgres, private_postgres
from chaos.scenarios.common import delivered_between, measure, timeline

BEFORE = 6  # enqueues of each kind before the outage


async def run(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    with private_postgres(opts.keep) as pg:
        async with harness("db-outage", base, database_url=pg.url) as h:
            await h.start_worker()
            api = await h.start_api()
            client = await h.client()
            caller = Caller(client, api=api, timeout=opts.enqueue_timeout_s)
            try:
                return {"runs": [await _outage(h, pg, caller, opts)]}
            finally:
                await caller.aclose()


async def _outage(h: Harness, pg: PrivatePostgres, caller: Caller, opts: ChaosOptions) -> dict[str, Any]:
    client = caller.client
    ledger = Ledger("db")
    await at_rate(caller, ledger.mix(), rate=10, count=BEFORE)
    await client.pause_queue("push", reason="chaos: before the database outage", actor="chaos")
    paused_at = time.time()
    await at_rate(caller, ledger.mix(("push",)), rate=10, count=BEFORE // 2)
    stop = asyncio.Event()
    burst = asyncio.create_task(
        at_rate(caller, ledger.mix(via=("client", "client", "http")), rate=opts.fault_rate, stop=stop)
    )
    await asyncio.sleep(1.0)
    down_at = time.time()
    await asyncio.to_thread(pg.stop_immediate)
    await asyncio.sleep(opts.db_outage_s)
    await asyncio.to_thread(pg.start)
    back_at = time.time()
    stop.set()
    await burst
    resumed_at, resume_errors = await _resume(client, "push", limit_s=30)
    during = [e for e in ledger.entries if down_at <= e.started < back_at]
    out = await measure(
        h, client, ledger.entries, opts, fault_end={"email": back_at, "push": resumed_at}, settle_s=opts.settle_s
    )
    out.update(
        label=f"down {opts.db_outage_s:g} s",
        downtime_s=round(back_at - down_at, 2),
        enqueued_while_down=len(during),
        accepted_while_down=sum(1 for e in during if e.accepted),
        # pushes enqueued before the pause may have an attempt in flight, which a pause lets finish
        sent_while_paused=delivered_between(
            h, [e for e in ledger.entries if e.started >= paused_at], paused_at, resumed_at, "push"
        ),
        paused_s=round(resumed_at - paused_at, 2),
        timeline=timeline(paused=paused_at, down=down_at, back=back_at, resumed=resumed_at),
        resume_attempts_refused=resume_errors,
        worker_alive=bool(h.live_workers()),
    )
    return out


async def _resume(client: Any, queue: str, limit_s: float) -> tuple[float, list[str]]:
    """Resume as an operator would once the database is back: again until it answers (bounded)."""
    errors: list[str] = []
    deadline = time.monotonic() + limit_s
    while True:
        started = time.time()
        try:
            await client.resume_queue(queue, actor="chaos")
            return started, errors
        except Exception as exc:
            errors.append(type(exc).__name__)
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
