"""What a scenario measured: percentiles, CPU and server counters between two instants, sampled
histories, and the alternating rounds of one scenario merged into one result."""

from __future__ import annotations

import random
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from bench.harness import Stack

RAW = "_raw"  # per-notification samples, kept until rounds are merged; not written out
RAW_HISTORY = "_raw_history"  # the same for the sampled histories


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), so p99 of 300 samples is not the max."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _ms_stats(values_s: Sequence[float], qs: Iterable[int] = (50, 95, 99)) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for q in qs:
        v = percentile(values_s, q)
        out[f"p{q}"] = None if v is None else round(v * 1000, 1)
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def _scrape_metrics(port: int) -> dict[str, float]:
    """Totals of the dev server's Prometheus counters we care about (per fresh server = per scenario)."""
    wanted = ("persistence_requests", "service_requests", "task_requests", "workflow_task_attempt_count")
    totals: dict[str, float] = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return totals
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in wanted:
            with suppress(ValueError):
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


async def history_stats(address: str, workflow_ids: Sequence[str], sample: int) -> dict[str, Any]:
    """Events per workflow from real histories: the engine's cost per notification, in its own unit."""
    from temporalio.client import Client

    client = await Client.connect(address)
    picked = random.Random(7).sample(list(workflow_ids), min(sample, len(workflow_ids)))
    counts: list[int] = []
    types: Counter[str] = Counter()
    # Where a workflow task's time goes: waiting on the server for a poller, then in the worker.
    waits: list[float] = []
    runs: list[float] = []
    for wid in picked:
        history = await client.get_workflow_handle(wid).fetch_history()
        counts.append(len(history.events))
        at: dict[str, float] = {}
        for event in history.events:
            name = _event_name(event.event_type)
            types[name] += 1
            t = event.event_time.ToMicroseconds() / 1e6
            if name == "WORKFLOW_TASK_SCHEDULED":
                # a task that timed out on the sticky queue is scheduled again: its wait runs from the first
                at.setdefault("scheduled", t)
            elif name == "WORKFLOW_TASK_STARTED" and "scheduled" in at:
                waits.append(t - at.pop("scheduled"))
                at["started"] = t
            elif name in ("WORKFLOW_TASK_COMPLETED", "WORKFLOW_TASK_FAILED", "WORKFLOW_TASK_TIMED_OUT"):
                if "started" in at:
                    runs.append(t - at.pop("started"))
    return _history_summary(counts, types, waits, runs)


def _history_summary(counts: list[int], types: Counter[str], waits: list[float], runs: list[float]) -> dict[str, Any]:
    """The histories' numbers, with their samples kept under RAW_HISTORY so rounds can pool them."""
    if not counts:
        return {"history_events_per_workflow": None}
    return {
        "history_events_per_workflow": round(sum(counts) / len(counts), 2),
        "history_events_min_max": [min(counts), max(counts)],
        "history_event_types_per_workflow": {k: round(v / len(counts), 2) for k, v in sorted(types.items())},
        "workflow_task_schedule_to_start_ms": _ms_stats(waits, (50, 95)) if waits else None,
        "workflow_task_start_to_complete_ms": _ms_stats(runs, (50, 95)) if runs else None,
        RAW_HISTORY: {"counts": counts, "types": dict(types), "waits": waits, "runs": runs},
    }


def _event_name(value: int) -> str:
    from temporalio.api.enums.v1 import EventType

    return EventType.Name(value).removeprefix("EVENT_TYPE_")  # type: ignore[arg-type]


