"""One chaos run: each scenario on its own stack, bounded in time, then the targets and the report."""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import cancel_on_signals, precompile
from bench.options import ROOT
from bench.report import publish
from chaos.options import ChaosOptions
from chaos.report import table, targets
from chaos.scenarios import scenario
from chaos.scenarios.common import merge


async def run_chaos(opts: ChaosOptions, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Every chosen scenario; a scenario that fails or overruns is reported, not fatal to the others."""
    import temporalio

    await asyncio.to_thread(precompile)
    base = Path(tempfile.mkdtemp(prefix="notifications-chaos-"))
    # The system's own warnings in this process (the client's, the SDK's) go to a file, not the table.
    log = logging.FileHandler(base / "chaos.log")
    log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(log)
    started = time.time()
    results: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": opts.quick,
            "trials": opts.trials,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "temporalio": temporalio.__version__,
            "commit": _commit(),
            "options": {k: v for k, v in vars(opts).items() if k not in ("output", "scenarios")},
        },
        "scenarios": {},
    }
    try:
        for name in opts.scenarios:
            progress(f"[chaos] {name} ...")
            t = time.monotonic()
            try:
                async with asyncio.timeout(opts.scenario_limit_s):
                    sc = await scenario(name)(opts, base)
                sc["summary"] = merge(sc["runs"])
            except Exception as exc:  # one broken scenario must not hide the others' numbers
                sc = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            sc["seconds"] = round(time.monotonic() - t, 1)
            sc["targets"] = targets(name, sc.get("summary", sc), opts.recovery_target_s)
            results["scenarios"][name] = sc
            progress(f"[chaos] {name} done in {sc['seconds']:.1f} s")
    finally:
        logging.getLogger().removeHandler(log)
        log.close()
        if opts.keep:
            progress(f"[chaos] scenario data kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    results["meta"]["total_seconds"] = round(time.time() - started, 1)
    flat = {f"{n}: {k}": ok for n, sc in results["scenarios"].items() for k, ok in sc["targets"].items()}
    results["targets"] = flat
    results["all_targets_met"] = all(flat.values())
    return results


async def main_async(opts: ChaosOptions) -> int:
    """The CLI's run: 0 when every target is met, 1 otherwise (the misses are printed)."""
    cancel_on_signals()
    forward_sdk_logs()
    try:
        results = await run_chaos(opts)
    except asyncio.CancelledError:  # our own SIGINT/SIGTERM handler: every `finally` has run by now
        print("\ninterrupted: every process this run started is stopped", flush=True)
        return 130
    publish(results, opts.output, table(results))
    return 0 if results["all_targets_met"] else 1


def forward_sdk_logs() -> None:
    """The Temporal SDK's core writes its warnings (retried RPCs while the server is down) to stderr;
    forwarded to Python logging, they land in the run's log file with the rest."""
    from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
    logging_config = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=forwarding
    )
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=logging_config)), error_if_already_set=False)


def _commit() -> str | None:
    """The commit the system under test was checked out at, with `+dirty` for local changes."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
