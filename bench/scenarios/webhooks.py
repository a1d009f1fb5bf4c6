"""`webhooks`: `ours` with one endpoint subscribed to every event (a local receiver answering 200 at
once) against the same run without it, in alternating rounds: `webhooks_ratio` and the webhook
delivery latency (from the event's `createdAt` to its arrival)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.measure import _ms_stats, _ratio, merge_rounds
from bench.options import BenchOptions
from bench.scenarios.ours import run_ours


class _Receiver:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.ids: set[str] = set()

    async def handle(self, request: Any) -> Any:
        from fakes.http import Response

        arrived = time.time()
        body = json.loads(request.body)
        if body["id"] not in self.ids:
            self.ids.add(body["id"])
            self.latencies.append(arrived - datetime.fromisoformat(body["createdAt"]).timestamp())
        return Response(200, {"ok": True})


async def run_webhooks(opts: BenchOptions, base: Path) -> dict[str, Any]:
    from fakes.http import FakeHTTPServer

    receiver = _Receiver()
    runs: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    async with FakeHTTPServer(receiver.handle) as server:

        async def subscribe(client: Any) -> None:
            from notifications.sql.store.webhooks import create_endpoint
            from notifications.webhooks_out import new_endpoint_id, new_secret

            values = {"id": new_endpoint_id(), "tenant": None, "url": f"{server.url}/hook", "events": ["*"]}
            await create_endpoint(client.db, {**values, "description": "bench", "secret": new_secret()})

        for r in range(opts.rounds):
            for kind in ("without", "with") if r % 2 == 0 else ("with", "without"):
                receiver.ids.clear()  # event IDs start over with each run's fresh database
                result = await run_ours(
                    opts,
                    base,
                    f"webhooks_{kind}-r{r + 1}",
                    n=opts.other_n,
                    latency_ms=0,
                    email_concurrency=opts.email_concurrency,
                    push_concurrency=opts.push_concurrency,
                    setup=subscribe if kind == "with" else None,
                    extra={"webhook_events_received": 0},
                )
                if kind == "with":
                    result["webhook_events_received"] = len(receiver.ids)
                runs[kind].append(result)
    without, with_ = merge_rounds(runs["without"]), merge_rounds(runs["with"])
    return {
        "without": without,
        "with": with_,
        "webhooks_ratio": _ratio(with_.get("throughput_per_s"), without.get("throughput_per_s")),
        "webhook_events_received": sum(r["webhook_events_received"] for r in runs["with"]),
        "webhook_delivery_latency_ms": _ms_stats(receiver.latencies, (50, 99)),
        "note": "events received while the notifications ran; the rest arrive after the run's clock stopped",
    }
