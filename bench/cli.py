"""`notifications bench` (and the hidden `bench-worker` it starts for the bare-workflow baseline)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable

from processes.cli.core import _positive


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "bench",
        help="benchmark throughput, latency and cost against bare Temporal workflows",
        description="Start fresh Temporal dev servers (the flags of `notifications dev`, SQLite WAL, temp dir) "
        "and worker processes, then measure, in one run: N notifications through the client (outbox "
        "provider at each --latency-ms, the Resend SDK against a local fake), N bare one-activity "
        "workflows as the baseline, a slow provider at low and high concurrency, a paused backlog "
        "(worker memory), unloaded latency and a campaign to --campaign-n recipients through provider batch "
        "calls. Prints a table and writes JSON (default bench/results.json).",
    )
    p.add_argument("--n", type=_positive, default=None, help="notifications per scenario (default 2000; 300 quick)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="N=300, latency 0 only, other scenarios N=100, backlog 200, campaign 10000 recipients: a few minutes",
    )
    p.add_argument(
        "--latency-ms",
        action="append",
        metavar="MS[,MS]",
        help="outbox provider latencies of the `ours` scenarios (default 0,100); repeatable or comma-separated",
    )
    p.add_argument(
        "--scenario",
        action="append",
        metavar="NAME[,NAME]",
        help="run only these: baseline, ours, postgres, resend, webhooks, concurrency, backlog, unloaded, campaign "
        "(default all); postgres is the baseline / ours (0 ms) pair again, on a fresh PostgreSQL database per round",
    )
    p.add_argument("--output", metavar="PATH", help="results JSON (default bench/results.json)")
    p.add_argument(
        "--backlog",
        type=_positive,
        default=None,
        help="notifications held in the backlog scenario "
        "(default 10000; 200 quick); worker RSS is read at 10 %% and 100 %%",
    )
    p.add_argument(
        "--database-url",
        default=None,
        help="SQL database (default: a fresh SQLite file per scenario; DATABASE_URL is honoured)",
    )
    p.add_argument(
        "--postgres-url",
        default=None,
        help="the PostgreSQL server the postgres pair creates its databases on, as an admin database URL "
        "(default TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    p.add_argument("--enqueue-concurrency", type=_positive, default=None, help="concurrent enqueues (default 32)")
    p.add_argument(
        "--rounds",
        type=_positive,
        default=None,
        help="rounds of the baseline / ours (0 ms) pair, alternating B O O B ..., merged into one result "
        "(default 2; 1 quick)",
    )
    p.add_argument("--email-concurrency", type=_positive, default=None, help="worker email concurrency (default 5)")
    p.add_argument("--push-concurrency", type=_positive, default=None, help="worker push concurrency (default 10)")
    p.add_argument(
        "--high-concurrency",
        type=_positive,
        default=None,
        help="per-queue concurrency of the slow-provider scenario's high run (default 50)",
    )
    p.add_argument(
        "--low-concurrency",
        type=_positive,
        default=None,
        help="per-queue concurrency of the slow-provider scenario's low run (default 1)",
    )
    p.add_argument(
        "--secondary-n",
        type=_positive,
        default=None,
        help="N of the resend and slow-provider scenarios (default: --n; 100 quick)",
    )
    p.add_argument(
        "--campaign-n",
        type=_positive,
        default=None,
        help="recipients of the campaign scenario (default 100000; 10000 quick); its RSS reference run has a tenth",
    )
    p.add_argument("--unloaded-count", type=_positive, default=None, help="one-at-a-time sends (default 10)")
    p.add_argument("--history-sample", type=_positive, default=None, help="histories fetched per scenario (20)")
    p.add_argument("--scenario-timeout", type=float, default=None, help="seconds a scenario or a drain may take (600)")
    p.add_argument("--profile-dir", default=None, help="record each worker with py-spy (collapsed stacks) into DIR")
    p.add_argument("--keep-temp", action="store_true", help="keep server/worker logs and databases")
    p.set_defaults(func=cmd_bench)

    # Hidden (no help=): the baseline's worker process, started by `bench` like `notifications worker`.
    w = sub.add_parser("bench-worker")
    w.add_argument("--email-concurrency", type=_positive, default=None)
    w.add_argument("--push-concurrency", type=_positive, default=None)
    w.set_defaults(func=cmd_bench_worker)


def cmd_bench(args: argparse.Namespace) -> Awaitable[int]:
    from bench.options import options_from_args
    from bench.run import main_async

    return main_async(options_from_args(args))


def cmd_bench_worker(args: argparse.Namespace) -> Awaitable[None]:
    from bench.baseline import run_baseline_worker
    from notifications.config import get_settings

    settings = get_settings()
    return run_baseline_worker(
        args.email_concurrency or settings.email_concurrency,
        args.push_concurrency or settings.push_concurrency,
        settings.graceful_shutdown_seconds,
    )
