"""The yardstick: a bare workflow of one trivial activity, and the worker `notifications bench-worker` runs.

Only the standard library and temporalio at the top: this module is all the baseline worker
process loads of the benchmark.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import timedelta

from temporalio import activity, workflow

BASELINE_WORKFLOW = "BenchBaselineWorkflow"
BASELINE_ACTIVITY = "bench_trivial"
BASELINE_QUEUES = {"email": "bench-baseline-email", "push": "bench-baseline-push"}


@activity.defn(name=BASELINE_ACTIVITY)
async def bench_trivial(arg: str) -> float:
    """Does nothing but return when it ran, so the round trip can be timed without a long-poll per workflow."""
    return time.time()


@workflow.defn(name=BASELINE_WORKFLOW)
class BenchBaselineWorkflow:
    @workflow.run
    async def run(self, arg: str) -> float:
        result: float = await workflow.execute_activity(
            BASELINE_ACTIVITY, arg, result_type=float, start_to_close_timeout=timedelta(seconds=30)
        )
        return result


async def run_baseline_worker(email_concurrency: int, push_concurrency: int, graceful_shutdown: float) -> None:
    """The bare workflow's worker, built like `notifications worker`: one Worker per queue, same caps."""
    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from notifications.config import get_settings
    from notifications.temporal import connect
    from processes.logs import configure_logging

    configure_logging()
    settings = get_settings()
    runtime = None
    if settings.metrics_bind:  # SDK metrics cost CPU: on for both sides, as `notifications worker` has them
        from activities.metrics import prometheus_runtime

        runtime = prometheus_runtime(settings.metrics_bind)
    client = await connect(settings, runtime=runtime)
    # Passed through, as production workers pass the notification workflow's module (decision 0010).
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("bench.baseline")
    )
    workers = [
        Worker(
            client,
            task_queue=BASELINE_QUEUES[channel],
            workflows=[BenchBaselineWorkflow],
            activities=[bench_trivial],
            max_concurrent_activities=concurrency,
            # The SDK's poller split, not ours (docs/decisions/0015-worker-poller-split.md).
            graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown),
            workflow_runner=runner,
        )
        for channel, concurrency in (("email", email_concurrency), ("push", push_concurrency))
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    await stop.wait()
    await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)
