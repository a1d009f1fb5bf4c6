"""`notifications bench` end to end with tiny numbers: every scenario runs, every notification is sent,
and the JSON has the keys the README and the issue document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from tests.support.system import PG_ADMIN_URL, ROOT

SCENARIO_KEYS = {
    "notifications",
    "sent",
    "all_sent",
    "wall_seconds",
    "throughput_per_s",
    "e2e_latency_ms",
    "enqueue_latency_ms",
    "server_cpu_s_per_1000",
    "worker_cpu_s_per_1000",
    "worker_peak_rss_mb",
    "history_events_per_workflow",
    "workflow_task_schedule_to_start_ms",
    "workflow_task_start_to_complete_ms",
    "rounds",
}


def _bench_databases() -> set[str]:
    with psycopg.connect(PG_ADMIN_URL) as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bench%'")}


def _quick_bench(tmp_path: Path, *scenarios: str) -> tuple[dict[str, Any], str]:
    """`notifications bench --quick` at the smallest sizes, some scenarios: its JSON and its table.
    Every PostgreSQL database it made (named with its process ID) is dropped by the end."""
    output = tmp_path / "results.json"
    exe = Path(sys.executable).parent / "notifications"
    sizes = ["--n", "20", "--secondary-n", "20", "--backlog", "50", "--unloaded-count", "2", "--history-sample", "3"]
    args = [*sizes, "--campaign-n", "300", "--scenario", ",".join(scenarios), "--output", str(output)]
    with subprocess.Popen(
        [str(exe), "bench", "--quick", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
    ) as proc:
        stdout, stderr = proc.communicate(timeout=200)
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert not [name for name in _bench_databases() if f"_{proc.pid}_" in name]
    results: dict[str, Any] = json.loads(output.read_text())
    assert not [k for k, v in results["scenarios"].items() if "error" in v]
    return results, stdout


# The quick benchmark in two halves, which the suite's two processes run side by side.
def test_quick_bench_end_to_end(tmp_path: Path) -> None:
    results, table = _quick_bench(
        tmp_path, "baseline", "ours", "postgres", "resend", "concurrency", "backlog", "unloaded"
    )
    assert "| throughput /s |" in table
    scenarios = results["scenarios"]
    for name in ("baseline", "ours_0ms"):
        assert SCENARIO_KEYS <= scenarios[name].keys(), name
        assert scenarios[name]["all_sent"] and scenarios[name]["sent"] == 20, scenarios[name]
        assert set(scenarios[name]["e2e_latency_ms"]) == {"p50", "p95", "p99"}
        assert set(scenarios[name]["enqueue_latency_ms"]) == {"p50", "p99"}
    assert scenarios["baseline"]["history_events_per_workflow"] == 11  # one activity, nothing else
    ours = scenarios["ours_0ms"]
    assert ours["delivery_attempts"] == {"sent": 20} and ours["outbox_messages"] == 20  # exactly once

    resend = scenarios["ours_resend"]
    assert "skipped" in resend or (resend["all_sent"] and resend["fake_resend_emails"] == 20), resend
    for run in scenarios["concurrency"]["runs"]:
        assert run["all_sent"] and run["concurrency_bound_per_s"] > 0, run
    high = scenarios["concurrency"]["runs"][-1]  # bound by the engine, measured beside it
    assert high["engine_reference_per_s"] > 0 and len(high["engine_reference_runs_per_s"]) == 2, high
    backlog = scenarios["backlog"]
    assert backlog["all_sent"] and backlog["sent_while_paused"] == 0, backlog
    assert backlog["worker_rss_at_checkpoint_mb"] and backlog["worker_rss_at_backlog_mb"]
    held = backlog["history_event_types_per_workflow"]  # held, then released by the resume signal
    assert held["WORKFLOW_EXECUTION_SIGNALED"] >= 1 and held["MARKER_RECORDED"] >= 1, held
    assert backlog["history_events_per_workflow"] > ours["history_events_per_workflow"]
    unloaded = scenarios["unloaded"]
    assert unloaded["all_sent"] and unloaded["ours_enqueue_to_sent_ms"]["p50"] > 0

    assert isinstance(results["throughput_ratio"], float) and results["throughput_ratio"] > 0
    assert results["ratios"]["throughput_ratio"] == results["throughput_ratio"]
    assert "throughput_ratio>=0.9" in results["targets"]

    # the same pair on PostgreSQL, each round on a database of its own, dropped afterwards
    for name in ("baseline_postgres", "ours_0ms_postgres"):
        assert SCENARIO_KEYS <= scenarios[name].keys(), name
        assert scenarios[name]["all_sent"] and scenarios[name]["sent"] == 20, scenarios[name]
    assert scenarios["ours_0ms_postgres"]["delivery_attempts"] == {"sent": 20}
    assert scenarios["ours_0ms_postgres"]["outbox_messages"] == 20
    assert isinstance(results["throughput_ratio_postgres"], float) and results["throughput_ratio_postgres"] > 0
    headline = results["headline"]
    assert headline["postgres"]["throughput_ratio"] == results["throughput_ratio_postgres"]
    assert headline["sqlite"]["throughput_ratio"] == results["throughput_ratio"]
    for side in ("sqlite", "postgres"):
        assert set(headline[side]["worker_cpu_s_per_1000"]) == {"ours", "baseline"}
        assert set(headline[side]["enqueue_latency_ms"]["ours"]) == {"p50", "p99"}
        assert headline[side]["client_cpu_ratio"] > 0 and len(headline[side]["throughput_ratio_per_round"]) == 1
    assert {"throughput_ratio_postgres>=1.0", "client_cpu_ratio_postgres<=2.0"} <= results["targets"].keys()


def test_quick_bench_webhooks_and_campaign(tmp_path: Path) -> None:
    results, _ = _quick_bench(tmp_path, "webhooks", "campaign")
    scenarios = results["scenarios"]
    # one webhook endpoint subscribed to every event, against none
    webhooks = scenarios["webhooks"]
    assert webhooks["with"]["all_sent"] and webhooks["without"]["all_sent"]
    assert webhooks["webhook_events_received"] > 0 and set(webhooks["webhook_delivery_latency_ms"]) == {"p50", "p99"}
    assert isinstance(results["webhooks_ratio"], float) and "webhooks_ratio>=0.8" in results["targets"]
    # one email to 300 recipients (30 for the RSS reference) on SQLite, the Resend fake and PostgreSQL
    campaign = scenarios["campaign"]
    assert campaign["all_sent"] and campaign["recipients"] == 300 and campaign["small_recipients"] == 30, campaign
    runs = {"small": campaign["sqlite"]["small"], "large": campaign["sqlite"]["large"]}
    runs.update(resend=campaign["resend"], postgres=campaign["postgres"]["large"])
    runs.update(postgres_small=campaign["postgres"]["small"])
    for name, run in runs.items():
        n = 30 if name.endswith("small") else 300
        assert run["all_sent"] and run["sent"] == n and run["recipients_per_s"] > 0, (name, run)
        assert run["delivery_attempts"] == {"sent": n} and run["record"]["status"] == "completed", (name, run)
        assert name == "resend" or run["outbox_messages"] == n, (name, run)  # exactly once
    assert campaign["resend"]["fake_resend_emails"] == 300 and campaign["postgres"]["single_unloaded_count"] == 2
    assert campaign["sqlite"]["single_during_enqueued"] >= 1 and campaign["sqlite"]["single_unloaded_count"] == 2
    for key in (
        "campaign_per_s",
        "campaign_resend_per_s",
        "campaign_per_s_postgres",
        "campaign_rss_ratio",
        "campaign_single_p50_ratio",
        "campaign_single_p50_ratio_postgres",
        "campaign_profile_top",
    ):
        assert key in results and key in campaign, key
    assert isinstance(results["campaign_per_s"], float) and results["campaign_rss_ratio"] >= 1.0
    assert {"campaign_per_s>=3000", "campaign_rss_ratio<=1.2", "campaign_single_p50_ratio<=2.0"} <= results[
        "targets"
    ].keys()


def test_rounds_merge_into_one_result() -> None:
    """Alternating rounds report totals over all rounds, not the last round or an average of rates."""
    from bench.measure import RAW, RAW_HISTORY, merge_rounds

    def run(n: int, wall: float, worker_cpu: float, e2e: list[float], events: int = 7) -> dict[str, object]:
        return {
            "notifications": n,
            "sent": n,
            "all_sent": True,
            "wall_seconds": wall,
            "throughput_per_s": n / wall,
            "enqueue_seconds": 1.0,
            "worker_cpu_s_per_1000": worker_cpu,
            "server_persistence_requests_per_workflow": 18.0,
            "worker_peak_rss_mb": 150.0 + n / 100,
            "history_events_per_workflow": 7.0,
            "delivery_attempts": {"sent": n},
            RAW: {"e2e": e2e, "enqueue": [0.1] * n},
            RAW_HISTORY: {"counts": [7, events], "types": {"MARKER_RECORDED": 2}, "waits": [0.5], "runs": [0.1]},
        }

    merged = merge_rounds([run(100, 2.0, 10.0, [1.0] * 100), run(300, 3.0, 20.0, [3.0] * 300, events=10)])
    assert merged["notifications"] == 400 and merged["wall_seconds"] == 5.0
    assert merged["throughput_per_s"] == 80.0  # 400 / 5 s, not the mean of 50/s and 100/s
    assert merged["worker_cpu_s_per_1000"] == 17.5  # weighted by notifications
    assert merged["e2e_latency_ms"]["p50"] == 3000.0  # percentiles over every sample
    assert merged["worker_peak_rss_mb"] == 153.0 and merged["delivery_attempts"] == {"sent": 400}
    assert [r["throughput_per_s"] for r in merged["rounds"]] == [50.0, 100.0]
    # sampled histories pooled over the rounds, not copied from the first
    assert merged["history_events_per_workflow"] == 7.75 and merged["history_events_min_max"] == [7, 10]
    assert merged["history_event_types_per_workflow"] == {"MARKER_RECORDED": 1.0}

    failed = merge_rounds([run(100, 2.0, 10.0, [1.0] * 100), {"error": "RuntimeError: boom"}])
    assert failed["error"] == "RuntimeError: boom" and len(failed["rounds"]) == 2
