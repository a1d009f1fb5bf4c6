"""worker-death: the only worker is killed (SIGKILL); how long until health says so, and back.

Temporal keeps listing a dead worker's pollers for minutes; the workers' heartbeats
(WORKER_HEARTBEAT_SECONDS 5, stale after WORKER_HEARTBEAT_STALE_SECONDS 15) must make
`GET /api/admin/notifications/queues/health` report the email and push queues without a worker,
and the whole system degraded, within 15 s of the kill. A new worker brings it back. The quick
timings beat every second and go stale after 3 s: the same mechanism, sooner.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from chaos.harness import harness
from chaos.options import ChaosOptions
from chaos.scenarios.common import timeline

HEALTH = "/api/admin/notifications/queues/health"
QUEUES = ("email", "push")


async def run(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    async with harness("worker-death", base) as h:
        env = {}
        if opts.heartbeat_s:
            env["WORKER_HEARTBEAT_SECONDS"] = f"{opts.heartbeat_s:g}"
        if opts.heartbeat_stale_s:
            env["WORKER_HEARTBEAT_STALE_SECONDS"] = f"{opts.heartbeat_stale_s:g}"
        worker = await h.start_worker(**env)
        api = await h.start_api(**env)
        headers = {"Authorization": f"Bearer {h.token('admin')}"}
        async with httpx.AsyncClient(timeout=10, headers=headers) as http:

            async def workers_ok() -> dict[str, bool]:
                body = (await http.get(api.url + HEALTH)).json()
                workers = body.get("checks", {}).get("workers", {})
                return {q: (workers.get(q) or {}).get("status") == "ok" for q in QUEUES}

            healthy_before = await _wait(lambda s: all(s.values()), workers_ok, limit_s=30)
            killed = time.time()
            h.kill(worker)
            noticed = await _wait(lambda s: not any(s.values()), workers_ok, limit_s=60)
            noticed_at = time.time()
            await h.start_worker(**env)
            back = await _wait(lambda s: all(s.values()), workers_ok, limit_s=60)
            back_at = time.time()
        detected_s = round(noticed_at - killed, 2) if noticed else None
        out = {
            "label": "SIGKILL of the only worker",
            "healthy_before": healthy_before,
            "detected_s": detected_s,
            "detected_within_15s": detected_s is not None and detected_s <= 15.0,
            "heartbeat_stale_s": opts.heartbeat_stale_s or 15.0,
            "healthy_again_s": round(back_at - noticed_at, 2) if back else None,
            "timeline": timeline(killed=killed, noticed=noticed_at, healthy_again=back_at),
        }
        return {"runs": [out]}


async def _wait(done: Any, probe: Any, *, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if done(await probe()):
                return True
        except (httpx.HTTPError, ValueError):
            pass
        await asyncio.sleep(0.5)
    return False
