"""The scenarios, a module each (or a function of one: "module:function"): `run(opts, base)` returns
`{"runs": [figures, ...], ...}`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import import_module
from pathlib import Path
from typing import Any

from chaos.options import ChaosOptions

MODULES = {
    "worker-kill": "chaos.scenarios.worker_kill",
    "temporal-restart": "chaos.scenarios.temporal_restart",
    "db-outage": "chaos.scenarios.db_outage",
    "provider-storm": "chaos.scenarios.provider_storm",
    "pause-during-retries": "chaos.scenarios.pause_retries",
    "api-load": "chaos.scenarios.api_load",
    "provider-failover": "chaos.scenarios.failover:provider_failover",
    "provider-auth": "chaos.scenarios.failover:provider_auth",
    "ambiguous-timeout": "chaos.scenarios.failover:ambiguous_timeout",
    "channel-fallback": "chaos.scenarios.fallback",
    "two-api-processes": "chaos.scenarios.two_apis",
    "worker-death": "chaos.scenarios.worker_death",
}

Scenario = Callable[[ChaosOptions, Path], Awaitable[dict[str, Any]]]


def scenario(name: str) -> Scenario:
    module, _, function = MODULES[name].partition(":")
    run: Scenario = getattr(import_module(module), function or "run")
    return run
