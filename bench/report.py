"""What a run reports: the ratios ours / baseline and the issue's targets, the markdown table, the JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import _ratio


def headline(base: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any] | None:
    """One database's headline pair: the throughput ratio, its rounds, CPU per 1000 and enqueue latency."""
    if "throughput_per_s" not in base or "throughput_per_s" not in ours:
        return None
    sides = {"ours": ours, "baseline": base}
    return {
        "throughput_ratio": _ratio(ours["throughput_per_s"], base["throughput_per_s"]),
        "throughput_ratio_per_round": [
            _ratio(o["throughput_per_s"], b["throughput_per_s"])
            for b, o in zip(base.get("rounds") or [base], ours.get("rounds") or [ours], strict=False)
        ],
        "throughput_per_s": {k: v["throughput_per_s"] for k, v in sides.items()},
        "worker_cpu_s_per_1000": {k: v.get("worker_cpu_s_per_1000") for k, v in sides.items()},
        "worker_cpu_ratio": _ratio(ours.get("worker_cpu_s_per_1000"), base.get("worker_cpu_s_per_1000")),
        "client_cpu_s_per_1000": {k: v.get("client_cpu_s_per_1000") for k, v in sides.items()},
        "client_cpu_ratio": _ratio(ours.get("client_cpu_s_per_1000"), base.get("client_cpu_s_per_1000")),
        "enqueue_latency_ms": {k: v["enqueue_latency_ms"] for k, v in sides.items()},
        "enqueue_p50_ratio": _ratio(ours["enqueue_latency_ms"]["p50"], base["enqueue_latency_ms"]["p50"]),
    }


def compare(scenarios: dict[str, Any]) -> dict[str, Any]:
    """Ratios ours / baseline (same run) and the issue's targets, pass or miss."""
    base = scenarios.get("baseline") or {}
    ours = scenarios.get("ours_0ms") or {}
    out: dict[str, Any] = {}
    postgres = headline(scenarios.get("baseline_postgres") or {}, scenarios.get("ours_0ms_postgres") or {})
    more_targets: dict[str, bool] = {}
    if postgres is not None:
        out["throughput_ratio_postgres"] = postgres["throughput_ratio"]
        # The production database: at least the bare engine's throughput, the worker's
        # CPU within 1.3x and the client's within 2x of the bare workflow's.
        more_targets = {
            "throughput_ratio_postgres>=1.0": (postgres["throughput_ratio"] or 0) >= 1.0,
            "worker_cpu_ratio_postgres<=1.3": (postgres["worker_cpu_ratio"] or 99) <= 1.3,
            "client_cpu_ratio_postgres<=2.0": (postgres["client_cpu_ratio"] or 99) <= 2.0,
        }
    out["headline"] = {"sqlite": headline(base, ours), "postgres": postgres}
    webhooks = scenarios.get("webhooks") or {}
    if webhooks.get("webhooks_ratio") is not None:  # one endpoint subscribed to every event, against none
        out["webhooks_ratio"] = webhooks["webhooks_ratio"]
        out["webhook_delivery_latency_ms"] = webhooks.get("webhook_delivery_latency_ms")
        more_targets["webhooks_ratio>=0.8"] = webhooks["webhooks_ratio"] >= 0.8
    more_targets.update(_campaign(scenarios.get("campaign") or {}, out))
    if "throughput_per_s" not in base or "throughput_per_s" not in ours:
        out["throughput_ratio"] = None
        if more_targets:
            out["targets"] = more_targets
        return out
    ratios = {
        "throughput_ratio": _ratio(ours["throughput_per_s"], base["throughput_per_s"]),
        "e2e_p50_ratio": _ratio(ours["e2e_latency_ms"]["p50"], base["e2e_latency_ms"]["p50"]),
        "e2e_p99_ratio": _ratio(ours["e2e_latency_ms"]["p99"], base["e2e_latency_ms"]["p99"]),
        "enqueue_p50_ratio": _ratio(ours["enqueue_latency_ms"]["p50"], base["enqueue_latency_ms"]["p50"]),
        "server_cpu_ratio": _ratio(ours["server_cpu_s_per_1000"], base["server_cpu_s_per_1000"]),
        "worker_cpu_ratio": _ratio(ours["worker_cpu_s_per_1000"], base["worker_cpu_s_per_1000"]),
        "history_events_ratio": _ratio(
            ours.get("history_events_per_workflow"), base.get("history_events_per_workflow")
        ),
        "worker_peak_rss_ratio": _ratio(ours.get("worker_peak_rss_mb"), base.get("worker_peak_rss_mb")),
    }
    out.update(ratios)
    out["ratios"] = ratios
    if base.get("rounds") and ours.get("rounds"):
        out["throughput_ratio_per_round"] = [
            _ratio(o["throughput_per_s"], b["throughput_per_s"])
            for b, o in zip(base["rounds"], ours["rounds"], strict=False)
        ]
    targets: dict[str, Any] = {"throughput_ratio>=0.9": (ratios["throughput_ratio"] or 0) >= 0.9}
    unloaded = scenarios.get("unloaded") or {}
    if unloaded.get("p50_ratio") is not None:
        targets["unloaded_p50<=baseline_round_trip"] = unloaded["p50_ratio"] <= 1.0
    conc = scenarios.get("concurrency") or {}
    for run in conc.get("runs", []):
        bound = run.get("concurrency_bound_per_s")
        # the engine measured beside the run where there is one, else with the headline pair
        engine = run.get("engine_reference_per_s") or base["throughput_per_s"]
        if bound and run.get("throughput_per_s"):
            limit = min(bound, engine)
            run["achieved_of_min_bound_engine"] = _ratio(run["throughput_per_s"], limit)
            label = f"{run['email_concurrency']}x{run['push_concurrency']}@{conc['latency_ms']}ms"
            targets[f"{label}>=0.9*min(bound,engine)"] = run["throughput_per_s"] >= 0.9 * limit
    backlog = scenarios.get("backlog") or {}
    if backlog.get("worker_rss_backlog_ratio") is not None:
        targets["backlog_rss_ratio<=1.2"] = backlog["worker_rss_backlog_ratio"] <= 1.2
    out["targets"] = {**targets, **more_targets}
    return out


