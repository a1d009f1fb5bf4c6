"""Running one fault-suite scenario with its quick timings, and what every scenario must show users."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos import ChaosOptions, run_chaos


async def quick(name: str, tmp_path: Path) -> dict[str, Any]:
    opts = ChaosOptions.quick_defaults()
    opts.scenarios = [name]
    opts.output = tmp_path / "chaos.json"
    results = await run_chaos(opts, progress=lambda _: None)
    scenario = results["scenarios"][name]
    assert "error" not in scenario, scenario["error"]
    summary: dict[str, Any] = scenario["summary"]
    return summary


def figures(s: dict[str, Any]) -> str:
    """The whole summary as the assertion's message: pytest would shorten a dict."""
    return json.dumps(s, default=str)


def assert_user_visible(s: dict[str, Any]) -> None:
    assert s["enqueued"] > 0, figures(s)
    assert s["accepted"] + s["refused"] == s["enqueued"], figures(s)
    assert s["lost"] == 0, figures(s)
    assert s["duplicated"] == 0, figures(s)
    assert s["told_failed_but_sent"] == 0, figures(s)
    assert s["stored_for_refused"] == 0, figures(s)