@dataclass
class Meter:
    """CPU of server, worker and this process between start() and stop()."""

    st: Stack
    server0: float = 0.0
    worker0: float = 0.0
    client0: float = 0.0
    server_s: float = 0.0
    worker_s: float = 0.0
    client_s: float = 0.0
    client_enqueue_s: float = 0.0
    metrics0: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self.server0, self.worker0 = self.st.cpu()
        self.client0 = time.process_time()
        self.metrics0 = _scrape_metrics(self.st.metrics_port)

    def enqueued(self) -> None:
        """The last enqueue has returned: the client's own work is done; what follows is waiting."""
        self.client_enqueue_s = time.process_time() - self.client0

    def stop(self) -> None:
        server, worker = self.st.cpu()
        self.server_s, self.worker_s = server - self.server0, worker - self.worker0
        self.client_s = time.process_time() - self.client0
        after = _scrape_metrics(self.st.metrics_port)
        self.metrics = {k: v - self.metrics0.get(k, 0.0) for k, v in after.items()}

    def report(self, n: int) -> dict[str, Any]:
        per = 1000 / n if n else 0.0
        out: dict[str, Any] = {
            "server_cpu_s_per_1000": round(self.server_s * per, 2),
            "worker_cpu_s_per_1000": round(self.worker_s * per, 2),
            "client_cpu_s_per_1000": round(self.client_s * per, 2),
            "client_enqueue_cpu_s_per_1000": round(self.client_enqueue_s * per, 2),
            "server_cpu_s": round(self.server_s, 2),
            "worker_cpu_s": round(self.worker_s, 2),
        }
        for name, value in sorted(self.metrics.items()):
            out[f"server_{name}_per_workflow"] = round(value / n, 2) if n else None
        return out


def merge_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario's rounds as one result: totals over all rounds, percentiles over all samples."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return {**failed[0], "rounds": runs}
    n = sum(r["notifications"] for r in runs)
    wall = sum(r["wall_seconds"] for r in runs)
    e2e = [v for r in runs for v in r[RAW]["e2e"]]
    enqueue = [v for r in runs for v in r[RAW]["enqueue"]]

    def weighted(key: str) -> float | None:
        values = [(r.get(key), r["notifications"]) for r in runs]
        if any(v is None for v, _ in values):
            return None
        return round(sum(v * w for v, w in values) / n, 2)

    merged = dict(runs[0])
    merged.update(
        notifications=n,
        sent=sum(r["sent"] for r in runs),
        all_sent=all(r["all_sent"] for r in runs),
        wall_seconds=round(wall, 2),
        throughput_per_s=round(n / wall, 2) if wall > 0 else None,
        enqueue_seconds=round(sum(r["enqueue_seconds"] for r in runs), 2),
        e2e_latency_ms=_ms_stats(e2e),
        enqueue_latency_ms=_ms_stats(enqueue, (50, 99)),
        worker_peak_rss_mb=max((r.get("worker_peak_rss_mb") or 0 for r in runs), default=None) or None,
    )
    merged[RAW] = {"e2e": e2e, "enqueue": enqueue}
    histories = [r[RAW_HISTORY] for r in runs if RAW_HISTORY in r]
    types: Counter[str] = Counter()
    for h in histories:
        types.update(h["types"])
    merged.update(
        _history_summary(
            [c for h in histories for c in h["counts"]],
            types,
            [w for h in histories for w in h["waits"]],
            [w for h in histories for w in h["runs"]],
        )
    )
    for key in runs[0]:
        if key.endswith("_per_1000") or (key.startswith("server_") and key.endswith("_per_workflow")):
            merged[key] = weighted(key)
        elif key in ("server_cpu_s", "worker_cpu_s", "outbox_messages"):
            merged[key] = round(sum(r.get(key) or 0 for r in runs), 2)
    if "delivery_attempts" in runs[0]:
        attempts: Counter[str] = Counter()
        for r in runs:
            attempts.update(r.get("delivery_attempts") or {})
        merged["delivery_attempts"] = dict(attempts)
    merged["rounds"] = [
        {
            "throughput_per_s": r["throughput_per_s"],
            "wall_seconds": r["wall_seconds"],
            "server_cpu_s_per_1000": r.get("server_cpu_s_per_1000"),
            "worker_cpu_s_per_1000": r.get("worker_cpu_s_per_1000"),
            "client_cpu_s_per_1000": r.get("client_cpu_s_per_1000"),
        }
        for r in runs
    ]
    return merged


def _drop_raw(value: Any) -> None:
    if isinstance(value, dict):
        value.pop(RAW, None)
        value.pop(RAW_HISTORY, None)
        for v in value.values():
            _drop_raw(v)
    elif isinstance(value, list):
        for v in value:
            _drop_raw(v)
