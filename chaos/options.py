"""What a chaos run does: which scenarios, how many trials, and every timing, full or quick."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.options import ROOT

SCENARIOS = (
    "worker-kill",
    "temporal-restart",
    "db-outage",
    "provider-storm",
    "pause-during-retries",
    "api-load",
    "provider-failover",
    "provider-auth",
    "ambiguous-timeout",
    "channel-fallback",
    "two-api-processes",
    "worker-death",
)
DEFAULT_OUTPUT = ROOT / "bench" / "chaos.json"


@dataclass
class ChaosOptions:
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))
    quick: bool = False
    output: Path = DEFAULT_OUTPUT
    keep: bool = False
    # the targets
    recovery_target_s: float = 15.0
    # every scenario: how long the system may take to send what it accepted, and to log it
    settle_s: float = 60.0
    log_grace_s: float = 40.0  # longer than the SQL mirror's retry cap (30 s), for the outage scenario
    scenario_limit_s: float = 900.0
    # longer than the client's own give-up on an unreachable Temporal (about 9 s), so a refusal is the system's
    enqueue_timeout_s: float = 30.0
    # worker-kill
    trials: int = 20
    kill_burst: int = 30
    provider_latency_s: float = 0.3  # sends are in flight at the provider when the worker dies
    # temporal-restart
    restart_downtimes_s: list[float] = field(default_factory=lambda: [5.0, 15.0])
    # db-outage
    db_outage_s: float = 20.0
    # provider-storm
    storm_burst: int = 30
    storm_unavailable_s: float = 8.0
    storm_retry_after_s: int = 2
    circuit_cooldown_s: float | None = None  # None: the worker's own default
    # pause-during-retries
    pause_burst: int = 20
    pause_hold_s: float = 10.0
    # api-load
    api_clients: int = 50
    api_duration_s: float = 30.0
    # provider-failover (the outage), provider-auth, ambiguous-timeout, channel-fallback (the burst)
    failover_outage_s: float = 60.0
    failover_burst: int = 30
    # two-api-processes: API_RATE_LIMIT of both processes
    api_rate_limit: int = 20
    # worker-death: WORKER_HEARTBEAT_SECONDS / WORKER_HEARTBEAT_STALE_SECONDS (None: the defaults, 5 and 15)
    heartbeat_s: float | None = None
    heartbeat_stale_s: float | None = None
    # the steady enqueue rate while a fault lasts, per second
    fault_rate: float = 6.0

    @classmethod
    def quick_defaults(cls) -> ChaosOptions:
        """One trial each, short timings: the whole suite in about two minutes on two cores."""
        return cls(
            quick=True,
            settle_s=30.0,
            log_grace_s=20.0,
            scenario_limit_s=150.0,
            enqueue_timeout_s=20.0,
            trials=1,
            kill_burst=16,
            restart_downtimes_s=[12.0],  # past the client's give-up, so some enqueues are refused
            db_outage_s=5.0,
            storm_burst=12,
            storm_unavailable_s=3.0,
            circuit_cooldown_s=3.0,
            pause_burst=10,
            pause_hold_s=3.0,
            api_clients=10,
            api_duration_s=5.0,
            failover_outage_s=5.0,
            failover_burst=8,
            api_rate_limit=5,
            heartbeat_s=1.0,
            heartbeat_stale_s=3.0,
            fault_rate=4.0,
        )
