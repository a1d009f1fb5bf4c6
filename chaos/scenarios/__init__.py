"""The scenarios, one module each: `run(opts, base)` returns `{"runs": [figures, ...], ...}`."""

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
}

Scenario = Callable[[ChaosOptions, Path], Awaitable[dict[str, Any]]]


def scenario(name: str) -> Scenario:
    run: Scenario = import_module(MODULES[name]).run
    return run
