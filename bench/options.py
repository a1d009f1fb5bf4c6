"""What a bench run measures: its options, their defaults, and the command line mapped onto them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results.json"
ALL_SCENARIOS = (
    "baseline",
    "ours",
    "postgres",
    "resend",
    "webhooks",
    "concurrency",
    "backlog",
    "unloaded",
    "campaign",
)
# The server the `postgres` pair creates its fresh databases on (the tests' variable).
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class BenchOptions:
    n: int = 2000
    quick: bool = False
    latencies_ms: list[int] = field(default_factory=lambda: [0, 100])
    scenarios: list[str] = field(default_factory=lambda: list(ALL_SCENARIOS))
    output: Path = DEFAULT_OUTPUT
    database_url: str | None = None
    postgres_url: str = field(default_factory=lambda: os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    enqueue_concurrency: int = 32
    rounds: int = 2
    email_concurrency: int = 5
    push_concurrency: int = 10
    high_concurrency: int = 50
    low_concurrency: int = 1
    concurrency_latency_ms: int = 100
    backlog: int = 10_000
    unloaded_count: int = 10
    campaign_n: int = 100_000  # recipients of the campaign scenario's large run (its small run: a tenth)
    history_sample: int = 20
    secondary_n: int | None = None  # N of the resend and concurrency scenarios; None: same as n
    scenario_timeout: float = 600.0
    profile_dir: Path | None = None
    keep_temp: bool = False

    @classmethod
    def quick_defaults(cls) -> BenchOptions:
        # Under a minute in all: the headline pair at N=300, the other scenarios smaller, one latency.
        return cls(
            n=300,
            quick=True,
            rounds=1,
            latencies_ms=[0],
            backlog=200,
            unloaded_count=3,
            history_sample=10,
            secondary_n=100,
            campaign_n=10_000,
            scenario_timeout=120.0,
        )

    @property
    def other_n(self) -> int:
        return self.secondary_n or self.n


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    opts = BenchOptions.quick_defaults() if args.quick else BenchOptions()
    for name in (
        "n",
        "backlog",
        "enqueue_concurrency",
        "rounds",
        "email_concurrency",
        "push_concurrency",
        "high_concurrency",
        "low_concurrency",
        "unloaded_count",
        "history_sample",
        "scenario_timeout",
        "database_url",
        "postgres_url",
        "secondary_n",
        "campaign_n",
    ):
        value = getattr(args, name, None)
        if value is not None:
            setattr(opts, name, value)
    if args.database_url is None and os.environ.get("DATABASE_URL"):
        opts.database_url = os.environ["DATABASE_URL"]
    if args.latency_ms:
        opts.latencies_ms = [int(v) for part in args.latency_ms for v in part.split(",") if v.strip()]
    if args.scenario:
        opts.scenarios = chosen_scenarios(args.scenario, ALL_SCENARIOS)
    opts.output = Path(args.output) if args.output else DEFAULT_OUTPUT
    opts.profile_dir = Path(args.profile_dir) if args.profile_dir else None
    opts.keep_temp = bool(args.keep_temp)
    return opts


def chosen_scenarios(parts: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """`--scenario a,b --scenario c` as a list of names, each one checked against `allowed`."""
    names = [s.strip() for part in parts for s in part.split(",") if s.strip()]
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {', '.join(allowed)}")
    return names
