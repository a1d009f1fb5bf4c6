"""What every scenario does once its fault is over: settle, count, and merge runs into one row."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from chaos.counting import deliveries, figures, retry_margins, settle, stored, wait_logged
from chaos.harness import Harness
from chaos.load import Enqueue
from chaos.options import ChaosOptions

SUMMED = (
    "enqueued",
    "accepted",
    "refused",
    "stored_for_refused",
    "sent",
    "lost",
    "duplicated",
    "repeated_provider_calls",
    "told_failed_but_sent",
    "missing_log_rows",
    "rate_limited_answers",
    "http_5xx",
    "http_5xx_undocumented",
    "unattributed_workflows",
    "sent_while_paused",
)
COUNTED = ("refused_errors", "duplicated_by_channel", "repeated_by_channel", "http_status")


async def measure(
    h: Harness,
    client: Any,
    entries: list[Enqueue],
    opts: ChaosOptions,
    *,
    fault_end: Mapping[str, float],
    settle_s: float | None = None,
) -> dict[str, Any]:
    """Wait for the system to settle (bounded), then the figures of these enqueues."""
    t0 = time.monotonic()
    limit_s = opts.settle_s if settle_s is None else settle_s
    all_sent = await settle(h.resend, h.fcm, h.temporal, entries, limit_s, h.smtp)
    found = deliveries(h.resend, h.fcm, h.smtp)
    mine = {e.recipient for e in entries}
    ids = {found[e.recipient][0].notification_id for e in entries if found.get(e.recipient)}
    await wait_logged(client.db, {i for i in ids if i}, opts.log_grace_s)
    h.known_ids |= {e.id for e in entries if e.accepted and e.id}
    held = await stored(client.db, h.temporal, h.known_ids)
    out = figures(entries, found, held, fault_end=fault_end, margins=retry_margins(h.resend, mine))
    out["all_sent"] = all_sent
    out["settle_wait_s"] = round(time.monotonic() - t0, 2)
    return out


def delivered_between(h: Harness, entries: list[Enqueue], start: float, end: float, channel: str) -> int:
    """Deliveries of this channel whose provider call arrived in [start, end): a paused queue's leaks."""
    found = deliveries(h.resend, h.fcm, h.smtp)
    mine = [e for e in entries if e.channel == channel]
    return sum(1 for e in mine for d in found.get(e.recipient, []) if start <= d.at < end)


async def until(predicate: Callable[[], bool | Awaitable[bool]], limit_s: float, interval: float = 0.1) -> bool:
    """Poll `predicate` until it holds or `limit_s` passes; whether it held."""
    deadline = time.monotonic() + limit_s
    while True:
        value = predicate()
        if value if isinstance(value, bool) else await value:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


def timeline(**moments: float) -> dict[str, float]:
    """A run's moments (epoch seconds), to line up with the enqueues' and the provider calls' times."""
    return {name: round(at, 3) for name, at in moments.items()}


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs (trials, downtimes) as one row: counts summed, the worst recovery and margin."""
    if len(runs) == 1:
        return dict(runs[0])
    out: dict[str, Any] = {"runs": len(runs)}
    for key in SUMMED:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            out[key] = sum(values)
    for key in COUNTED:
        total: Counter[str] = Counter()
        for r in runs:
            total.update(r.get(key) or {})
        out[key] = dict(total)
    recoveries = [r.get("recovery_s") for r in runs]
    out["recovery_s"] = None if any(v is None for v in recoveries) else max(v for v in recoveries if v is not None)
    out["recovery_s_per_run"] = recoveries
    margins = [r["retry_after_margin_s"] for r in runs if r.get("retry_after_margin_s") is not None]
    out["retry_after_margin_s"] = min(margins) if margins else None
    out["all_sent"] = all(r.get("all_sent") for r in runs)
    return out
