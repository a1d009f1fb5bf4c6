"""`notifications chaos`: the fault suite (the `chaos` package beside the runtime, imported only here)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable
from pathlib import Path

from processes.cli.core import _positive

SCENARIO_NAMES = "worker-kill, temporal-restart, db-outage, provider-storm, pause-during-retries, api-load"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "chaos",
        help="inject faults (killed workers, Temporal and database outages, provider storms) and count the damage",
        description="Each scenario starts its own Temporal dev server, database, fake providers and workers in a "
        "temp dir, injects its fault, waits for the system to settle and counts, from the provider's side and "
        "from SQL: enqueued, accepted, refused, sent, lost, duplicated, told-failed-but-sent, missing delivery-log "
        "rows, retries against Retry-After, seconds from the fault's end until all were sent, 5xx answers. Prints "
        "a table, writes JSON (default bench/chaos.json); exits 1 when a target is missed. See docs/chaos.md.",
    )
    p.add_argument(
        "--scenario", action="append", metavar="NAME[,NAME]", help=f"run only these: {SCENARIO_NAMES} (default all)"
    )
    p.add_argument("--trials", type=_positive, default=None, help="worker-kill trials (default 20; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="one trial each, short timings: about two minutes in all")
    p.add_argument("--output", metavar="PATH", help="results JSON (default bench/chaos.json)")
    p.add_argument("--keep", action="store_true", help="keep each scenario's logs and databases (temp dir)")
    p.set_defaults(func=cmd_chaos)


def cmd_chaos(args: argparse.Namespace) -> Awaitable[int]:
    from bench.options import chosen_scenarios
    from chaos import SCENARIOS, ChaosOptions, main_async

    opts = ChaosOptions.quick_defaults() if args.quick else ChaosOptions()
    if args.scenario:
        opts.scenarios = chosen_scenarios(args.scenario, SCENARIOS)
    if args.trials is not None:
        opts.trials = args.trials
    if args.output:
        opts.output = Path(args.output)
    opts.keep = bool(args.keep)
    return main_async(opts)