CAMPAIGN_KEYS = (
    "campaign_per_s",
    "campaign_resend_per_s",
    "campaign_per_s_postgres",
    "campaign_rss_ratio",
    "campaign_single_p50_ratio",
    "campaign_single_p50_ratio_postgres",
    "campaign_profile_top",
)


def _campaign(campaign: dict[str, Any], out: dict[str, Any]) -> dict[str, bool]:
    """The campaign's numbers at the top level and its targets (issue 16): recipients per second on
    the outbox, worker RSS at N against N/10, a single email's p50 during the campaign against unloaded."""
    if "campaign_per_s" not in campaign:
        return {}
    out.update({key: campaign.get(key) for key in CAMPAIGN_KEYS})
    return {
        "campaign_per_s>=3000": (campaign["campaign_per_s"] or 0) >= 3000,
        "campaign_rss_ratio<=1.2": (campaign.get("campaign_rss_ratio") or 99) <= 1.2,
        "campaign_single_p50_ratio<=2.0": (campaign.get("campaign_single_p50_ratio") or 99) <= 2.0,
        "campaign_single_p50_ratio_postgres<=2.0": (campaign.get("campaign_single_p50_ratio_postgres") or 99) <= 2.0,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def table(results: dict[str, Any]) -> str:
    """A markdown table: pasteable into the README as is."""
    sc = results.get("scenarios", {})
    names = [n for n in sc if n.startswith(("baseline", "ours_"))]
    columns = [name for name in names if "throughput_per_s" in sc.get(name, {})]
    for run in (sc.get("concurrency") or {}).get("runs", []):
        columns.append(f"concurrency_{run['email_concurrency']}x{run['push_concurrency']}")
        sc = {**sc, columns[-1]: run}
    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("notifications", lambda r: r.get("notifications")),
        (
            "provider ms / concurrency",
            lambda r: f"{r['latency_ms']} / {r['email_concurrency']}+{r['push_concurrency']}",
        ),
        ("all sent", lambda r: r.get("all_sent")),
        ("wall s", lambda r: r.get("wall_seconds")),
        ("throughput /s", lambda r: r.get("throughput_per_s")),
        ("e2e p50 ms", lambda r: r["e2e_latency_ms"]["p50"]),
        ("e2e p95 ms", lambda r: r["e2e_latency_ms"]["p95"]),
        ("e2e p99 ms", lambda r: r["e2e_latency_ms"]["p99"]),
        ("enqueue p50 ms", lambda r: r["enqueue_latency_ms"]["p50"]),
        ("enqueue p99 ms", lambda r: r["enqueue_latency_ms"]["p99"]),
        ("server CPU s / 1000", lambda r: r.get("server_cpu_s_per_1000")),
        ("worker CPU s / 1000", lambda r: r.get("worker_cpu_s_per_1000")),
        ("client CPU s / 1000", lambda r: r.get("client_cpu_s_per_1000")),
        ("worker peak RSS MB", lambda r: r.get("worker_peak_rss_mb")),
        ("history events / workflow", lambda r: r.get("history_events_per_workflow")),
        ("server persistence requests / wf", lambda r: r.get("server_persistence_requests_per_workflow")),
        ("workflow task wait p50 ms", lambda r: r["workflow_task_schedule_to_start_ms"]["p50"]),
        ("workflow task run p50 ms", lambda r: r["workflow_task_start_to_complete_ms"]["p50"]),
        ("bound: concurrency / latency /s", lambda r: r.get("concurrency_bound_per_s")),
        ("engine: bare workflows beside it /s", lambda r: r.get("engine_reference_per_s")),
    ]
    lines = ["| metric | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, get in rows:
        cells = []
        for name in columns:
            try:
                cells.append(_fmt(get(sc[name])))
            except (KeyError, TypeError):
                cells.append("-")
        if label.startswith("bound") and all(c == "-" for c in cells):
            continue
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    extra = [f"throughput_ratio (ours_0ms / baseline): {_fmt(results.get('throughput_ratio'))}"]
    if len(results.get("throughput_ratio_per_round") or []) > 1:
        per_round = ", ".join(_fmt(v) for v in results["throughput_ratio_per_round"])
        extra[0] += f" (all rounds together; round by round: {per_round})"
    pg = (results.get("headline") or {}).get("postgres")
    if pg is not None:
        extra.append(
            f"throughput_ratio_postgres (ours_0ms_postgres / baseline_postgres): {_fmt(pg['throughput_ratio'])} "
            f"(round by round: {', '.join(_fmt(v) for v in pg['throughput_ratio_per_round'])}); "
            f"worker CPU x{_fmt(pg['worker_cpu_ratio'])}, client CPU x{_fmt(pg['client_cpu_ratio'])}, "
            f"enqueue p50 x{_fmt(pg['enqueue_p50_ratio'])} of the bare workflow's"
        )
    for key in ("e2e_p50_ratio", "server_cpu_ratio", "worker_cpu_ratio", "history_events_ratio"):
        if results.get(key) is not None:
            extra.append(f"{key}: {_fmt(results[key])}")
    un = sc.get("unloaded") or {}
    if "baseline_round_trip_ms" in un:
        extra.append(
            f"unloaded ({un['count']} one at a time): ours enqueue-to-sent p50 "
            f"{_fmt(un['ours_enqueue_to_sent_ms']['p50'])} ms "
            f"(client-observed {_fmt(un['ours_client_observed_ms']['p50'])} ms) vs bare round trip p50 "
            f"{_fmt(un['baseline_round_trip_ms']['p50'])} ms"
        )
    bl = sc.get("backlog") or {}
    if "worker_rss_at_backlog_mb" in bl:
        extra.append(
            f"backlog {bl['notifications']} held: worker RSS {_fmt(bl['worker_rss_at_checkpoint_mb'])} MB at "
            f"{bl['checkpoint']}, {_fmt(bl['worker_rss_at_backlog_mb'])} MB at {bl['notifications']} "
            f"(x{_fmt(bl['worker_rss_backlog_ratio'])}); drained in {_fmt(bl['drain_seconds'])} s "
            f"({_fmt(bl['drain_throughput_per_s'])}/s), sent {bl['sent']} of {bl['notifications']}; "
            f"{_fmt(bl.get('history_events_per_workflow'))} history events per workflow, "
            f"{_fmt((bl.get('history_event_types_per_workflow') or {}).get('WORKFLOW_TASK_TIMED_OUT', 0))} "
            "workflow-task timeouts per workflow"
        )
    cp = sc.get("campaign") or {}
    if "campaign_per_s" in cp:
        sq = cp.get("sqlite") or {}
        extra.append(
            f"campaign of {cp['recipients']}: {_fmt(cp['campaign_per_s'])}/s outbox, "
            f"{_fmt(cp.get('campaign_resend_per_s'))}/s Resend SDK (fake batch API), "
            f"{_fmt(cp.get('campaign_per_s_postgres'))}/s PostgreSQL; all sent: {cp.get('all_sent')}; worker peak RSS "
            f"{_fmt(sq.get('worker_peak_rss_large_mb'))} MB vs {_fmt(sq.get('worker_peak_rss_small_mb'))} MB at "
            f"{cp['small_recipients']} (x{_fmt(cp.get('campaign_rss_ratio'))}); single email p50 during it "
            f"{_fmt((sq.get('single_during_ms') or {}).get('p50'))} ms ({sq.get('single_during_count')} sends) vs "
            f"{_fmt((sq.get('single_unloaded_ms') or {}).get('p50'))} ms unloaded "
            f"(x{_fmt(cp.get('campaign_single_p50_ratio'))}); on PostgreSQL x"
            f"{_fmt(cp.get('campaign_single_p50_ratio_postgres'))}"
        )
        top = cp.get("campaign_profile_top") or []
        if top:
            extra.append(
                "campaign worker, py-spy self time: " + ", ".join(f"{t['function']} {t['pct']}%" for t in top[:5])
            )
    for name, value in sc.items():
        if isinstance(value, dict) and ("error" in value or "skipped" in value):
            extra.append(f"{name}: {value.get('error') or 'skipped: ' + value['skipped']}")
    if results.get("targets"):
        extra.append("targets: " + ", ".join(f"{k} {'PASS' if v else 'MISS'}" for k, v in results["targets"].items()))
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {e}" for e in extra)


def write_results(results: dict[str, Any], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")


def publish(results: dict[str, Any], output: Path, text: str) -> None:
    """The JSON to `output`, the table to stdout."""
    write_results(results, output)
    print()
    print(text)
    print(f"\nwritten to {output}")
