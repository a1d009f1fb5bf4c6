"""`webhooks`: `ours` with one endpoint subscribed to every event (a local receiver answering 200 at
once) against the same run without it, in alternating rounds: `webhooks_ratio` and the webhook
delivery latency (from the event's `createdAt` to its arrival)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.measure import _ms_stats, _ratio, merge_rounds
from bench.options import BenchOptions
from bench.scenarios.ours import run_ours

_DRAIN_SECONDS = 30.0


class _Receiver:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.ids: set[str] = set()
        self.sent: set[str] = set()

    async def handle(self, request: Any) -> Any:
        from fakes.http import Response

        arrived = time.time()
        body = json.loads(request.body)
        if body["id"] not in self.ids:
            self.ids.add(body["id"])
            if body["type"] == "notification.sent":
                self.sent.add(body["id"])
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

        async def drain() -> dict[str, Any]:
            # Events still on their way when the last row was sent: wait for them (bounded), so the
            # latency percentiles count every event and not only the early ones.
            started = time.monotonic()
            while len(receiver.sent) < opts.other_n and time.monotonic() - started < _DRAIN_SECONDS:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            return {
                "webhook_events_received": len(receiver.ids),
                "webhook_drain_seconds": round(time.monotonic() - started, 2),
            }

        for r in range(opts.rounds):
            for kind in ("without", "with") if r % 2 == 0 else ("with", "without"):
                receiver.sent.clear()
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
                    after=drain if kind == "with" else None,
                    extra={"webhook_events_received": 0},
                )
                runs[kind].append(result)
    without, with_ = merge_rounds(runs["without"]), merge_rounds(runs["with"])
    return {
        "without": without,
        "with": with_,
        "webhooks_ratio": _ratio(with_.get("throughput_per_s"), without.get("throughput_per_s")),
        "webhook_events_received": sum(r["webhook_events_received"] for r in runs["with"]),
        "webhook_delivery_latency_ms": _ms_stats(receiver.latencies, (50, 99)),
        "note": "events received until every notification's `sent` event arrived (at most 30 s after the last send)",
    }
